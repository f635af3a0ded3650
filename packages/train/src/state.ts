/**
 * Everything the training loop knows, handed to every callback and
 * algorithm. Rank and world size live here; nothing assumes one process.
 */
import type { Tensor } from "@mbert/tensor";
import type { Algorithm, Callback } from "./callback.js";
import type { Metric } from "./metrics.js";
import type { Scheduler } from "./schedulers.js";
import { type Time, Timestamp, fractionOf } from "./time.js";
import type { DataSpec, Evaluator, LossLike, Optimizer, Precision, TrainableModel } from "./types.js";

/** Batches per epoch of a data spec, when known: its length, else its dataloader's. */
export function batchesPerEpoch(spec: DataSpec): number | undefined {
  const l =
    spec.length ??
    spec.dataloader.length ??
    (spec.dataloader as { batchesPerEpoch?: number }).batchesPerEpoch;
  return typeof l === "number" ? l : undefined;
}

/** A batch's mean loss, still on the device until the trainer reads it. */
export interface PendingLoss {
  /** The batch it belongs to (1-based, as logged). */
  batch: number;
  loss: LossLike;
  /** Set once read. */
  value?: number;
}

export class State {
  model: TrainableModel;
  rank = 0;
  worldSize = 1;
  runName: string;
  seed: number;
  device: "cpu" | "cuda";
  precision: Precision;
  timestamp = new Timestamp();
  maxDuration?: Time;
  optimizers: Optimizer[] = [];
  schedulers: Scheduler[] = [];
  trainData?: DataSpec;
  evaluators: Evaluator[] = [];
  /** Every callback and logger destination, in firing order (saved in checkpoints). */
  callbacks: Callback[] = [];
  algorithms: Algorithm[] = [];
  /** Microbatch size in samples (after 'auto' has settled). */
  deviceTrainMicrobatchSize?: number;
  /** True while 'auto' microbatching may still halve on an out-of-memory error. */
  autoMicrobatching = false;

  // ---- the batch in flight ----
  batch: unknown = undefined;
  /** The microbatch being run (equal to `batch` without accumulation). */
  microbatch: unknown = undefined;
  outputs: unknown = undefined;
  /** The last microbatch's loss tensor (valid until the next microbatch). */
  loss: unknown = undefined;
  /**
   * Losses of recent batches not yet read back from the device. The trainer
   * reads them together every `lossReadInterval` batches (one wait for the
   * device), logs each as `loss/train/total` at its own batch, and checks them.
   */
  pendingLosses: PendingLoss[] = [];
  /** Set by the trainer: reads, logs and checks `pendingLosses`. */
  lossReader?: () => void;
  private lastLossValue = Number.NaN;
  /** Samples and tokens in the last global batch. */
  batchSamples = 0;
  batchTokens = 0;
  private gradNormValue?: number;
  private gradNormSquared?: Tensor;

  /**
   * Global gradient norm before clipping, of the last step that clipped. The
   * trainer leaves it on the device; reading it waits for the device once.
   */
  get gradNorm(): number | undefined {
    const sq = this.gradNormSquared;
    if (sq) {
      this.gradNormSquared = undefined;
      try {
        this.gradNormValue = Math.sqrt(sq.item());
      } finally {
        sq.dispose();
      }
    }
    return this.gradNormValue;
  }

  set gradNorm(v: number | undefined) {
    this.gradNormSquared?.dispose();
    this.gradNormSquared = undefined;
    this.gradNormValue = v;
  }

  /** Set by the trainer: the squared global norm of this step, still on the device (owned by the state). */
  setGradNormSquared(sq: Tensor): void {
    this.gradNorm = undefined;
    this.gradNormSquared = sq;
  }
  /** The LR each optimizer group ran at during the last step. */
  currentLrs: number[] = [];

  trainMetrics: Record<string, Metric> = {};
  /** Evaluator being run (during EVAL_* events). */
  currentEvaluator?: Evaluator;
  /** Last computed values per evaluator label: `evalMetricValues.eval.MaskedAccuracy`. */
  evalMetricValues: Record<string, Record<string, number>> = {};
  /** Folder of this run (logs, checkpoints), when there is one. */
  runDir?: string;
  private stopRequested = false;

  constructor(opts: {
    model: TrainableModel;
    runName: string;
    seed: number;
    device: "cpu" | "cuda";
    precision: Precision;
    rank?: number;
    worldSize?: number;
  }) {
    this.model = opts.model;
    this.runName = opts.runName;
    this.seed = opts.seed;
    this.device = opts.device;
    this.precision = opts.precision;
    this.rank = opts.rank ?? 0;
    this.worldSize = opts.worldSize ?? 1;
  }

  /**
   * The mean loss of the last optimizer step (over all its microbatches).
   * While it is still on the device, reading it waits for the device: a
   * callback that reads it every batch makes every batch wait.
   */
  get lossValue(): number {
    const last = this.pendingLosses.at(-1);
    if (last === undefined) return this.lastLossValue;
    last.value ??= last.loss.item();
    return last.value;
  }

  set lossValue(v: number) {
    this.lastLossValue = v;
  }

  /** Reads every loss still on the device now (logged, and checked for non-finite values). */
  readLosses(): void {
    this.lossReader?.();
  }

  /** Batches per epoch of the train dataloader on this rank, when known. */
  get dataloaderLen(): number | undefined {
    return this.trainData ? batchesPerEpoch(this.trainData) : undefined;
  }

  /** Asks the loop to stop after the current batch (early stopping, signals). */
  stopTraining(): void {
    this.stopRequested = true;
  }

  get stopRequestedFlag(): boolean {
    return this.stopRequested;
  }

  clearStop(): void {
    this.stopRequested = false;
  }

  /** Fraction of maxDuration done, in [0, 1]. */
  get progress(): number {
    return this.maxDuration ? fractionOf(this.timestamp, this.maxDuration) : 0;
  }
}
