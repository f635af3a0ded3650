// safetensors reader and writer (https://huggingface.co/docs/safetensors).
//
// Layout: 8-byte little-endian header length N | N bytes of JSON header |
// data section. The header maps each tensor name to
// { dtype, shape, data_offsets: [begin, end] } (offsets relative to the data
// section) plus an optional "__metadata__" map of strings. Everything in the
// header is checked against the file before any byte is used; a malformed file
// throws SafetensorsError naming the file and the fault. Writes go to a
// temporary file that is renamed into place, so a crash never leaves a
// half-written checkpoint under the real name.

import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { numel } from "@mbert/tensor";
import { SafetensorsError } from "./errors.js";

export type SafetensorsDtype = "F32" | "F16" | "BF16" | "F64" | "I32" | "I64";

export const SAFETENSORS_DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I32: 4,
  I64: 8,
};

/** The host array holding one tensor: F16/BF16 keep their raw 16-bit patterns. */
export type SafetensorsArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint16Array;

export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  data: SafetensorsArray;
}

export interface SafetensorsContents {
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

interface HeaderEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

const MAX_HEADER_BYTES = 100 * 1024 * 1024; // the reference implementation's limit

/** Parses and validates the header of a file of `fileBytes` bytes. */
function parseHeader(
  file: string,
  lengthBytes: Buffer,
  readHeader: (n: number) => Buffer,
  fileBytes: number,
): { entries: Map<string, HeaderEntry>; metadata: Record<string, string>; dataStart: number } {
  if (fileBytes < 8)
    throw new SafetensorsError(file, "TOO_SHORT", `${fileBytes} bytes, fewer than the 8-byte header length`);
  const n = lengthBytes.readBigUInt64LE(0);
  if (n > BigInt(fileBytes - 8) || n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      file,
      "HEADER_LENGTH",
      `header length ${n} exceeds the ${fileBytes - 8} bytes after it`,
    );
  }
  const headerLen = Number(n);
  const dataStart = 8 + headerLen;
  const dataBytes = fileBytes - dataStart;
  let header: unknown;
  try {
    header = JSON.parse(readHeader(headerLen).toString("utf8"));
  } catch (e) {
    throw new SafetensorsError(
      file,
      "HEADER_JSON",
      `header is not well-formed JSON (${(e as Error).message})`,
    );
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new SafetensorsError(file, "HEADER_JSON", "header is not a JSON object");
  }
  const entries = new Map<string, HeaderEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
        throw new SafetensorsError(file, "ENTRY", "__metadata__ is not an object of strings");
      }
      for (const v of Object.values(raw)) {
        if (typeof v !== "string")
          throw new SafetensorsError(file, "ENTRY", "__metadata__ holds a non-string value");
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e === null || typeof e !== "object")
      throw new SafetensorsError(file, "ENTRY", `${name}: entry is not an object`);
    if (typeof e.dtype !== "string") throw new SafetensorsError(file, "ENTRY", `${name}: dtype missing`);
    if (!(e.dtype in SAFETENSORS_DTYPE_BYTES)) {
      throw new SafetensorsError(
        file,
        "DTYPE",
        `${name}: dtype ${e.dtype} is not one of ${Object.keys(SAFETENSORS_DTYPE_BYTES).join("/")}`,
      );
    }
    const dtype = e.dtype as SafetensorsDtype;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(file, "ENTRY", `${name}: shape is not a list of non-negative integers`);
    }
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw new SafetensorsError(file, "ENTRY", `${name}: data_offsets is not [begin, end]`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end || end > dataBytes) {
      throw new SafetensorsError(
        file,
        "OFFSETS",
        `${name}: data_offsets [${begin}, ${end}] fall outside the ${dataBytes}-byte data section`,
      );
    }
    const shape = e.shape as number[];
    const want = numel(shape) * SAFETENSORS_DTYPE_BYTES[dtype];
    if (want !== end - begin) {
      throw new SafetensorsError(
        file,
        "SPAN",
        `${name}: shape [${shape.join(", ")}] of ${dtype} needs ${want} bytes but data_offsets span ${end - begin}`,
      );
    }
    entries.set(name, { dtype, shape, begin, end });
  }
  // Tensors must tile the data section: sorted by offset, no overlap, no hole.
  const sorted = [...entries.entries()].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let cursor = 0;
  let prev = "(start of data)";
  for (const [name, e] of sorted) {
    if (e.begin !== cursor) {
      const what = e.begin < cursor ? "overlaps" : "leaves a gap after";
      throw new SafetensorsError(
        file,
        "OVERLAP",
        `${name} (bytes ${e.begin}..${e.end}) ${what} ${prev} (ends at ${cursor})`,
      );
    }
    cursor = e.end;
    prev = name;
  }
  if (cursor !== dataBytes) {
    throw new SafetensorsError(file, "OVERLAP", `tensors cover ${cursor} of the ${dataBytes} data bytes`);
  }
  return { entries, metadata, dataStart };
}

function toArray(dtype: SafetensorsDtype, bytes: Buffer): SafetensorsArray {
  // Copy into a fresh, aligned buffer: the data section need not be aligned.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  const buf = copy.buffer;
  switch (dtype) {
    case "F32":
      return new Float32Array(buf);
    case "F64":
      return new Float64Array(buf);
    case "I32":
      return new Int32Array(buf);
    case "I64":
      return new BigInt64Array(buf);
    case "F16":
    case "BF16":
      return new Uint16Array(buf);
  }
}

/** Reads and validates the header of the open file `fd`. */
function parseFileHeader(file: string, fd: number): ReturnType<typeof parseHeader> {
  const size = fs.fstatSync(fd).size;
  const len = Buffer.alloc(8);
  fs.readSync(fd, len, 0, Math.min(8, size), 0);
  return parseHeader(
    file,
    len,
    (n) => {
      const b = Buffer.alloc(n);
      fs.readSync(fd, b, 0, n, 8);
      return b;
    },
    size,
  );
}

/** Lists the tensors of a file (name -> dtype, shape) after validating its header. */
export function readSafetensorsHeader(
  file: string,
): Map<string, { dtype: SafetensorsDtype; shape: number[] }> {
  const fd = fs.openSync(file, "r");
  try {
    const { entries } = parseFileHeader(file, fd);
    return new Map([...entries].map(([k, e]) => [k, { dtype: e.dtype, shape: e.shape }]));
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads and validates a whole safetensors file. */
export function readSafetensors(file: string): SafetensorsContents {
  const fd = fs.openSync(file, "r");
  try {
    const { entries, metadata, dataStart } = parseFileHeader(file, fd);
    const tensors = new Map<string, SafetensorsEntry>();
    for (const [name, e] of entries) {
      const bytes = Buffer.alloc(e.end - e.begin);
      let done = 0;
      while (done < bytes.byteLength) {
        const got = fs.readSync(fd, bytes, done, bytes.byteLength - done, dataStart + e.begin + done);
        if (got === 0) throw new SafetensorsError(file, "OFFSETS", `${name}: file ended while reading`);
        done += got;
      }
      tensors.set(name, { dtype: e.dtype, shape: e.shape, data: toArray(e.dtype, bytes) });
    }
    return { tensors, metadata };
  } finally {
    fs.closeSync(fd);
  }
}

/** Parses safetensors bytes held in memory (`name` is used in error messages). */
export function parseSafetensors(bytes: Uint8Array, name = "<buffer>"): SafetensorsContents {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { entries, metadata, dataStart } = parseHeader(
    name,
    buf.byteLength >= 8 ? buf.subarray(0, 8) : Buffer.alloc(8),
    (n) => buf.subarray(8, 8 + n),
    buf.byteLength,
  );
  const tensors = new Map<string, SafetensorsEntry>();
  for (const [k, e] of entries) {
    tensors.set(k, {
      dtype: e.dtype,
      shape: e.shape,
      data: toArray(e.dtype, buf.subarray(dataStart + e.begin, dataStart + e.end)),
    });
  }
  return { tensors, metadata };
}

function dtypeOf(data: SafetensorsArray, declared?: SafetensorsDtype): SafetensorsDtype {
  if (data instanceof Float32Array) return "F32";
  if (data instanceof Float64Array) return "F64";
  if (data instanceof Int32Array) return "I32";
  if (data instanceof BigInt64Array) return "I64";
  return declared === "F16" ? "F16" : "BF16";
}

/** A tensor to write: the array decides the dtype (Uint16Array: BF16 unless `dtype: "F16"`). */
export interface SafetensorsInput {
  data: SafetensorsArray;
  shape: number[];
  dtype?: SafetensorsDtype;
}

/** Serializes tensors (sorted by name) to safetensors bytes. */
export function serializeSafetensors(
  tensors: Map<string, SafetensorsInput> | Record<string, SafetensorsInput>,
  metadata: Record<string, string> = {},
): Buffer {
  const map = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  const names = [...map.keys()].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = map.get(name)!;
    const dtype = dtypeOf(t.data, t.dtype);
    if (numel(t.shape) !== t.data.length) {
      throw new RangeError(
        `serializeSafetensors: ${name}: shape [${t.shape.join(", ")}] holds ${numel(t.shape)} elements, data has ${t.data.length}`,
      );
    }
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), "utf8");
  // Pad the header with spaces so the data section starts 8-byte aligned.
  const pad = (8 - (json.byteLength % 8)) % 8;
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = Buffer.alloc(8 + json.byteLength + offset);
  out.writeBigUInt64LE(BigInt(json.byteLength), 0);
  json.copy(out, 8);
  let at = 8 + json.byteLength;
  for (const name of names) {
    const d = map.get(name)!.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}

/** Writes `bytes` to `file` atomically: a temporary file in the same folder, fsync, rename. */
export function writeFileAtomic(file: string, bytes: Uint8Array | string): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    const fd = fs.openSync(tmp, "w");
    try {
      fs.writeFileSync(fd, bytes);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** Writes tensors to a safetensors file atomically. */
export function writeSafetensors(
  file: string,
  tensors: Map<string, SafetensorsInput> | Record<string, SafetensorsInput>,
  metadata: Record<string, string> = {},
): void {
  writeFileAtomic(file, serializeSafetensors(tensors, metadata));
}

/** float32 values of a tensor of any floating dtype (BF16/F16 decoded; ints converted). */
export function toFloat32(entry: SafetensorsEntry): Float32Array {
  const d = entry.data;
  if (d instanceof Float32Array) return d;
  const out = new Float32Array(d.length);
  if (d instanceof Uint16Array) {
    if (entry.dtype === "BF16") {
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < d.length; i++) u32[i] = d[i]! << 16;
    } else {
      for (let i = 0; i < d.length; i++) out[i] = halfToFloat(d[i]!);
    }
    return out;
  }
  for (let i = 0; i < d.length; i++) out[i] = Number(d[i]!);
  return out;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** int32 values of an integer tensor (I64 must fit in int32). */
export function toInt32(entry: SafetensorsEntry, name = "tensor"): Int32Array {
  const d = entry.data;
  if (d instanceof Int32Array) return d;
  const out = new Int32Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const v = Number(d[i]!);
    if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
      throw new RangeError(`${name}[${i}] = ${v} does not fit in int32`);
    }
    out[i] = v;
  }
  return out;
}
