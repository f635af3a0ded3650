import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  SafetensorsError,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  toFloat32,
  writeSafetensors,
} from "../src/index.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mbert-st-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Builds a file from a raw header object and a data section. */
function raw(header: unknown, data: Uint8Array, lengthOverride?: bigint): Buffer {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(json.byteLength));
  return Buffer.concat([len, json, data]);
}

function fault(bytes: Uint8Array): string {
  try {
    parseSafetensors(bytes, "bad.safetensors");
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    expect((e as Error).message).toContain("bad.safetensors");
    return (e as SafetensorsError).code;
  }
  return "no error";
}

describe("safetensors", () => {
  it("round-trips every dtype through a file, sorted and 8-byte aligned", () => {
    const file = path.join(tmp, "a.safetensors");
    writeSafetensors(
      file,
      {
        "z.f32": { data: Float32Array.from([1, -2.5, 3]), shape: [3] },
        "a.f64": { data: Float64Array.from([1e-300, 2]), shape: [2, 1] },
        "m.i32": { data: Int32Array.from([-7, 8]), shape: [1, 2] },
        "m.i64": { data: BigInt64Array.from([5n]), shape: [] },
        "b.bf16": { data: Uint16Array.from([0x3f80, 0xc000]), shape: [2] },
        "b.f16": { data: Uint16Array.from([0x3c00]), shape: [1], dtype: "F16" },
        empty: { data: new Float32Array(0), shape: [0, 4] },
      },
      { format: "pt" },
    );
    const bytes = fs.readFileSync(file);
    expect(Number(bytes.readBigUInt64LE(0)) % 8).toBe(0);
    const { tensors, metadata } = readSafetensors(file);
    expect(metadata).toEqual({ format: "pt" });
    expect([...tensors.get("z.f32")!.data]).toEqual([1, -2.5, 3]);
    expect(tensors.get("a.f64")!.shape).toEqual([2, 1]);
    expect([...tensors.get("m.i32")!.data]).toEqual([-7, 8]);
    expect(tensors.get("m.i64")!.data[0]).toBe(5n);
    expect([...toFloat32(tensors.get("b.bf16")!)]).toEqual([1, -2]);
    expect([...toFloat32(tensors.get("b.f16")!)]).toEqual([1]);
    expect(tensors.get("empty")!.shape).toEqual([0, 4]);
    // no temporary file left behind
    expect(fs.readdirSync(tmp).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  it("refuses a file shorter than the length prefix", () => {
    expect(fault(new Uint8Array(5))).toBe("SAFETENSORS_TOO_SHORT");
  });

  it("refuses a header length past the end of the file", () => {
    expect(fault(raw({}, new Uint8Array(0), 1000n))).toBe("SAFETENSORS_HEADER_LENGTH");
    expect(fault(raw({}, new Uint8Array(0), 2n ** 63n))).toBe("SAFETENSORS_HEADER_LENGTH");
  });

  it("refuses a header that is not a JSON object", () => {
    expect(fault(raw("{not json", new Uint8Array(0)))).toBe("SAFETENSORS_HEADER_JSON");
    expect(fault(raw("[1,2]", new Uint8Array(0)))).toBe("SAFETENSORS_HEADER_JSON");
  });

  it("refuses entries without dtype, shape or offsets", () => {
    expect(fault(raw({ a: { shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)))).toBe(
      "SAFETENSORS_ENTRY",
    );
    expect(fault(raw({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)))).toBe(
      "SAFETENSORS_ENTRY",
    );
    expect(fault(raw({ a: { dtype: "F32", shape: [1], data_offsets: [0] } }, new Uint8Array(4)))).toBe(
      "SAFETENSORS_ENTRY",
    );
  });

  it("refuses unknown dtypes", () => {
    expect(fault(raw({ a: { dtype: "F8_E4M3", shape: [4], data_offsets: [0, 4] } }, new Uint8Array(4)))).toBe(
      "SAFETENSORS_DTYPE",
    );
  });

  it("refuses a shape whose size differs from the byte span", () => {
    expect(fault(raw({ a: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)))).toBe(
      "SAFETENSORS_SPAN",
    );
  });

  it("refuses offsets outside the data section (truncated file)", () => {
    const good = serializeSafetensors({ a: { data: new Float32Array(8), shape: [8] } });
    expect(fault(good.subarray(0, good.byteLength - 4))).toBe("SAFETENSORS_OFFSETS");
  });

  it("refuses overlapping tensors and unaccounted bytes", () => {
    const h = {
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
    };
    expect(fault(raw(h, new Uint8Array(12)))).toBe("SAFETENSORS_OVERLAP");
    const gap = { a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } };
    expect(fault(raw(gap, new Uint8Array(8)))).toBe("SAFETENSORS_OVERLAP");
    const trailing = { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } };
    expect(fault(raw(trailing, new Uint8Array(8)))).toBe("SAFETENSORS_OVERLAP");
  });

  it("names the file when reading from disk", () => {
    const file = path.join(tmp, "trunc.safetensors");
    const good = serializeSafetensors({ a: { data: new Float32Array(8), shape: [8] } });
    fs.writeFileSync(file, good.subarray(0, good.byteLength - 1));
    expect(() => readSafetensors(file)).toThrow(file);
  });
});
