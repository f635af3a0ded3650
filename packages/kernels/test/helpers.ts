import { cpu, DTYPE_CODES, type Ptr } from "../src/index.js";

export const F32 = DTYPE_CODES.float32;
export const F64 = DTYPE_CODES.float64;
export const BF16 = DTYPE_CODES.bfloat16;
export const I32 = DTYPE_CODES.int32;
export type FloatCode = typeof F32 | typeof F64;
export const FLOATS: FloatCode[] = [F32, F64];
/** Relative-error tolerance per dtype against a float64 JavaScript reference. */
export const tol = (dt: number): number => (dt === F64 ? 1e-11 : 2e-5);
export const SIZES = [1, 7, 129];

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randn(n: number, r: () => number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

const live = new Set<Ptr>();
const bytesOf = (dt: number): number => (dt === F64 ? 8 : dt === BF16 ? 2 : 4);

/** Values as the dtype stores them (float32 rounding applied), in float64. */
export function asStored(dt: number, x: ArrayLike<number>): Float64Array {
  const out = Float64Array.from(x as ArrayLike<number>);
  if (dt === F32) for (let i = 0; i < out.length; i++) out[i] = Math.fround(out[i]!);
  if (dt === I32) for (let i = 0; i < out.length; i++) out[i] = Math.trunc(out[i]!) || 0;
  return out;
}

export function alloc(dt: number, n: number): Ptr {
  const p = cpu.alloc(n * bytesOf(dt));
  live.add(p);
  return p;
}

export function upload(dt: number, x: ArrayLike<number>): Ptr {
  const p = alloc(dt, x.length);
  if (dt === F32) cpu.upload(p, 0, Float32Array.from(x));
  else if (dt === F64) cpu.upload(p, 0, Float64Array.from(x));
  else if (dt === I32) cpu.upload(p, 0, Int32Array.from(x));
  else throw new Error("upload: use cast for bf16");
  return p;
}

/** A buffer of n elements filled with NaN (or a sentinel for int32). */
export function poisoned(dt: number, n: number): Ptr {
  const p = alloc(dt, n);
  cpu.fill(dt as 0, p, n, dt === I32 ? -12345 : Number.NaN);
  return p;
}

export function download(dt: number, p: Ptr, n: number): Float64Array {
  if (dt === F32) {
    const o = new Float32Array(n);
    cpu.download(p, 0, o);
    return Float64Array.from(o);
  }
  if (dt === F64) {
    const o = new Float64Array(n);
    cpu.download(p, 0, o);
    return o;
  }
  if (dt === I32) {
    const o = new Int32Array(n);
    cpu.download(p, 0, o);
    return Float64Array.from(o);
  }
  const f = alloc(F32, n);
  cpu.cast(F32, f, BF16, p, n);
  return download(F32, f, n);
}

export function freeAll(): void {
  for (const p of live) cpu.free(p);
  live.clear();
}

/** ||out - ref|| / ||ref|| (0/0 = 0); NaN anywhere makes it NaN. */
export function relErr(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (out.length !== ref.length) return Number.POSITIVE_INFINITY;
  let num = 0;
  let den = 0;
  for (let i = 0; i < out.length; i++) {
    const d = out[i]! - ref[i]!;
    num += d * d;
    den += ref[i]! * ref[i]!;
  }
  if (Number.isNaN(num)) return Number.NaN;
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

export function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is too coarse; use a series/continued fraction pair.
  const ax = Math.abs(x);
  let r: number;
  if (ax < 2.5) {
    let sum = ax;
    let term = ax;
    for (let n = 1; n < 80; n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let f = 0;
    for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
    r = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  }
  return x < 0 ? -r : r;
}
