// Counter-based randomness: every random decision is a pure function of
// (seed, stream, counters), so a resumed run repeats exactly the decisions an
// uninterrupted run makes, whatever happened before.

/** Murmur3's 32-bit finalizer: a bijective avalanche on uint32. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash of up to four uint32 words into a uint32. */
export function hash4(a: number, b: number, c: number, d: number): number {
  let h = fmix32((a ^ 0x9e3779b9) >>> 0);
  h = fmix32((h ^ Math.imul(b ^ 0x7f4a7c15, 0x165667b1)) >>> 0);
  h = fmix32((h ^ Math.imul(c ^ 0x94d049bb, 0x27d4eb2f)) >>> 0);
  h = fmix32((h ^ Math.imul(d ^ 0x3c6ef372, 0x85ebca77)) >>> 0);
  return h;
}

/** Small fast PRNG (sfc32) for shuffles; seeded from a hash so streams never overlap by accident. */
export class Sfc32 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    this.a = fmix32(seed ^ 0xa5a5a5a5);
    this.b = fmix32(seed ^ 0x5a5a5a5a);
    this.c = fmix32(seed + 0x6d2b79f5);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.nextU32();
  }
  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** Uniform integer in [0, n) (n < 2^32), without modulo bias worth noting for n << 2^32. */
  below(n: number): number {
    return Math.floor((this.nextU32() / 4294967296) * n);
  }
}

/** In-place Fisher–Yates shuffle. */
export function shuffleInPlace(arr: Int32Array | number[], rng: Sfc32): void {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = arr[i]!;
    arr[i] = arr[j]!;
    arr[j] = t;
  }
}

/** The permutation 0..n-1 shuffled by a PRNG seeded from (seed, a, b, c). */
export function permutation(n: number, seed: number, a: number, b: number, c: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  shuffleInPlace(p, new Sfc32(hash4(seed >>> 0, a >>> 0, b >>> 0, c >>> 0)));
  return p;
}

/** 32-bit FNV-1a of a string; stable across runs and platforms. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
