// @mbert/train: a Composer-style trainer: time, events, callbacks and
// algorithms, optimizers, schedulers, metrics, loggers and checkpoints.

export { type Algorithm, Callback, type CallbackHooks, type Hook, fireEvent } from "./callback.js";
export { EarlyStopper, type EarlyStopperOptions } from "./callbacks/early-stopper.js";
export { LRMonitor } from "./callbacks/lr-monitor.js";
export {
  type AllocatorProbe,
  type AllocatorStats,
  MemoryMonitor,
  type MemoryMonitorOptions,
} from "./callbacks/memory-monitor.js";
export { SpeedMonitor, type SpeedMonitorOptions } from "./callbacks/speed-monitor.js";
export {
  CheckpointError,
  MetricError,
  NonFiniteLossError,
  TimeStringError,
  TrainError,
  TrainerConfigError,
} from "./errors.js";
export { ALL_EVENTS, type CallbackMethod, Event, eventMethodName } from "./events.js";
export { InMemoryLogger, Logger, LoggerDestination } from "./logger.js";
export { ConsoleLogger, type Writable } from "./loggers/console.js";
export { JsonlLogger, readJsonlMetrics } from "./loggers/jsonl.js";
export { ProgressBarLogger, formatDuration } from "./loggers/progress.js";
export {
  type DecodedEvent,
  TensorBoardLogger,
  crc32c,
  maskedCrc32c,
  readEventFile,
} from "./loggers/tensorboard.js";
export {
  Accuracy,
  BinaryF1,
  LanguageCrossEntropy,
  MaskedAccuracy,
  MatthewsCorrelation,
  type Metric,
  PearsonCorrelation,
  SpearmanCorrelation,
  type Values,
  averageRanks,
} from "./metrics.js";
export {
  ConstantWithWarmupScheduler,
  CosineAnnealingWithWarmupScheduler,
  LinearWithWarmupScheduler,
  type ScheduleContext,
  type Scheduler,
  buildScheduler,
  combinedFactor,
} from "./schedulers.js";
export { State } from "./state.js";
export { Time, TimeUnit, Timestamp, type TimestampState, fractionOf, reached, resolveTime } from "./time.js";
export type {
  DataLoaderLike,
  DataSpec,
  Evaluator,
  LossLike,
  ModuleLike,
  Optimizer,
  OptimizerState,
  StepOptions,
  ParamGroup,
  ParamLike,
  Precision,
  TrainableModel,
  WeightsReport,
} from "./types.js";
export { CheckpointSaver, type CheckpointSaverOptions } from "./callbacks/checkpoint-saver.js";
export {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  type CheckpointManifest,
  type LoadOptions,
  type LoadedCheckpoint,
  type SaveOptions,
  checkpointName,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  pruneCheckpoints,
  saveCheckpoint,
  validateCheckpoint,
} from "./checkpoint.js";
export {
  AdamW,
  DecoupledAdamW,
  type NamedParams,
  type ParamGroupSpec,
  SGD,
  buildOptimizer,
  clipScale,
  decayGroups,
  gradNorm,
  gradSumSquares,
  clipCoefficient,
} from "./optim.js";
export { Trainer, type TrainerOptions } from "./trainer.js";
export { ArrayDataLoader, type ArrayDataLoaderOptions, arrayDataSpec } from "./array-data.js";
export { type MlmBatch, MlmTask, mlmDataSpec, splitMlmBatch } from "./mlm.js";
