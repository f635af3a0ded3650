// Shared by the GPU check scripts: a fresh-per-run random stream (its seed is
// printed so a failure can be replayed) and bf16 conversions (round to
// nearest even, NaN kept).

/** A uniform [0, 1) stream (xorshift32) from `seed`. */
export function xorshift32(seed) {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** The seed this run started from. */
export const seed0 = (Date.now() ^ (process.pid << 16)) >>> 0;

/** Uniform in [0, 1), seeded with seed0. */
export const rand = xorshift32(seed0);

/** Standard normal (Box-Muller). */
export function randn() {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float -> bf16 bits. */
export function toBf16Bits(x) {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bf16 bits -> float. */
export function bf16Bits(h) {
  u32[0] = h << 16;
  return f32[0];
}
