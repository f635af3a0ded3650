// Shared by the GPU check scripts: a fresh-per-run random stream (its seed is
// printed so a failure can be replayed) and bf16 conversions (round to
// nearest even, NaN kept).

let seed = (Date.now() ^ (process.pid << 16)) >>> 0;
/** The seed this run started from. */
export const seed0 = seed;

/** Uniform in [0, 1) (xorshift32). */
export function rand() {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 4294967296;
}

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
