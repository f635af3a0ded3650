// The mbert-shards format: Arrow IPC *file* shards plus an index.json.
// docs/data.md is the normative description; this file is its code.

import {
  Field,
  Int8,
  Int32,
  List,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Utf8,
  makeData,
  tableFromIPC,
  tableToIPC,
  type Data,
} from "apache-arrow";
import { IndexInvalid, ShardCorrupt } from "./errors.js";
import type { CorpusStats } from "./corpus.js";

export const SHARD_FORMAT = "mbert-shards";
export const SHARD_FORMAT_VERSION = 1;

export type ColumnName = "input_ids" | "token_type_ids" | "text";

export interface ColumnSpec {
  name: ColumnName;
  /** Arrow type, as text: "list<int32>", "list<int8>", "utf8". */
  type: string;
}

export interface ShardEntry {
  /** File name relative to the index.json folder. */
  file: string;
  samples: number;
  /** Sum of sample lengths in tokens (0 for raw-text shards). */
  tokens: number;
  bytes: number;
  sha256: string;
}

export interface ShardIndex {
  format: typeof SHARD_FORMAT;
  version: number;
  /** "train", "val", or null when the corpus was not split. */
  split: string | null;
  columns: ColumnSpec[];
  tokenizer: { sha256: string; vocab_size: number } | null;
  max_seq_len: number;
  packed: boolean;
  raw_text: boolean;
  samples: number;
  tokens: number;
  shards: ShardEntry[];
  /** What the reader saw in the corpus, bad lines included (informational). */
  corpus?: CorpusStats;
  created_by?: string;
}

/** Samples of one shard, decoded. Tokens of sample i are values[offsets[i] .. offsets[i+1]). */
export interface ShardData {
  numSamples: number;
  offsets: Int32Array;
  values: Int32Array;
  /** Token type ids aligned with `values`, or null when the shard has none (all zero). */
  tokenTypes: Int8Array | null;
  /** Raw-text shards: the text of sample i. */
  text: ((i: number) => string) | null;
  /** Bytes of decoded arrays held in memory. */
  byteLength: number;
}

export interface ShardColumns {
  offsets: Int32Array;
  values: Int32Array;
  tokenTypes?: Int8Array | null;
  texts?: string[] | null;
}

const listOf = (t: Int32 | Int8) => new List(new Field("item", t, false));

/** Encode one shard as Arrow IPC file bytes. `offsets` has numSamples+1 entries, starting at 0. */
export function encodeShard(cols: ShardColumns): Uint8Array {
  const fields: Field[] = [];
  const children: Data[] = [];
  const n = cols.texts ? cols.texts.length : cols.offsets.length - 1;
  if (!cols.texts) {
    const t32 = listOf(new Int32());
    fields.push(new Field("input_ids", t32, false));
    children.push(
      makeData({
        type: t32,
        length: n,
        nullCount: 0,
        valueOffsets: cols.offsets,
        child: makeData({ type: new Int32(), length: cols.values.length, data: cols.values }),
      }),
    );
    if (cols.tokenTypes) {
      const t8 = listOf(new Int8());
      fields.push(new Field("token_type_ids", t8, false));
      children.push(
        makeData({
          type: t8,
          length: n,
          nullCount: 0,
          valueOffsets: cols.offsets,
          child: makeData({ type: new Int8(), length: cols.tokenTypes.length, data: cols.tokenTypes }),
        }),
      );
    }
  } else {
    const enc = new TextEncoder();
    const parts = cols.texts.map((s) => enc.encode(s));
    const offsets = new Int32Array(n + 1);
    let total = 0;
    for (let i = 0; i < n; i++) {
      total += parts[i]!.length;
      offsets[i + 1] = total;
    }
    const data = new Uint8Array(total);
    for (let i = 0; i < n; i++) data.set(parts[i]!, offsets[i]!);
    fields.push(new Field("text", new Utf8(), false));
    children.push(makeData({ type: new Utf8(), length: n, nullCount: 0, valueOffsets: offsets, data }));
  }
  const schema = new Schema(fields, new Map([["format", `${SHARD_FORMAT}/${SHARD_FORMAT_VERSION}`]]));
  const struct = makeData({ type: new Struct(fields), length: n, nullCount: 0, children });
  return tableToIPC(new Table(schema, [new RecordBatch(schema, struct)]), "file");
}

/** Concatenate the chunks of a list column into one offsets array (from 0) and one values array. */
function flattenList<T extends Int32Array | Int8Array>(
  chunks: readonly Data[],
  make: (n: number) => T,
): { offsets: Int32Array; values: T } {
  if (chunks.length === 1) {
    const d = chunks[0]!;
    const offsets = (d.valueOffsets as Int32Array).subarray(d.offset, d.offset + d.length + 1);
    return { offsets, values: d.children[0]!.values as T };
  }
  let n = 0;
  let t = 0;
  for (const d of chunks) {
    const o = d.valueOffsets as Int32Array;
    n += d.length;
    t += o[d.offset + d.length]! - o[d.offset]!;
  }
  const offsets = new Int32Array(n + 1);
  const values = make(t);
  let i = 0;
  let v = 0;
  for (const d of chunks) {
    const o = d.valueOffsets as Int32Array;
    const src = d.children[0]!.values as T;
    const start = o[d.offset]!;
    const end = o[d.offset + d.length]!;
    values.set(src.subarray(start, end) as never, v);
    for (let k = 0; k < d.length; k++) offsets[i + k + 1] = v + o[d.offset + k + 1]! - start;
    i += d.length;
    v += end - start;
  }
  return { offsets, values };
}

/** Decode a shard's bytes; throws ShardCorrupt naming `file` if it is not a valid shard. */
export function decodeShard(bytes: Uint8Array, file: string): ShardData {
  if (bytes.byteOffset % 8 !== 0) bytes = bytes.slice();
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (err) {
    throw new ShardCorrupt(file, `not a readable Arrow IPC file (${(err as Error).message})`, err);
  }
  const ids = table.getChild("input_ids");
  const text = table.getChild("text");
  if (ids) {
    if (ids.nullCount > 0) throw new ShardCorrupt(file, "input_ids has nulls");
    const { offsets, values } = flattenList(ids.data, (n) => new Int32Array(n));
    if (!(values instanceof Int32Array)) throw new ShardCorrupt(file, "input_ids is not list<int32>");
    let tokenTypes: Int8Array | null = null;
    const tt = table.getChild("token_type_ids");
    if (tt) {
      const f = flattenList(tt.data, (n) => new Int8Array(n));
      if (f.values.length !== values.length)
        throw new ShardCorrupt(file, "token_type_ids and input_ids differ in length");
      // Align to input_ids offsets (both start where their offsets start).
      tokenTypes = f.offsets[0] === offsets[0] ? f.values : f.values.subarray(f.offsets[0]! - offsets[0]!);
    }
    return {
      numSamples: offsets.length - 1,
      offsets,
      values,
      tokenTypes,
      text: null,
      byteLength: values.byteLength + offsets.byteLength + (tokenTypes?.byteLength ?? 0),
    };
  }
  if (text) {
    const n = table.numRows;
    return {
      numSamples: n,
      offsets: new Int32Array(n + 1),
      values: new Int32Array(0),
      tokenTypes: null,
      text: (i: number) => String(text.get(i)),
      byteLength: bytes.byteLength,
    };
  }
  throw new ShardCorrupt(file, "has neither an input_ids nor a text column");
}

const isNonNegInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;

/** Parse and validate index.json text; throws IndexInvalid naming `file`. */
export function parseIndex(text: string, file: string): ShardIndex {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new IndexInvalid(file, `not valid JSON (${(err as Error).message})`, err);
  }
  if (j === null || typeof j !== "object" || Array.isArray(j))
    throw new IndexInvalid(file, "not a JSON object");
  if (j.format !== SHARD_FORMAT)
    throw new IndexInvalid(file, `format is ${JSON.stringify(j.format)}, expected "${SHARD_FORMAT}"`);
  if (j.version !== SHARD_FORMAT_VERSION)
    throw new IndexInvalid(
      file,
      `version ${JSON.stringify(j.version)} is not supported (this reader knows ${SHARD_FORMAT_VERSION})`,
    );
  if (!Array.isArray(j.shards)) throw new IndexInvalid(file, "shards is not an array");
  if (!Array.isArray(j.columns)) throw new IndexInvalid(file, "columns is not an array");
  if (!isNonNegInt(j.max_seq_len)) throw new IndexInvalid(file, "max_seq_len is not a non-negative integer");
  const names = new Set<string>();
  let samples = 0;
  let tokens = 0;
  j.shards.forEach((s: unknown, i: number) => {
    const e = s as Record<string, unknown>;
    const where = `shards[${i}]`;
    if (
      typeof e?.file !== "string" ||
      e.file === "" ||
      e.file.includes("/") ||
      e.file.includes("\\") ||
      e.file.startsWith(".")
    )
      throw new IndexInvalid(file, `${where}.file must be a plain file name`);
    if (names.has(e.file)) throw new IndexInvalid(file, `${where}.file ${e.file} is listed twice`);
    names.add(e.file);
    for (const k of ["samples", "tokens", "bytes"])
      if (!isNonNegInt(e[k])) throw new IndexInvalid(file, `${where}.${k} is not a non-negative integer`);
    if (typeof e.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(e.sha256))
      throw new IndexInvalid(file, `${where}.sha256 is not a 64-digit hex sha256`);
    samples += e.samples as number;
    tokens += e.tokens as number;
  });
  if (j.samples !== undefined && j.samples !== samples)
    throw new IndexInvalid(file, `samples is ${j.samples} but the shards add up to ${samples}`);
  if (j.tokens !== undefined && j.tokens !== tokens)
    throw new IndexInvalid(file, `tokens is ${j.tokens} but the shards add up to ${tokens}`);
  const tok = j.tokenizer as { sha256?: unknown } | null | undefined;
  if (tok !== null && tok !== undefined && (typeof tok.sha256 !== "string" || tok.sha256.length !== 64))
    throw new IndexInvalid(file, "tokenizer.sha256 is not a sha256");
  return {
    ...(j as unknown as ShardIndex),
    split: (j.split as string | null | undefined) ?? null,
    tokenizer: (tok as ShardIndex["tokenizer"]) ?? null,
    packed: Boolean(j.packed),
    raw_text: Boolean(j.raw_text),
    samples,
    tokens,
  };
}

/** Shard file name for shard number i. */
export function shardFileName(i: number): string {
  return `shard-${String(i).padStart(5, "0")}.arrow`;
}
