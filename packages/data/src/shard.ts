// The shard writer: corpus -> tokenized samples -> Arrow IPC shards + index.json.
//
// Documents are read in order, routed to a split by a hash of their text,
// tokenized in chunks by worker threads (results consumed in submission order,
// so output never depends on thread timing), and appended to the split's
// current shard. A shard is closed at a document boundary once it reaches the
// target size: written to a temp file, renamed, hashed, and recorded in the
// split's .progress.json together with how many input documents it covers. A
// re-run with the same inputs and options keeps every recorded shard that still
// verifies and skips (without tokenizing) the documents they cover.

import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, rm, stat } from "node:fs/promises";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { type CorpusStats, type TextFormat, emptyCorpusStats, readCorpus } from "./corpus.js";
import { DataError, DataUsageError, TokenizerError } from "./errors.js";
import { writeFileAtomic } from "./fsutil.js";
import { sha256Bytes, sha256File } from "./hash.js";
import { fnv1a, hash4 } from "./rng.js";
import {
  SHARD_FORMAT,
  SHARD_FORMAT_VERSION,
  type ColumnSpec,
  type ShardEntry,
  type ShardIndex,
  encodeShard,
  shardFileName,
} from "./shard-format.js";
import { type ChunkDoc, type ChunkResult, ChunkTokenizer, type TokenizeJobConfig } from "./shard-work.js";
import { type EncoderChoice, TextTokenizer } from "./tokenizer.js";

export interface ShardOptions {
  /** Path to tokenizer.json. */
  tokenizer: string;
  /** Text/JSONL files, folders of them, or "brown" for the embedded Brown corpus. */
  inputs: string[];
  /** Output folder (created). With holdoutFraction > 0, shards go to <outDir>/train and <outDir>/val. */
  outDir: string;
  /** Maximum sample length in tokens, [CLS]/[SEP] included (default 128). */
  maxSeqLen?: number;
  /** Target shard size in bytes (default 32 MiB). A shard closes at the first document boundary past it. */
  shardSizeBytes?: number;
  /** Tokenizer worker threads (default: cores - 1, at least 1). 0 tokenizes in this thread. */
  workers?: number;
  /** Text -> ids implementation (default "auto": our BERT WordPiece encoder when it applies). Ids are the same either way. */
  encoder?: EncoderChoice;
  /** Store the text (Utf8 column "text") instead of token ids; the reader tokenizes. */
  rawText?: boolean;
  /** Pack consecutive segments of a document into samples up to maxSeqLen (RoBERTa-style). */
  pack?: boolean;
  /** Fraction of documents (by hash of their text) written to the "val" split (default 0: no split). */
  holdoutFraction?: number;
  /** Seed of the holdout hash (default 0). */
  holdoutSeed?: number;
  /** Text file layout (see readCorpus); default by file extension. */
  format?: TextFormat;
  /** Worker script; default dist/shard-worker.js beside this module, else in-thread. null forces in-thread. */
  workerScript?: URL | null;
  /** Called after each shard is written. */
  onShard?: (info: { split: string | null; entry: ShardEntry }) => void;
}

export interface SplitResult {
  split: string | null;
  dir: string;
  index: ShardIndex;
  /** Shards kept from an earlier, interrupted run. */
  resumedShards: number;
  writtenShards: number;
}

export interface ShardResult {
  splits: SplitResult[];
  corpus: CorpusStats;
  /** UTF-8 bytes of text tokenized in this run (documents skipped on resume not counted). */
  textBytes: number;
  seconds: number;
  /** "threads" or "inline": where tokenization ran. */
  tokenizedIn: "threads" | "inline";
  workers: number;
  /** The text -> ids implementation used: "fast" (our BERT WordPiece encoder) or "hf". */
  encoder: "fast" | "hf";
}

const PROGRESS_FILE = ".progress.json";
const CHUNK_BYTES = 256 * 1024;

interface ProgressEntry extends ShardEntry {
  /** Input documents (global count) covered once this shard is written. */
  doc_end: number;
}

interface Progress {
  fingerprint: string;
  shards: ProgressEntry[];
}

/** The worker script built next to this module (dist/), or null when running from sources. */
export function defaultShardWorkerUrl(): URL | null {
  const url = new URL("./shard-worker.js", import.meta.url);
  try {
    return existsSync(fileURLToPath(url)) ? url : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------
// Tokenizer pool

interface Pool {
  kind: "threads" | "inline";
  submit(docs: ChunkDoc[]): Promise<ChunkResult>;
  close(): Promise<void>;
}

function inlinePool(cfg: TokenizeJobConfig): Pool {
  const t = new ChunkTokenizer(cfg);
  return {
    kind: "inline",
    // Yield to the event loop between chunks so IO keeps flowing.
    submit: (docs) =>
      new Promise((res, rej) =>
        setImmediate(() => {
          try {
            res(t.run(docs));
          } catch (err) {
            rej(err);
          }
        }),
      ),
    close: async () => {},
  };
}

function threadPool(cfg: TokenizeJobConfig, n: number, script: URL): Pool {
  type Pending = { resolve: (r: ChunkResult) => void; reject: (e: Error) => void };
  const workers: Worker[] = [];
  const pending = new Map<number, Pending>();
  let nextId = 0;
  let failed: Error | null = null;
  const failAll = (err: Error): void => {
    failed = err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  for (let i = 0; i < n; i++) {
    const w = new Worker(script, { workerData: cfg });
    w.on("message", (m: { type: string; id?: number; result?: ChunkResult; message?: string }) => {
      if (m.type === "result") {
        const p = pending.get(m.id!);
        pending.delete(m.id!);
        p?.resolve(m.result!);
      } else {
        const err = new DataError("TOKENIZE_FAILED", `shard worker: ${m.message}`);
        if (m.id !== undefined) {
          const p = pending.get(m.id);
          pending.delete(m.id);
          p?.reject(err);
        } else failAll(err);
      }
    });
    w.on("error", (err) => failAll(new DataError("TOKENIZE_FAILED", `shard worker crashed: ${err.message}`)));
    w.on("exit", (code) => {
      if (code !== 0 && pending.size > 0)
        failAll(new DataError("TOKENIZE_FAILED", `shard worker exited with code ${code}`));
    });
    workers.push(w);
  }
  return {
    kind: "threads",
    submit(docs) {
      if (failed) return Promise.reject(failed);
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        workers[id % n]!.postMessage({ id, docs });
      });
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

// ---------------------------------------------------------------------------
// One split's shard sequence

class SplitWriter {
  readonly shards: ProgressEntry[];
  /** Documents below this global index are already in kept shards. */
  readonly skipBelow: number;
  readonly resumed: number;
  written = 0;
  private lengths: number[] = [];
  private values = new Int32Array(1 << 16);
  private nValues = 0;
  private texts: string[] = [];
  private textBytes = 0;

  constructor(
    readonly split: string | null,
    readonly dir: string,
    kept: ProgressEntry[],
    private readonly fingerprint: string,
    private readonly targetBytes: number,
    private readonly rawText: boolean,
    private readonly onShard: ShardOptions["onShard"],
  ) {
    this.shards = kept;
    this.resumed = kept.length;
    this.skipBelow = kept.length > 0 ? kept[kept.length - 1]!.doc_end : 0;
  }

  private bytesBuffered(): number {
    return this.rawText ? this.textBytes + 4 * this.texts.length : 4 * (this.nValues + this.lengths.length);
  }

  addTokens(lengths: Int32Array, values: Int32Array, from: number, count: number, valueFrom: number): number {
    let v = valueFrom;
    for (let i = 0; i < count; i++) {
      const len = lengths[from + i]!;
      this.lengths.push(len);
      if (this.nValues + len > this.values.length) {
        const bigger = new Int32Array(Math.max(this.values.length * 2, this.nValues + len));
        bigger.set(this.values.subarray(0, this.nValues));
        this.values = bigger;
      }
      this.values.set(values.subarray(v, v + len), this.nValues);
      this.nValues += len;
      v += len;
    }
    return v;
  }

  addTexts(texts: string[]): void {
    for (const t of texts) {
      this.texts.push(t);
      this.textBytes += Buffer.byteLength(t);
    }
  }

  /** Call after each whole document; closes the shard if it is big enough. */
  async endDocument(docEnd: number): Promise<void> {
    if (this.bytesBuffered() >= this.targetBytes) await this.flush(docEnd);
  }

  async flush(docEnd: number): Promise<void> {
    const n = this.rawText ? this.texts.length : this.lengths.length;
    if (n === 0) return;
    let bytes: Uint8Array;
    let tokens = 0;
    if (this.rawText) {
      bytes = encodeShard({ offsets: new Int32Array(0), values: new Int32Array(0), texts: this.texts });
    } else {
      const offsets = new Int32Array(n + 1);
      for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i]! + this.lengths[i]!;
      tokens = this.nValues;
      bytes = encodeShard({ offsets, values: this.values.subarray(0, this.nValues) });
    }
    const file = shardFileName(this.shards.length);
    await writeFileAtomic(join(this.dir, file), bytes);
    const entry: ProgressEntry = {
      file,
      samples: n,
      tokens,
      bytes: bytes.length,
      sha256: sha256Bytes(bytes),
      doc_end: docEnd,
    };
    this.shards.push(entry);
    this.written++;
    const progress: Progress = { fingerprint: this.fingerprint, shards: this.shards };
    await writeFileAtomic(join(this.dir, PROGRESS_FILE), JSON.stringify(progress));
    this.lengths = [];
    this.nValues = 0;
    this.texts = [];
    this.textBytes = 0;
    const { doc_end: _, ...plain } = entry;
    this.onShard?.({ split: this.split, entry: plain });
  }
}

/** Whether the shard file of an entry in `dir` still has the recorded size and sha256. */
async function shardFileMatches(dir: string, e: ShardEntry): Promise<boolean> {
  const path = join(dir, e.file);
  try {
    return (await stat(path)).size === e.bytes && (await sha256File(path)) === e.sha256;
  } catch {
    return false;
  }
}

/** Shards recorded in a split's progress file that still verify, in order (stops at the first bad one). */
async function keptShards(dir: string, fingerprint: string): Promise<ProgressEntry[]> {
  let progress: Progress;
  try {
    progress = JSON.parse(await readFile(join(dir, PROGRESS_FILE), "utf8")) as Progress;
  } catch {
    return [];
  }
  if (progress.fingerprint !== fingerprint || !Array.isArray(progress.shards)) return [];
  const kept: ProgressEntry[] = [];
  for (const [i, e] of progress.shards.entries()) {
    if (e.file !== shardFileName(i) || !(await shardFileMatches(dir, e))) break;
    kept.push(e);
  }
  return kept;
}

/** A finished split: index.json of this fingerprint whose shards all verify. */
async function finishedIndex(dir: string, fingerprint: string): Promise<ShardIndex | null> {
  let index: ShardIndex & { fingerprint?: string };
  try {
    index = JSON.parse(await readFile(join(dir, "index.json"), "utf8"));
  } catch {
    return null;
  }
  if (index.fingerprint !== fingerprint || !Array.isArray(index.shards)) return null;
  for (const e of index.shards) if (!(await shardFileMatches(dir, e))) return null;
  return index;
}

async function describeInputs(inputs: string[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const input of inputs) {
    if (input === "brown") {
      out.push("brown");
      continue;
    }
    const p = resolve(input);
    try {
      const st = await stat(p);
      if (st.isDirectory()) {
        const names = (await readdir(p)).filter((n) => !n.startsWith(".")).sort();
        const files = [];
        for (const n of names) {
          const s = await stat(join(p, n));
          files.push([n, s.size, s.mtimeMs]);
        }
        out.push([p, files]);
      } else out.push([p, st.size, st.mtimeMs]);
    } catch {
      out.push([p, null]);
    }
  }
  return out;
}

/** Which split a document goes to: 1 (val) with probability holdoutFraction, by a hash of its text. */
export function holdoutSplit(segments: string[], fraction: number, seed = 0): number {
  if (fraction <= 0) return 0;
  let h = 0;
  for (const s of segments) h = hash4(h, fnv1a(s), seed >>> 0, 0x401d);
  return h / 4294967296 < fraction ? 1 : 0;
}

/** Write shards (and index.json) for a corpus. See ShardOptions. */
export async function shard(options: ShardOptions): Promise<ShardResult> {
  const t0 = performance.now();
  const maxSeqLen = options.maxSeqLen ?? 128;
  const shardSizeBytes = options.shardSizeBytes ?? 32 * 1024 * 1024;
  const holdout = options.holdoutFraction ?? 0;
  const rawText = options.rawText ?? false;
  const pack = options.pack ?? false;
  if (!Number.isInteger(maxSeqLen) || maxSeqLen < 3)
    throw new DataUsageError(`maxSeqLen must be an integer >= 3, got ${maxSeqLen}`);
  if (!(shardSizeBytes > 0)) throw new DataUsageError(`shardSizeBytes must be > 0, got ${shardSizeBytes}`);
  if (!(holdout >= 0 && holdout < 1))
    throw new DataUsageError(`holdoutFraction must be in [0, 1), got ${holdout}`);
  if (rawText && pack)
    throw new DataUsageError("--raw-text and --pack cannot be combined: packing needs token counts");
  if (options.inputs.length === 0)
    throw new DataUsageError("no inputs: pass text/JSONL files, folders, or brown");

  const tokenizerText = await readFile(options.tokenizer, "utf8").catch((err: Error) => {
    throw new TokenizerError(options.tokenizer, `cannot read it (${err.message})`, err);
  });
  const encoder = options.encoder ?? "auto";
  const tok = TextTokenizer.fromJsonText(tokenizerText, options.tokenizer, { encoder });
  const fingerprint = sha256Bytes(
    JSON.stringify({
      v: SHARD_FORMAT_VERSION,
      tokenizer: tok.sha256,
      maxSeqLen,
      shardSizeBytes,
      holdout,
      seed: options.holdoutSeed ?? 0,
      rawText,
      pack,
      format: options.format ?? null,
      inputs: await describeInputs(options.inputs),
    }),
  );

  const splitDefs: Array<{ name: string | null; dir: string }> =
    holdout > 0
      ? [
          { name: "train", dir: join(options.outDir, "train") },
          { name: "val", dir: join(options.outDir, "val") },
        ]
      : [{ name: null, dir: options.outDir }];

  const columns: ColumnSpec[] = rawText
    ? [{ name: "text", type: "utf8" }]
    : [{ name: "input_ids", type: "list<int32>" }];
  const makeIndex = (
    split: string | null,
    shards: ShardEntry[],
    corpus: CorpusStats,
  ): ShardIndex & { fingerprint: string } => ({
    format: SHARD_FORMAT,
    version: SHARD_FORMAT_VERSION,
    split,
    columns,
    tokenizer: { sha256: tok.sha256, vocab_size: tok.vocabSize },
    max_seq_len: maxSeqLen,
    packed: pack,
    raw_text: rawText,
    samples: shards.reduce((a, s) => a + s.samples, 0),
    tokens: shards.reduce((a, s) => a + s.tokens, 0),
    shards: shards.map(({ file, samples, tokens, bytes, sha256 }) => ({
      file,
      samples,
      tokens,
      bytes,
      sha256,
    })),
    corpus,
    created_by: "@mbert/data",
    fingerprint,
  });

  // Already complete?
  const done: Array<ShardIndex | null> = [];
  for (const s of splitDefs) done.push(await finishedIndex(s.dir, fingerprint));
  if (done.every((d) => d !== null)) {
    return {
      splits: splitDefs.map((s, i) => ({
        split: s.name,
        dir: s.dir,
        index: done[i]!,
        resumedShards: done[i]!.shards.length,
        writtenShards: 0,
      })),
      corpus: done[0]!.corpus ?? emptyCorpusStats(),
      textBytes: 0,
      seconds: (performance.now() - t0) / 1000,
      tokenizedIn: "inline",
      workers: 0,
      encoder: tok.encoder,
    };
  }

  const writers: SplitWriter[] = [];
  for (const s of splitDefs) {
    await mkdir(s.dir, { recursive: true });
    const kept = await keptShards(s.dir, fingerprint);
    // Remove what a previous run left beyond the kept prefix (stale shards, an old index.json).
    for (const n of await readdir(s.dir)) {
      const m = /^shard-(\d+)\.arrow$/.exec(n);
      if ((m && Number(m[1]) >= kept.length) || n === "index.json" || /^\..*\.tmp$/.test(n))
        await rm(join(s.dir, n), { force: true });
    }
    writers.push(new SplitWriter(s.name, s.dir, kept, fingerprint, shardSizeBytes, rawText, options.onShard));
  }
  const skipAll = Math.min(...writers.map((w) => w.skipBelow));

  const nWorkers = options.workers ?? Math.max(1, cpus().length - 1);
  const script = options.workerScript === undefined ? defaultShardWorkerUrl() : options.workerScript;
  const cfg: TokenizeJobConfig = {
    tokenizerText,
    tokenizerSource: options.tokenizer,
    maxSeqLen,
    pack,
    encoder,
  };
  const pool = rawText ? null : nWorkers > 0 && script ? threadPool(cfg, nWorkers, script) : inlinePool(cfg);

  const corpus = emptyCorpusStats();
  let textBytes = 0;
  // Chunks in flight, consumed strictly in order.
  const inflight: Array<{ docs: Array<{ g: number; split: number }>; result: Promise<ChunkResult> }> = [];
  const maxInflight = Math.max(2, 2 * nWorkers);
  const consume = async (): Promise<void> => {
    const c = inflight.shift()!;
    const r = await c.result;
    textBytes += r.textBytes;
    let s = 0;
    let v = 0;
    for (let d = 0; d < c.docs.length; d++) {
      const { g, split } = c.docs[d]!;
      const n = r.docSamples[d]!;
      const w = writers[split]!;
      v = w.addTokens(r.lengths, r.values, s, n, v);
      s += n;
      await w.endDocument(g + 1);
    }
  };

  let chunkDocs: ChunkDoc[] = [];
  let chunkMeta: Array<{ g: number; split: number }> = [];
  let chunkBytes = 0;
  const submit = async (): Promise<void> => {
    if (chunkDocs.length === 0) return;
    inflight.push({ docs: chunkMeta, result: pool!.submit(chunkDocs) });
    chunkDocs = [];
    chunkMeta = [];
    chunkBytes = 0;
    if (inflight.length >= maxInflight) await consume();
  };

  let g = 0;
  try {
    for await (const doc of readCorpus(options.inputs, {
      stats: corpus,
      ...(options.format ? { format: options.format } : {}),
    })) {
      const gi = g++;
      if (gi < skipAll) continue;
      const split = holdoutSplit(doc.segments, holdout, options.holdoutSeed ?? 0);
      const w = writers[split]!;
      if (gi < w.skipBelow) continue;
      if (rawText) {
        w.addTexts(doc.segments);
        textBytes += doc.segments.reduce((a, s) => a + Buffer.byteLength(s), 0);
        await w.endDocument(gi + 1);
        continue;
      }
      chunkDocs.push({ segments: doc.segments });
      chunkMeta.push({ g: gi, split });
      for (const s of doc.segments) chunkBytes += s.length;
      if (chunkBytes >= CHUNK_BYTES) await submit();
    }
    await submit();
    while (inflight.length > 0) await consume();
  } finally {
    // Let in-flight chunks settle before stopping the workers.
    await Promise.allSettled(inflight.map((c) => c.result));
    await pool?.close();
  }

  const splits: SplitResult[] = [];
  for (const w of writers) {
    await w.flush(g);
    const index = makeIndex(w.split, w.shards, corpus);
    await writeFileAtomic(join(w.dir, "index.json"), `${JSON.stringify(index, null, 2)}\n`);
    await rm(join(w.dir, PROGRESS_FILE), { force: true });
    splits.push({ split: w.split, dir: w.dir, index, resumedShards: w.resumed, writtenShards: w.written });
  }
  return {
    splits,
    corpus,
    textBytes,
    seconds: (performance.now() - t0) / 1000,
    tokenizedIn: pool?.kind ?? "inline",
    workers: pool?.kind === "threads" ? nWorkers : 0,
    encoder: tok.encoder,
  };
}
