import { DTYPE_BYTES, DTYPE_CODES, type DTypeCode, type DTypeName } from "@mbert/kernels";

export type DType = DTypeName;
export type Device = "cpu" | "cuda";

export const DTYPES: readonly DType[] = ["float32", "float64", "bfloat16", "int32"];

export function dtypeCode(d: DType): DTypeCode {
  return DTYPE_CODES[d];
}

export function dtypeBytes(d: DType): number {
  return DTYPE_BYTES[d];
}

export function isFloat(d: DType): boolean {
  return d !== "int32";
}

/** The dtype of statistics (LayerNorm mean/rstd, log-sum-exp, losses) for compute dtype `d`. */
export function statDType(d: DType): DType {
  return d === "float64" ? "float64" : "float32";
}

export type HostArray = Float32Array | Float64Array | Uint16Array | Int32Array;

export function hostArray(d: DType, n: number): HostArray {
  switch (d) {
    case "float32":
      return new Float32Array(n);
    case "float64":
      return new Float64Array(n);
    case "bfloat16":
      return new Uint16Array(n);
    case "int32":
      return new Int32Array(n);
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float -> bfloat16 bits, round to nearest even; NaN stays NaN. */
export function floatToBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16ToFloat(b: number): number {
  u32[0] = b << 16;
  return f32[0]!;
}

/** Converts plain numbers to the host representation of dtype `d`. */
export function toHost(d: DType, values: ArrayLike<number>): HostArray {
  const out = hostArray(d, values.length);
  if (d === "bfloat16") {
    for (let i = 0; i < values.length; i++) out[i] = floatToBf16(values[i]!);
  } else if (d === "int32") {
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (!Number.isInteger(v)) throw new TypeError(`int32 tensor: value ${v} at ${i} is not an integer`);
      out[i] = v;
    }
  } else {
    (out as Float32Array).set(values);
  }
  return out;
}

/** Reads the host representation back to plain numbers. */
export function fromHost(d: DType, data: HostArray): number[] {
  const out = new Array<number>(data.length);
  if (d === "bfloat16") for (let i = 0; i < data.length; i++) out[i] = bf16ToFloat(data[i]!);
  else for (let i = 0; i < data.length; i++) out[i] = data[i]!;
  return out;
}
