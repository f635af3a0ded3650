/**
 * An in-memory dataloader over an array of samples: shuffled per epoch by
 * seed, partitioned by rank (each rank takes every worldSize-th batch of
 * the global order), resumable mid-epoch through stateDict.
 */
import { TrainerConfigError } from "./errors.js";
import type { DataLoaderLike, DataSpec } from "./types.js";

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ArrayDataLoaderOptions<S, B> {
  samples: readonly S[];
  batchSize: number;
  collate: (samples: S[]) => B;
  shuffle?: boolean;
  seed?: number;
  rank?: number;
  worldSize?: number;
  dropLast?: boolean;
}

export class ArrayDataLoader<S, B> implements DataLoaderLike<B> {
  private epoch = 0;
  private batchOffset = 0;
  constructor(readonly opts: ArrayDataLoaderOptions<S, B>) {
    if (!(opts.batchSize >= 1))
      throw new TrainerConfigError(`ArrayDataLoader: batchSize must be >= 1, got ${opts.batchSize}`);
  }

  private order(epoch: number): number[] {
    const idx = this.opts.samples.map((_, i) => i);
    if (this.opts.shuffle ?? true) {
      const rnd = mulberry32(((this.opts.seed ?? 0) * 1000003 + epoch) >>> 0);
      for (let i = idx.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [idx[i], idx[j]] = [idx[j]!, idx[i]!];
      }
    }
    return idx;
  }

  /** Batches per epoch on this rank. */
  get length(): number {
    const n = this.opts.samples.length;
    const ws = this.opts.worldSize ?? 1;
    const global = Math.floor(n / this.opts.batchSize);
    const full = (this.opts.dropLast ?? true) ? global : Math.ceil(n / this.opts.batchSize);
    return Math.floor(full / ws);
  }

  setEpoch(epoch: number): void {
    this.epoch = epoch;
    this.batchOffset = 0;
  }

  stateDict(): { epoch: number; batchOffset: number } {
    return { epoch: this.epoch, batchOffset: this.batchOffset };
  }

  loadStateDict(s: unknown): void {
    const st = s as { epoch: number; batchOffset: number };
    this.epoch = st.epoch;
    this.batchOffset = st.batchOffset;
  }

  *[Symbol.iterator](): Iterator<B> {
    const order = this.order(this.epoch);
    const ws = this.opts.worldSize ?? 1;
    const rank = this.opts.rank ?? 0;
    const bs = this.opts.batchSize;
    const total = this.length;
    for (let b = this.batchOffset; b < total; b++) {
      const g = b * ws + rank; // this rank's share of the global batch order
      const ids = order.slice(g * bs, (g + 1) * bs);
      this.batchOffset = b + 1;
      if (this.batchOffset === total) {
        this.epoch++;
        this.batchOffset = 0;
      }
      yield this.opts.collate(ids.map((i) => this.opts.samples[i]!));
    }
  }
}

/** A DataSpec over an ArrayDataLoader whose batches are arrays of samples. */
export function arrayDataSpec<S>(
  loader: ArrayDataLoader<S, S[]>,
  opts: { tokensPerSample?: (s: S) => number } = {},
): DataSpec<S[]> {
  return {
    dataloader: loader,
    numSamples: (b) => b.length,
    numTokens: (b) => (opts.tokensPerSample ? b.reduce((t, s) => t + opts.tokensPerSample!(s), 0) : b.length),
    splitBatch: (b, size) => {
      const out: S[][] = [];
      for (let i = 0; i < b.length; i += size) out.push(b.slice(i, i + size));
      return out;
    },
  };
}
