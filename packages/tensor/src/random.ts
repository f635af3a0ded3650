/**
 * Seedable counter-based random numbers. A Generator is a (seed, offset)
 * pair: every draw of n values uses Philox4x32-10 counters offset..offset+n-1
 * and advances the offset, so runs are reproducible on every backend and a
 * generator's state is two numbers that checkpoints can save.
 */
export class Generator {
  constructor(
    public seed = 0,
    public offset = 0,
  ) {}

  /** Reserves n counters and returns the offset of the first. */
  take(n: number): number {
    const o = this.offset;
    this.offset += n;
    return o;
  }

  manualSeed(seed: number): this {
    if (!Number.isSafeInteger(seed) || seed < 0)
      throw new RangeError(`manualSeed: seed must be a non-negative safe integer, got ${seed}`);
    this.seed = seed;
    this.offset = 0;
    return this;
  }

  getState(): { seed: number; offset: number } {
    return { seed: this.seed, offset: this.offset };
  }

  setState(state: { seed: number; offset: number }): void {
    this.seed = state.seed;
    this.offset = state.offset;
  }
}

/** The default generator used when no `generator` option is given. */
export const defaultGenerator = new Generator(0, 0);

/** Seeds the default generator. */
export function manualSeed(seed: number): void {
  defaultGenerator.manualSeed(seed);
}
