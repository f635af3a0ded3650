// ALiBi slopes (Press et al., "Train Short, Test Long"), as the MosaicBERT
// reference computes them. Head h adds -slope_h * |i - j| to the score of query
// i and key j. For n heads, n a power of two: slope_h = 2^(-8/n * (h + 1)).
// Otherwise: the power-of-two slopes for p = 2^floor(log2 n), then every other
// slope of the 2p rule (indices 0, 2, 4, ...) until there are n.

function powerOfTwoSlopes(n: number): number[] {
  const start = 2 ** -(2 ** -(Math.log2(n) - 3)); // = 2^(-8/n)
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(start * start ** i);
  return out;
}

function slopes64(n: number): number[] {
  if (Number.isInteger(Math.log2(n))) return powerOfTwoSlopes(n);
  const p = 2 ** Math.floor(Math.log2(n));
  const extra = slopes64(2 * p).filter((_, i) => i % 2 === 0);
  return [...powerOfTwoSlopes(p), ...extra.slice(0, n - p)];
}

/** The slopes for `numHeads` heads, rounded to float32 as the reference's torch.Tensor does. */
export function alibiSlopes(numHeads: number): Float32Array {
  if (!Number.isInteger(numHeads) || numHeads < 1)
    throw new RangeError(`alibiSlopes: numHeads must be >= 1, got ${numHeads}`);
  return Float32Array.from(slopes64(numHeads));
}
