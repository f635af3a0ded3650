/**
 * TensorBoard event files, written without TensorFlow: a file of TFRecords
 * (u64 length, masked CRC32C of the length, payload, masked CRC32C of the
 * payload), each payload an `Event` protobuf. The first event carries
 * `file_version: "brain.Event:2"`; the rest carry scalar summaries.
 *
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; }
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LoggerDestination } from "../logger.js";

// ---- CRC32C (Castagnoli), table-driven ---------------------------------------
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15, add a constant. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

// ---- protobuf encoding (the few wire types we need) ---------------------------
class ProtoWriter {
  private parts: number[] = [];
  varint(v: number): this {
    // Non-negative integers below 2^53.
    let x = v;
    while (x >= 0x80) {
      this.parts.push((x % 0x80) | 0x80);
      x = Math.floor(x / 0x80);
    }
    this.parts.push(x);
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }
  double(field: number, v: number): this {
    this.tag(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.parts.push(...b);
    return this;
  }
  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.parts.push(...b);
    return this;
  }
  int64(field: number, v: number): this {
    return this.tag(field, 0).varint(v);
  }
  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2).varint(b.length);
    this.parts.push(...b);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export function encodeScalarEvent(
  wallTime: number,
  step: number,
  scalars: Record<string, number>,
): Uint8Array {
  const summary = new ProtoWriter();
  for (const [tag, value] of Object.entries(scalars)) {
    const v = new ProtoWriter().string(1, tag).float(2, value).finish();
    summary.bytes(1, v);
  }
  return new ProtoWriter().double(1, wallTime).int64(2, step).bytes(5, summary.finish()).finish();
}

export function encodeFileVersionEvent(wallTime: number): Uint8Array {
  return new ProtoWriter().double(1, wallTime).string(3, "brain.Event:2").finish();
}

/** Frames a payload as one TFRecord. */
export function tfrecord(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + payload.length + 4);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(payload.length), true);
  dv.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(payload, 12);
  dv.setUint32(12 + payload.length, maskedCrc32c(payload), true);
  return out;
}

// ---- decoding (for tests and tools) -----------------------------------------------
export interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: Record<string, number>;
}

class ProtoReader {
  pos = 0;
  constructor(readonly b: Uint8Array) {}
  done(): boolean {
    return this.pos >= this.b.length;
  }
  varint(): number {
    let result = 0;
    let mul = 1;
    for (;;) {
      const byte = this.b[this.pos++]!;
      result += (byte & 0x7f) * mul;
      if (byte < 0x80) return result;
      mul *= 0x80;
    }
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.pos += this.varint();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`protobuf: unsupported wire type ${wire}`);
  }
  sub(): Uint8Array {
    const n = this.varint();
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  fixed(n: 4 | 8): DataView {
    const dv = new DataView(this.b.buffer, this.b.byteOffset + this.pos, n);
    this.pos += n;
    return dv;
  }
}

function decodeEvent(bytes: Uint8Array): DecodedEvent {
  const r = new ProtoReader(bytes);
  const ev: DecodedEvent = { wallTime: 0, step: 0, scalars: {} };
  while (!r.done()) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1 && wire === 1) ev.wallTime = r.fixed(8).getFloat64(0, true);
    else if (field === 2 && wire === 0) ev.step = r.varint();
    else if (field === 3 && wire === 2) ev.fileVersion = new TextDecoder().decode(r.sub());
    else if (field === 5 && wire === 2) {
      const s = new ProtoReader(r.sub());
      while (!s.done()) {
        const k = s.varint();
        if (k >>> 3 !== 1 || (k & 7) !== 2) {
          s.skip(k & 7);
          continue;
        }
        const v = new ProtoReader(s.sub());
        let tag = "";
        let value = Number.NaN;
        while (!v.done()) {
          const vk = v.varint();
          if (vk >>> 3 === 1 && (vk & 7) === 2) tag = new TextDecoder().decode(v.sub());
          else if (vk >>> 3 === 2 && (vk & 7) === 5) value = v.fixed(4).getFloat32(0, true);
          else v.skip(vk & 7);
        }
        ev.scalars[tag] = value;
      }
    } else r.skip(wire);
  }
  return ev;
}

/** Reads an event file back, checking every CRC. */
export function readEventFile(file: string): DecodedEvent[] {
  const buf = new Uint8Array(fs.readFileSync(file));
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: DecodedEvent[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (pos + 12 > buf.length) throw new Error(`${file}: truncated record header at byte ${pos}`);
    const len = Number(dv.getBigUint64(pos, true));
    if (dv.getUint32(pos + 8, true) !== maskedCrc32c(buf.subarray(pos, pos + 8))) {
      throw new Error(`${file}: length CRC mismatch at byte ${pos}`);
    }
    const payload = buf.subarray(pos + 12, pos + 12 + len);
    if (payload.length !== len || pos + 16 + len > buf.length)
      throw new Error(`${file}: truncated record at byte ${pos}`);
    if (dv.getUint32(pos + 12 + len, true) !== maskedCrc32c(payload)) {
      throw new Error(`${file}: payload CRC mismatch at byte ${pos}`);
    }
    out.push(decodeEvent(payload));
    pos += 16 + len;
  }
  return out;
}

/** Writes scalars to `<logDir>/events.out.tfevents.<time>.<host>`; `tensorboard --logdir <logDir>` shows them. */
export class TensorBoardLogger extends LoggerDestination {
  readonly file: string;
  private fd: number;
  private pending = 0;

  constructor(
    readonly logDir: string,
    opts: { flushEvery?: number } = {},
  ) {
    super();
    fs.mkdirSync(logDir, { recursive: true });
    const now = Date.now() / 1000;
    this.file = path.join(logDir, `events.out.tfevents.${Math.floor(now)}.${os.hostname()}.${process.pid}`);
    this.fd = fs.openSync(this.file, "a");
    fs.writeSync(this.fd, tfrecord(encodeFileVersionEvent(now)));
    this.flushEvery = opts.flushEvery ?? 20;
  }
  private readonly flushEvery: number;

  override logMetrics(metrics: Record<string, number>, step: number): void {
    const finite: Record<string, number> = {};
    for (const [k, v] of Object.entries(metrics)) if (typeof v === "number") finite[k] = v;
    if (Object.keys(finite).length === 0 || this.fd < 0) return;
    fs.writeSync(this.fd, tfrecord(encodeScalarEvent(Date.now() / 1000, step, finite)));
    if (++this.pending >= this.flushEvery) this.flush();
  }

  flush(): void {
    if (this.fd >= 0) fs.fsyncSync(this.fd);
    this.pending = 0;
  }

  override close(): void {
    if (this.fd < 0) return;
    this.flush();
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}
