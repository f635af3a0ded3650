/**
 * The training loop, after Composer's Trainer: `new Trainer({...}).fit()`
 * runs until maxDuration, firing events in Composer's order, with gradient
 * accumulation over microbatches, LR schedules, gradient clipping,
 * evaluation at an interval, checkpoints and resumption.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { type Parameter, cudaAvailable, defaultGenerator, manualSeed, noGrad, tidy } from "@mbert/tensor";
import { type Algorithm, type Callback, fireEvent } from "./callback.js";
import { CheckpointSaver } from "./callbacks/checkpoint-saver.js";
import { latestCheckpoint, loadCheckpoint, validateCheckpoint } from "./checkpoint.js";
import { NonFiniteLossError, TrainerConfigError } from "./errors.js";
import { Event } from "./events.js";
import { Logger, type LoggerDestination } from "./logger.js";
import { ConsoleLogger } from "./loggers/console.js";
import { ProgressBarLogger } from "./loggers/progress.js";
import type { Metric } from "./metrics.js";
import { clipScale, gradSumSquares } from "./optim.js";
import { type ScheduleContext, type Scheduler, combinedFactor } from "./schedulers.js";
import { State, batchesPerEpoch } from "./state.js";
import { Time, reached, resolveTime } from "./time.js";
import type {
  DataSpec,
  Evaluator,
  LossLike,
  Optimizer,
  Precision,
  TrainableModel,
  WeightsReport,
  StepOptions,
} from "./types.js";

export interface TrainerOptions {
  model: TrainableModel;
  trainDataloader?: DataSpec;
  /** Evaluators, or a bare DataSpec (labelled 'eval'). */
  evalDataloader?: DataSpec | Evaluator | Evaluator[];
  /** How often to evaluate: a time string ('1ep', '500ba', '0.1dur') or batches. Default '1ep'. */
  evalInterval?: Time | string | number;
  evalSubsetNumBatches?: number;
  optimizers?: Optimizer | Optimizer[];
  schedulers?: Scheduler | Scheduler[];
  maxDuration?: Time | string | number;
  /** Samples per microbatch; 'auto' halves it on an out-of-memory error and retries the batch. */
  deviceTrainMicrobatchSize?: number | "auto";
  precision?: Precision;
  device?: "cpu" | "cuda";
  callbacks?: Callback[];
  loggers?: LoggerDestination[];
  algorithms?: Algorithm[];
  seed?: number;
  runName?: string;
  /** Folder for this run (created); checkpoints default to `<runDir>/checkpoints`. */
  runDir?: string;
  saveFolder?: string;
  saveInterval?: Time | string | number;
  saveNumCheckpointsToKeep?: number;
  saveOverwrite?: boolean;
  /** A checkpoint folder to start from (full state, or weights only with loadWeightsOnly). */
  loadPath?: string;
  loadWeightsOnly?: boolean;
  /** Globs over `model.<weight>` and `state.<part>` to skip when loading (e.g. `model.cls.*`). */
  loadIgnoreKeys?: string[];
  /** Fail on missing, unexpected or mis-shaped weights not matched by loadIgnoreKeys (default true). */
  loadStrict?: boolean;
  /** Resume from `<saveFolder>/latest` when it exists (requires saveFolder and runName). */
  autoresume?: boolean;
  progressBar?: boolean;
  logToConsole?: boolean;
  consoleLogInterval?: Time | string | number;
  /** Clip gradients to this global L2 norm. */
  gradClipNorm?: number;
  /** 'error' (default) stops with NonFiniteLossError naming the step; 'skip' drops the update. */
  nonFiniteLoss?: "error" | "skip";
  /**
   * Read the train loss back from the device every this many batches: one
   * wait for the device per read, each batch's loss still logged at its own
   * step and checked. Default 1 on the CPU (reading costs nothing), 10 on
   * cuda, so the host can queue work ahead. nonFiniteLoss 'skip' reads every
   * batch (it must know before the update).
   */
  lossReadInterval?: number;
  rank?: number;
  worldSize?: number;
  /** Compute the model's train metrics on every microbatch (default false). */
  computeTrainingMetrics?: boolean;
}

/** `12 weights loaded; ignored (loadIgnoreKeys): cls.x, cls.y; missing: ...` */
function describeWeights(r: WeightsReport): string {
  const parts = [`${r.loaded.length} weights loaded`];
  if (r.ignored.length) parts.push(`ignored (loadIgnoreKeys): ${r.ignored.join(", ")}`);
  if (r.missing.length) parts.push(`missing (kept as initialized): ${r.missing.join(", ")}`);
  if (r.unexpected.length) parts.push(`unexpected (not loaded): ${r.unexpected.join(", ")}`);
  if (r.mismatched.length) parts.push(`mis-shaped (not loaded): ${r.mismatched.join("; ")}`);
  return parts.join("; ");
}

function isOutOfMemory(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: string }).code;
  return code === "OutOfMemory" || /out of memory|OutOfMemory/i.test(e.message);
}

/** A loss that supports the arithmetic needed to keep it on the device (a Tensor). */
type DeviceScalar = LossLike & { mul(x: number): DeviceScalar; add(o: DeviceScalar): DeviceScalar };

function isDeviceScalar(l: LossLike): l is DeviceScalar {
  const t = l as Partial<DeviceScalar>;
  return typeof t.mul === "function" && typeof t.add === "function";
}

/** A loss already on the host (for LossLike implementations without arithmetic). */
function hostScalar(v: number): LossLike {
  return { item: () => v, backward() {}, dispose() {} };
}

type AnyIterator<B> = Iterator<B> | AsyncIterator<B>;

function iterate<B>(loader: DataSpec<B>["dataloader"]): AnyIterator<B> {
  const l = loader as unknown as Partial<AsyncIterable<B> & Iterable<B>>;
  if (typeof l[Symbol.asyncIterator] === "function") return l[Symbol.asyncIterator]!();
  if (typeof l[Symbol.iterator] === "function") return l[Symbol.iterator]!();
  throw new TrainerConfigError("dataloader: expected an iterable or async iterable of batches");
}

function asArray<T>(x: T | T[] | undefined): T[] {
  return x === undefined ? [] : Array.isArray(x) ? x : [x];
}

export class Trainer {
  readonly state: State;
  readonly logger: Logger;
  readonly evalInterval: Time;
  private readonly opts: TrainerOptions;
  private readonly callbacks: Callback[];
  private readonly algorithms: Algorithm[];
  private readonly autoMicrobatch: boolean;
  private readonly nonFiniteLoss: "error" | "skip";
  /** Batches between reads of the train loss (see TrainerOptions.lossReadInterval). */
  readonly lossReadInterval: number;
  private initialized = false;
  /** Per evaluator: its interval, the last interval mark it ran at, and the batch it last ran at. */
  private readonly evalState = new Map<Evaluator, { interval: Time; mark: number; batch: number }>();
  readonly checkpointSaver?: CheckpointSaver;
  /** What loading `loadPath` (or the autoresumed checkpoint) did to each model weight. */
  loadReport?: WeightsReport;
  private closed = false;

  constructor(opts: TrainerOptions) {
    this.opts = opts;
    const device = opts.device ?? (cudaAvailable() ? "cuda" : "cpu");
    const precision = opts.precision ?? (device === "cuda" ? "amp_bf16" : "fp32");
    if (precision === "amp_bf16" && device === "cpu") {
      throw new TrainerConfigError("precision 'amp_bf16' needs a cuda device; use 'fp32' on the CPU");
    }
    const seed = opts.seed ?? 17;
    manualSeed(seed);
    this.state = new State({
      model: opts.model,
      runName: opts.runName ?? `run-${new Date().toISOString().replace(/[:.]/g, "-")}`,
      seed,
      device,
      precision,
      rank: opts.rank,
      worldSize: opts.worldSize,
    });
    const st = this.state;
    st.runDir = opts.runDir;
    if (opts.runDir) fs.mkdirSync(opts.runDir, { recursive: true });
    st.optimizers = asArray(opts.optimizers);
    st.schedulers = asArray(opts.schedulers);
    st.trainData = opts.trainDataloader;
    if (opts.maxDuration !== undefined) {
      st.maxDuration = Time.from(opts.maxDuration, "ba");
      if (st.maxDuration.unit === "dur") {
        throw new TrainerConfigError(
          `maxDuration: got '${opts.maxDuration}'; expected ep, ba, sp or tok (not dur)`,
        );
      }
      if (st.maxDuration.value <= 0)
        throw new TrainerConfigError(`maxDuration: got '${opts.maxDuration}'; expected > 0`);
    }
    const ev = opts.evalDataloader;
    st.evaluators =
      ev === undefined
        ? []
        : Array.isArray(ev)
          ? ev
          : "dataloader" in ev
            ? [{ label: "eval", data: ev as DataSpec }]
            : [ev as Evaluator];
    this.evalInterval = Time.from(opts.evalInterval ?? "1ep", "ba");
    for (const ev of st.evaluators) {
      const interval = ev.evalInterval === undefined ? this.evalInterval : Time.from(ev.evalInterval, "ba");
      this.evalState.set(ev, { interval, mark: 0, batch: -1 });
    }
    const mb = opts.deviceTrainMicrobatchSize;
    this.autoMicrobatch = mb === "auto";
    if (typeof mb === "number") {
      if (!Number.isInteger(mb) || mb < 1) {
        throw new TrainerConfigError(
          `deviceTrainMicrobatchSize: got ${mb}; expected a positive integer or 'auto'`,
        );
      }
      st.deviceTrainMicrobatchSize = mb;
    }
    st.autoMicrobatching = this.autoMicrobatch;
    this.nonFiniteLoss = opts.nonFiniteLoss ?? "error";
    const every = opts.lossReadInterval ?? (device === "cuda" ? 10 : 1);
    if (!Number.isInteger(every) || every < 1) {
      throw new TrainerConfigError(`lossReadInterval: got ${every}; expected a whole number of batches >= 1`);
    }
    this.lossReadInterval = this.nonFiniteLoss === "skip" ? 1 : every;
    st.lossReader = () => this.readLosses();
    if (opts.gradClipNorm !== undefined && !(opts.gradClipNorm > 0)) {
      throw new TrainerConfigError(`gradClipNorm: got ${opts.gradClipNorm}; expected a number > 0`);
    }

    const destinations: LoggerDestination[] = [...(opts.loggers ?? [])];
    if (opts.progressBar) destinations.push(new ProgressBarLogger());
    if (opts.logToConsole)
      destinations.push(new ConsoleLogger({ logInterval: opts.consoleLogInterval ?? "1ba" }));
    this.callbacks = [...(opts.callbacks ?? []), ...destinations];
    const saveFolder =
      opts.saveFolder ??
      (opts.runDir && opts.saveInterval ? path.join(opts.runDir, "checkpoints") : undefined);
    if (saveFolder) {
      this.checkpointSaver = new CheckpointSaver({
        folder: saveFolder,
        saveInterval: opts.saveInterval,
        numCheckpointsToKeep: opts.saveNumCheckpointsToKeep,
        overwrite: opts.saveOverwrite,
      });
      this.callbacks.push(this.checkpointSaver);
    }
    if (opts.autoresume && !saveFolder) {
      throw new TrainerConfigError("autoresume needs saveFolder (where to look for the latest checkpoint)");
    }
    this.algorithms = opts.algorithms ?? [];
    st.callbacks = this.callbacks;
    st.algorithms = this.algorithms;
    this.logger = new Logger(destinations, st);
    st.trainMetrics = opts.computeTrainingMetrics ? opts.model.getMetrics(true) : {};
  }

  private fire(event: Event): void {
    fireEvent(event, this.state, this.logger, this.algorithms, this.callbacks);
  }

  private scheduleContext(): ScheduleContext {
    const st = this.state;
    if (!st.maxDuration) throw new TrainerConfigError("maxDuration is required to train");
    return {
      maxDuration: st.maxDuration,
      batchesPerEpoch: st.trainData ? batchesPerEpoch(st.trainData) : undefined,
    };
  }

  /** INIT, BEFORE_LOAD, load/autoresume, AFTER_LOAD: once, on the first fit() or eval(). */
  private initialize(): void {
    if (this.initialized) return;
    this.initialized = true;
    const st = this.state;
    this.fire(Event.INIT);
    this.fire(Event.BEFORE_LOAD);
    let loadPath = this.opts.loadPath;
    let weightsOnly = this.opts.loadWeightsOnly ?? false;
    if (this.opts.autoresume && this.checkpointSaver) {
      const latest = latestCheckpoint(this.checkpointSaver.folder);
      if (latest !== undefined) {
        loadPath = latest;
        weightsOnly = false;
      }
    }
    if (loadPath) {
      const { weights } = loadCheckpoint(loadPath, st, {
        weightsOnly,
        ignoreKeys: this.opts.loadIgnoreKeys,
        strict: this.opts.loadStrict,
      });
      this.loadReport = weights;
      this.logger.logText(
        `loaded ${weightsOnly ? "weights from " : ""}checkpoint ${loadPath} ${st.timestamp}: ${describeWeights(weights)}`,
      );
    }
    this.fire(Event.AFTER_LOAD);
    this.logger.logHyperparameters({
      run_name: st.runName,
      seed: st.seed,
      device: st.device,
      precision: st.precision,
      max_duration: st.maxDuration?.toString(),
      device_train_microbatch_size: this.opts.deviceTrainMicrobatchSize ?? null,
      rank: st.rank,
      world_size: st.worldSize,
    });
  }

  private isDone(): boolean {
    const st = this.state;
    return st.maxDuration !== undefined && reached(st.timestamp, st.maxDuration);
  }

  /** Trains until maxDuration (or until a callback calls state.stopTraining()). */
  async fit(): Promise<State> {
    const st = this.state;
    if (!st.trainData) throw new TrainerConfigError("fit: no trainDataloader was given");
    if (!st.maxDuration) throw new TrainerConfigError("fit: maxDuration is required");
    if (st.optimizers.length === 0) throw new TrainerConfigError("fit: no optimizer was given");
    this.initialize();
    const spec = st.trainData;
    for (const e of this.evalState.values()) e.mark = this.evalMark(e.interval);
    st.clearStop();
    try {
      this.fire(Event.FIT_START);
      st.model.module.train();
      while (!this.isDone() && !st.stopRequestedFlag) {
        this.fire(Event.EPOCH_START);
        if (st.timestamp.batchInEpoch === 0) spec.dataloader.setEpoch?.(st.timestamp.epoch);
        const it = iterate(spec.dataloader);
        let exhausted = false;
        while (!this.isDone() && !st.stopRequestedFlag) {
          this.fire(Event.BEFORE_DATALOADER);
          const r = await it.next();
          if (r.done) {
            exhausted = true;
            break;
          }
          st.batch = r.value;
          this.fire(Event.AFTER_DATALOADER);
          await this.trainBatch(spec);
          spec.disposeBatch?.(st.batch);
          st.batch = undefined;
        }
        if (!exhausted) {
          // Stopped mid-epoch (maxDuration or a stop request): close the iterator so the loader can be reused.
          await it.return?.();
          const perEpoch = batchesPerEpoch(spec);
          if (this.isDone() && perEpoch !== undefined && st.timestamp.batchInEpoch === perEpoch) {
            exhausted = true;
          }
        }
        if (exhausted) {
          if (st.timestamp.batchInEpoch === 0 && !this.isDone()) {
            throw new TrainerConfigError(
              "the train dataloader yielded no batches in an epoch (too few samples for one batch?)",
            );
          }
          st.timestamp = st.timestamp.afterEpoch();
          this.fire(Event.EPOCH_END);
          await this.runEvals(this.dueEvaluators("ep"));
          this.fire(Event.EPOCH_CHECKPOINT);
        }
      }
      this.readLosses(); // a stop request can end the run between reads
      this.fire(Event.FIT_END);
    } finally {
      this.close();
    }
    return st;
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    // After an error: free the losses that were never read.
    for (const p of this.state.pendingLosses) p.loss.dispose();
    this.state.pendingLosses = [];
    try {
      void this.state.gradNorm; // brings the last norm to the host and frees its device copy
    } catch {
      this.state.gradNorm = undefined; // the device failed: free it unread
    }
    for (const cb of this.callbacks) cb.close(this.state, this.logger);
  }

  /** How many whole intervals `interval` the run has completed. */
  private evalMark(interval: Time): number {
    const st = this.state;
    let t = interval;
    if (t.unit === "dur") {
      if (!st.maxDuration) return 0;
      t = resolveTime(t, st.maxDuration, st.trainData ? batchesPerEpoch(st.trainData) : undefined, {
        epochsToBatches: true,
      });
    }
    if (t.unit === "dur" || t.value === 0) return 0;
    return Math.floor(st.timestamp.get(t.unit) / t.value);
  }

  /**
   * The evaluators due now; `at` says whether we are at a batch end or an epoch end.
   * An evaluator runs when its interval (epoch-based ones at epoch ends, the rest at
   * batch ends) has elapsed again, and, as Composer does, when training reaches
   * maxDuration and it has not yet run at this batch.
   */
  private dueEvaluators(at: "ba" | "ep"): Evaluator[] {
    const st = this.state;
    const done = this.isDone();
    const due: Evaluator[] = [];
    for (const [ev, e] of this.evalState) {
      const epochUnit = e.interval.unit === "ep";
      let run = false;
      if ((at === "ep") === epochUnit) {
        const m = this.evalMark(e.interval);
        if (m > e.mark) {
          e.mark = m;
          run = true;
        }
      }
      if (done && e.batch !== st.timestamp.batch && (at === "ep" || !epochUnit)) run = true;
      if (run) due.push(ev);
    }
    return due;
  }

  private async trainBatch(spec: DataSpec): Promise<void> {
    const st = this.state;
    const batch = st.batch;
    const N = spec.numSamples(batch);
    st.batchSamples = N;
    st.batchTokens = spec.numTokens(batch);
    this.fire(Event.BATCH_START);
    const t0 = performance.now();
    this.fire(Event.BEFORE_TRAIN_BATCH);
    let loss: LossLike;
    for (;;) {
      try {
        loss = this.runMicrobatches(spec, batch, N);
        break;
      } catch (e) {
        const micro = st.deviceTrainMicrobatchSize ?? N;
        if (this.autoMicrobatch && isOutOfMemory(e) && micro > 1) {
          for (const opt of st.optimizers) opt.zeroGrad();
          st.deviceTrainMicrobatchSize = Math.ceil(Math.min(micro, N) / 2);
          this.logger.logText(
            `out of memory at microbatch size ${micro}; retrying batch ${st.timestamp.batch + 1} with ${st.deviceTrainMicrobatchSize}`,
          );
          continue;
        }
        throw e;
      }
    }
    const stepNumber = st.timestamp.batch + 1;
    st.pendingLosses.push({ batch: stepNumber, loss });
    this.fire(Event.AFTER_TRAIN_BATCH);
    // Reading every batch checks the loss before the update ('error' throws from readLosses).
    if (this.lossReadInterval === 1) this.readLosses();
    if (this.nonFiniteLoss === "skip" && !Number.isFinite(st.lossValue)) {
      this.logger.logText(`step ${stepNumber}: loss is ${st.lossValue}; skipping the update`);
      for (const opt of st.optimizers) opt.zeroGrad();
    } else {
      this.optimizerStep();
    }
    if (this.autoMicrobatch && st.deviceTrainMicrobatchSize === undefined) st.deviceTrainMicrobatchSize = N;
    st.timestamp = st.timestamp.afterBatch(N, st.batchTokens, (performance.now() - t0) / 1000);
    if (stepNumber % this.lossReadInterval === 0 || this.isDone()) this.readLosses();
    if (Object.keys(st.trainMetrics).length > 0) {
      const m: Record<string, number> = {};
      for (const [name, metric] of Object.entries(st.trainMetrics))
        m[`metrics/train/${name}`] = metric.compute();
      this.logger.logMetrics(m);
    }
    this.fire(Event.BATCH_END);
    await this.runEvals(this.dueEvaluators("ba"));
    this.fire(Event.BATCH_CHECKPOINT);
  }

  /**
   * Reads the losses still on the device (one wait), logs each at its batch,
   * and with nonFiniteLoss 'error' stops at the first non-finite one.
   */
  private readLosses(): void {
    const st = this.state;
    const pending = st.pendingLosses;
    if (pending.length === 0) return;
    st.pendingLosses = [];
    try {
      for (const p of pending) p.value ??= p.loss.item();
    } finally {
      for (const p of pending) p.loss.dispose();
    }
    for (const p of pending) {
      const value = p.value!;
      st.lossValue = value;
      this.logger.logMetrics({ "loss/train/total": value }, p.batch);
      if (!Number.isFinite(value) && this.nonFiniteLoss === "error") {
        for (const opt of st.optimizers) opt.zeroGrad();
        throw new NonFiniteLossError(p.batch, value);
      }
    }
  }

  /**
   * Forward, loss and backward over each microbatch. Returns the
   * sample-weighted mean loss as a scalar left on the device (not read).
   */
  private runMicrobatches(spec: DataSpec, batch: unknown, N: number): LossLike {
    const st = this.state;
    const size = st.deviceTrainMicrobatchSize ?? N;
    const parts = size >= N ? [batch] : spec.splitBatch(batch, size);
    let total: LossLike | undefined;
    try {
      for (const part of parts) {
        const n = spec.numSamples(part);
        st.microbatch = part;
        const share = tidy(() => {
          this.fire(Event.BEFORE_FORWARD);
          const outputs = st.model.forward(part);
          st.outputs = outputs;
          this.fire(Event.AFTER_FORWARD);
          this.fire(Event.BEFORE_LOSS);
          const loss = st.model.loss(outputs, part);
          st.loss = loss;
          this.fire(Event.AFTER_LOSS);
          // Each microbatch's loss counts by its share of the batch, as Composer scales it.
          const scaled = n === N ? loss : (loss as unknown as { mul(x: number): LossLike }).mul(n / N);
          this.fire(Event.BEFORE_BACKWARD);
          scaled.backward();
          this.fire(Event.AFTER_BACKWARD);
          // A copy that outlives the outputs, kept on the device: no wait here.
          const kept: LossLike = isDeviceScalar(loss)
            ? noGrad(() => loss.mul(n / N))
            : hostScalar((loss.item() * n) / N);
          for (const metric of Object.values(st.trainMetrics))
            noGrad(() => st.model.updateMetric(part, outputs, metric));
          st.model.disposeOutputs?.(outputs);
          st.outputs = undefined;
          st.loss = undefined;
          return kept;
        });
        const prev = total;
        if (prev === undefined) total = share;
        else if (isDeviceScalar(prev) && isDeviceScalar(share)) {
          const sum = noGrad(() => prev.add(share));
          prev.dispose();
          share.dispose();
          total = sum;
        } else {
          const sum = prev.item() + share.item();
          prev.dispose();
          share.dispose();
          total = hostScalar(sum);
        }
        if (parts.length > 1 && part !== batch) spec.disposeBatch?.(part);
      }
    } catch (e) {
      total?.dispose(); // e.g. out of memory in a later microbatch: the batch is retried
      throw e;
    }
    st.microbatch = undefined;
    return total!;
  }

  private optimizerStep(): void {
    const st = this.state;
    const factor = combinedFactor(st.schedulers, st.timestamp, this.scheduleContext());
    st.currentLrs = [];
    for (const opt of st.optimizers) {
      for (const g of opt.paramGroups) {
        g.lr = g.initialLr * factor;
        st.currentLrs.push(g.lr);
      }
    }
    let gradScale = 1;
    let clip: StepOptions["clip"];
    const maxNorm = this.opts.gradClipNorm;
    if (maxNorm !== undefined) {
      const params = st.optimizers.flatMap((o) =>
        o.paramGroups.flatMap((g) => g.params.map(([, p]) => p as Parameter)),
      );
      // On one device the norm stays there: the optimizers read it in their kernel,
      // and the host never waits. Across devices it is summed on the host.
      const sq = gradSumSquares(params);
      if (sq) {
        st.setGradNormSquared(sq);
        clip = { sumSquares: sq, maxNorm };
      } else {
        const { norm, scale } = clipScale(params, maxNorm);
        st.gradNorm = norm;
        gradScale = scale;
      }
    }
    for (const opt of st.optimizers) {
      opt.step({ gradScale, clip });
      opt.zeroGrad();
    }
  }

  private async runEvals(evaluators: Evaluator[]): Promise<void> {
    if (evaluators.length === 0) return;
    this.fire(Event.EVAL_BEFORE_ALL);
    for (const ev of evaluators) {
      this.evalState.get(ev)!.batch = this.state.timestamp.batch;
      await this.evaluate(ev);
    }
    this.fire(Event.EVAL_AFTER_ALL);
  }

  /** Evaluates every evaluator now (outside fit), returning metric values per label. */
  async eval(): Promise<Record<string, Record<string, number>>> {
    this.initialize();
    this.fire(Event.EVAL_STANDALONE_START);
    for (const ev of this.state.evaluators) await this.evaluate(ev);
    this.fire(Event.EVAL_STANDALONE_END);
    return this.state.evalMetricValues;
  }

  /** One evaluation pass of `ev`: EVAL_START ... EVAL_END, metrics logged as `metrics/<label>/<name>`. */
  async evaluate(ev: Evaluator): Promise<Record<string, number>> {
    const st = this.state;
    const model = st.model;
    const all = model.getMetrics(false);
    const names = ev.metricNames ?? Object.keys(all);
    const metrics: Record<string, Metric> = {};
    for (const n of names) {
      const m = all[n];
      if (!m) throw new TrainerConfigError(`evaluator '${ev.label}': the model has no eval metric '${n}'`);
      m.reset();
      metrics[n] = m;
    }
    const wasTraining = (model.module as { training?: boolean }).training ?? true;
    model.module.eval();
    st.currentEvaluator = ev;
    this.fire(Event.EVAL_START);
    ev.data.dataloader.setEpoch?.(0);
    const it = iterate(ev.data.dataloader);
    const limit = ev.subsetNumBatches ?? this.opts.evalSubsetNumBatches ?? Number.POSITIVE_INFINITY;
    let seen = 0;
    const rng = defaultGenerator.getState(); // evaluation draws no training randomness
    try {
      while (seen < limit) {
        const r = await it.next();
        if (r.done) break;
        seen++;
        st.batch = r.value;
        this.fire(Event.EVAL_BATCH_START);
        tidy(() =>
          noGrad(() => {
            this.fire(Event.EVAL_BEFORE_FORWARD);
            const out = model.evalForward ? model.evalForward(r.value) : model.forward(r.value);
            st.outputs = out;
            this.fire(Event.EVAL_AFTER_FORWARD);
            for (const m of Object.values(metrics)) model.updateMetric(r.value, out, m);
            model.disposeOutputs?.(out);
            st.outputs = undefined;
          }),
        );
        this.fire(Event.EVAL_BATCH_END);
        ev.data.disposeBatch?.(r.value);
        st.batch = undefined;
      }
      if (seen >= limit) await it.return?.();
    } finally {
      defaultGenerator.setState(rng);
      if (wasTraining) model.module.train();
    }
    const values: Record<string, number> = {};
    const logged: Record<string, number> = {};
    for (const [n, m] of Object.entries(metrics)) {
      values[n] = m.compute();
      logged[`metrics/${ev.label}/${n}`] = values[n];
    }
    st.evalMetricValues[ev.label] = values;
    this.logger.logMetrics(logged);
    this.fire(Event.EVAL_END);
    st.currentEvaluator = undefined;
    return values;
  }

  /** Checks a checkpoint folder without loading it (throws CheckpointError naming the fault). */
  static validateCheckpoint(dir: string): void {
    validateCheckpoint(dir);
  }
}
