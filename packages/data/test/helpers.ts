import { Writable } from "node:stream";

/** A writable stream that keeps what was written, for command tests. */
export class StringSink extends Writable {
  text = "";
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.text += chunk.toString();
    cb();
  }
}
