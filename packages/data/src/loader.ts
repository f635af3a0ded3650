// MlmDataLoader: batches of one rank, collated, in a deterministic order that
// a state dict of two numbers can resume exactly.

import { DataUsageError } from "./errors.js";
import {
  type SampleDataset,
  type SampleRef,
  batchPositions,
  checkPartition,
  numBatches,
} from "./streaming.js";

export interface Collator<B> {
  collate(samples: readonly SampleRef[]): B;
}

export interface DataLoaderState {
  /** Epoch the next batch comes from. */
  epoch: number;
  /** Epoch positions already consumed by all ranks together (a multiple of worldSize × batchSize mid-epoch). */
  sampleOffset: number;
}

export interface MlmDataLoaderOptions<B> {
  dataset: SampleDataset;
  collator: Collator<B>;
  /** Sequences per batch on this rank. */
  batchSize: number;
  rank?: number;
  worldSize?: number;
  /**
   * true (default): drop the epoch's tail that does not fill a whole global
   * batch (worldSize × batchSize), so every batch is full. false: read every
   * sample once; the last batch of a rank may be short, or empty when fewer
   * samples than ranks remain, so all ranks still take the same number of steps.
   */
  dropLast?: boolean;
  /**
   * Batches prepared concurrently (default 1). Batch b is prepared by worker
   * b mod numWorkers; batches are always yielded in order, so the sequence does
   * not depend on numWorkers and a run may resume with a different value.
   * Preparation overlaps shard IO and downloads; collation runs on this thread.
   */
  numWorkers?: number;
  /** Batches each worker prepares ahead (default 2). */
  prefetchBatches?: number;
  /** Starting epoch (default 0). */
  epoch?: number;
}

export class MlmDataLoader<B = import("./collator.js").UnpaddedMlmBatch> implements AsyncIterable<B> {
  readonly dataset: SampleDataset;
  readonly collator: Collator<B>;
  readonly batchSize: number;
  readonly rank: number;
  readonly worldSize: number;
  readonly dropLast: boolean;
  numWorkers: number;
  readonly prefetchBatches: number;
  private epoch: number;
  private sampleOffset = 0;
  private iterating = false;

  constructor(options: MlmDataLoaderOptions<B>) {
    this.dataset = options.dataset;
    this.collator = options.collator;
    this.batchSize = options.batchSize;
    this.rank = options.rank ?? 0;
    this.worldSize = options.worldSize ?? 1;
    this.dropLast = options.dropLast ?? true;
    this.numWorkers = Math.max(1, options.numWorkers ?? 1);
    this.prefetchBatches = Math.max(1, options.prefetchBatches ?? 2);
    this.epoch = options.epoch ?? 0;
    checkPartition(this);
  }

  /** Samples in one epoch of the dataset (all ranks). */
  get numSamples(): number {
    return this.dataset.numSamples;
  }

  /** Batches this rank yields in a full epoch. */
  get batchesPerEpoch(): number {
    return numBatches({ ...this, numSamples: this.dataset.numSamples, sampleOffset: 0 });
  }

  /** Samples all ranks together consume in a full epoch (less than numSamples with dropLast). */
  get samplesPerEpoch(): number {
    const g = this.worldSize * this.batchSize;
    return this.dropLast ? Math.floor(this.dataset.numSamples / g) * g : this.dataset.numSamples;
  }

  /** Start `epoch` from its beginning. */
  setEpoch(epoch: number): void {
    if (!Number.isInteger(epoch) || epoch < 0)
      throw new DataUsageError(`setEpoch: epoch must be an integer >= 0, got ${epoch}`);
    this.epoch = epoch;
    this.sampleOffset = 0;
  }

  stateDict(): DataLoaderState {
    return { epoch: this.epoch, sampleOffset: this.sampleOffset };
  }

  /** Resume at exactly the next sample of a saved state (any numWorkers; same worldSize/batchSize to keep batch boundaries). */
  loadStateDict(state: DataLoaderState): void {
    const { epoch, sampleOffset } = state ?? ({} as DataLoaderState);
    if (!Number.isInteger(epoch) || epoch < 0 || !Number.isInteger(sampleOffset) || sampleOffset < 0)
      throw new DataUsageError(
        `loadStateDict: expected { epoch, sampleOffset } as integers >= 0, got ${JSON.stringify(state)}`,
      );
    if (sampleOffset > this.dataset.numSamples)
      throw new DataUsageError(
        `loadStateDict: sampleOffset ${sampleOffset} is past the epoch's ${this.dataset.numSamples} samples; was the state saved for another dataset?`,
      );
    this.epoch = epoch;
    this.sampleOffset = sampleOffset;
  }

  /** The rest of the current epoch; afterwards the state points at the next epoch's start. */
  async *[Symbol.asyncIterator](): AsyncGenerator<B> {
    if (this.iterating)
      throw new DataUsageError("MlmDataLoader: already being iterated; finish or break the other loop first");
    this.iterating = true;
    const epoch = this.epoch;
    const part = {
      numSamples: this.dataset.numSamples,
      sampleOffset: this.sampleOffset,
      rank: this.rank,
      worldSize: this.worldSize,
      batchSize: this.batchSize,
      dropLast: this.dropLast,
    };
    const total = numBatches(part);
    const depth = this.numWorkers * this.prefetchBatches;
    const queue: Array<Promise<B>> = [];
    let next = 0;
    const make = (b: number): Promise<B> => {
      const positions = batchPositions(part, b);
      if (positions.length > 0) this.dataset.prefetch(epoch, positions[positions.length - 1]!);
      const p = this.dataset.fetch(epoch, positions).then((refs) => this.collator.collate(refs));
      p.catch(() => {}); // awaited below; this only keeps an abandoned prefetch from being "unhandled"
      return p;
    };
    try {
      for (let b = 0; b < total; b++) {
        while (next < total && next < b + depth) queue.push(make(next++));
        const batch = await queue.shift()!;
        if (b + 1 < total) this.sampleOffset = part.sampleOffset + (b + 1) * this.worldSize * this.batchSize;
        else {
          this.epoch = epoch + 1;
          this.sampleOffset = 0;
        }
        yield batch;
      }
      if (total === 0) {
        this.epoch = epoch + 1;
        this.sampleOffset = 0;
      }
    } finally {
      this.iterating = false;
    }
  }
}
