/**
 * The shapes the trainer works with: a model in Composer's form, a data
 * spec around a dataloader, evaluators and optimizers.
 */
import type { Tensor } from "@mbert/tensor";
import type { Metric } from "./metrics.js";
import type { Time } from "./time.js";

export type Precision = "fp32" | "amp_bf16";

/** A scalar loss the trainer can read and differentiate. */
export interface LossLike {
  item(): number;
  backward(grad?: never): void;
  dispose(): void;
}

/**
 * A model as the trainer sees it (Composer's ComposerModel): the module
 * holding parameters, a forward over a batch, a loss, and metrics.
 */
export interface TrainableModel<B = unknown, O = unknown> {
  /** The module trained (parameters, stateDict, train/eval mode). */
  readonly module: ModuleLike;
  forward(batch: B): O;
  /** A scalar loss; with gradient accumulation the trainer scales it by the microbatch's share. */
  loss(outputs: O, batch: B): LossLike;
  /** Forward for evaluation (defaults to forward). */
  evalForward?(batch: B): O;
  /** Fresh metric objects, keyed by name, for training or evaluation. */
  getMetrics(isTrain: boolean): Record<string, Metric>;
  updateMetric(batch: B, outputs: O, metric: Metric): void;
  /** Frees the tensors of `outputs` (the trainer calls it after each microbatch and eval batch). */
  disposeOutputs?(outputs: O): void;
  /** Writes `config.json` + `model.safetensors` (a Hugging Face folder). */
  savePretrained?(dir: string): void;
  /**
   * Loads weights from a Hugging Face folder. Keys for which `ignore` returns
   * true are skipped on both sides (checkpoint tensors and model parameters);
   * with `strict`, any other missing, unexpected or mis-shaped key throws.
   * Returns what was loaded and skipped, by name.
   */
  loadPretrained?(
    dir: string,
    opts: { strict: boolean; ignore?: (key: string) => boolean },
  ): WeightsReport | undefined;
}

/** What loading model weights did, by parameter name (Hugging Face names). */
export interface WeightsReport {
  /** Parameters copied from the checkpoint. */
  loaded: string[];
  /** Names skipped by loadIgnoreKeys: checkpoint tensors not read, parameters left as they were. */
  ignored: string[];
  /** Parameters the checkpoint lacks (and not ignored): they keep their current values. */
  missing: string[];
  /** Checkpoint tensors the model has no parameter for (not loaded). */
  unexpected: string[];
  /** `name: checkpoint [..] vs model [..]` (not loaded). */
  mismatched: string[];
}

/** What the trainer needs of a module. */
export interface ModuleLike {
  namedParameters(): Iterable<[string, ParamLike]>;
  train(mode?: boolean): unknown;
  eval(): unknown;
}

/** A parameter: its value, gradient and raw storage, as @mbert/tensor exposes them. */
export interface ParamLike {
  readonly shape: readonly number[];
  readonly size: number;
  readonly dtype: string;
  readonly device: string;
  grad?: ParamLike | null;
}

/** A dataloader: iterable per epoch, optionally sized, resumable and epoch-aware. */
export interface DataLoaderLike<B = unknown> {
  [Symbol.iterator](): Iterator<B>;
  /** Batches per epoch on this rank. */
  readonly length?: number;
  /** Position within the epoch, for checkpoints. */
  stateDict?(): unknown;
  loadStateDict?(state: unknown): void;
  /** Called at EPOCH_START with the epoch number (reshuffles). */
  setEpoch?(epoch: number): void;
}

/** A dataloader with the functions that size and split its batches (Composer's DataSpec). */
export interface DataSpec<B = unknown> {
  dataloader: DataLoaderLike<B>;
  /** Batches per epoch (defaults to dataloader.length). */
  readonly length?: number;
  numSamples(batch: B): number;
  numTokens(batch: B): number;
  /** Splits a batch into microbatches of at most `size` samples. */
  splitBatch(batch: B, size: number): B[];
  /** Frees a batch's tensors once used (optional). */
  disposeBatch?(batch: B): void;
}

/** A named evaluation: its own data and metric names, run every `evalInterval`. */
export interface Evaluator<B = unknown> {
  label: string;
  data: DataSpec<B>;
  /** Names of the model's eval metrics to compute (default: all of them). */
  metricNames?: string[];
  /** Overrides the trainer's evalInterval for this evaluator. */
  evalInterval?: Time | string;
  /** Stops an evaluation after this many batches. */
  subsetNumBatches?: number;
}

export interface ParamGroup {
  params: [string, ParamLike][];
  lr: number;
  /** The LR the schedulers scale (set from lr at construction). */
  initialLr: number;
  weightDecay: number;
  [option: string]: unknown;
}

/** Options of one optimizer step. */
export interface StepOptions {
  /** Multiplies every gradient first (default 1). */
  gradScale?: number;
  /**
   * Clipping by global norm: `sumSquares` is the squared global gradient norm
   * (one element on the parameters' device, from `gradSumSquares`); gradients
   * are further scaled by maxNorm / (norm + 1e-6) when the norm is finite and
   * above `maxNorm`. The Adam optimizers apply it on the device.
   */
  clip?: { sumSquares: Tensor; maxNorm: number };
}

export interface Optimizer {
  readonly name: string;
  paramGroups: ParamGroup[];
  /** Applies one update with the current group LRs (see StepOptions). */
  step(opts?: StepOptions): void;
  zeroGrad(): void;
  stateDict(): OptimizerState;
  loadStateDict(state: OptimizerState): void;
  /** Frees the optimizer's buffers. */
  dispose(): void;
}

/** Optimizer state: scalars in `meta`, per-parameter buffers as host arrays keyed `<param>.<buffer>`. */
export interface OptimizerState {
  name: string;
  meta: Record<string, unknown>;
  tensors: Record<string, { shape: number[]; data: Float32Array | Float64Array }>;
}
