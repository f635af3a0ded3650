// One GLUE finetuning job: read the task's TSVs, tokenize, load the encoder
// with a fresh head, train with the Trainer (DecoupledAdamW, linear decay with
// 6% warmup, as the MosaicBERT GLUE recipe), then evaluate every dev set.

import { loadTokenizer } from "@mbert/data";
import {
  type BertConfig,
  type BertForSequenceClassification,
  createModel,
  savePretrained,
} from "@mbert/model";
import { manualSeed, noGrad, tidy } from "@mbert/tensor";
import {
  ArrayDataLoader,
  type DataSpec,
  DecoupledAdamW,
  LinearWithWarmupScheduler,
  type LoggerDestination,
  Trainer,
} from "@mbert/train";
import {
  ClassificationCollator,
  type EncodedExample,
  type GlueBatch,
  type PairTokenizer,
  splitGlueBatch,
} from "./collator.js";
import { GlueConfigError } from "./errors.js";
import { type BatchLayout, GlueModel } from "./glue-model.js";
import { type ClassifierLoadReport, loadClassifierFromPretrained, loadFinetunedClassifier } from "./load.js";
import type { TaskResult } from "./report.js";
import { type GlueTask, getTask } from "./tasks.js";
import { type ReadGlueOptions, readGlueSplit } from "./tsv.js";

/** Where the model comes from: a pretrained checkpoint folder, a built classifier, or a config (random init). */
export interface ModelSource {
  /** A checkpoint folder (config.json + model.safetensors): its encoder, a new head. */
  checkpoint?: string;
  /** A classifier already built (its head must have the task's number of outputs); not disposed. */
  model?: BertForSequenceClassification;
  /** Train from a random initialization of this config (baselines, tests). */
  config?: BertConfig;
}

export interface FinetuneOptions extends ModelSource {
  task: GlueTask | string;
  /** A GLUE data folder (`<dataDir>/RTE/train.tsv`, ...). */
  dataDir: string;
  /** A tokenizer.json path, or a tokenizer. */
  tokenizer: string | PairTokenizer;
  /** Seeds the head's initialization, dropout and the data order (default 19, the recipe's). */
  seed?: number;
  /** Peak LR (default: the recipe's for the task). */
  lr?: number;
  /** DecoupledAdamW weight decay (default: the recipe's, lr / 10). */
  weightDecay?: number;
  /** Sequences per optimizer step (default: the recipe's). */
  batchSize?: number;
  /** Training length in epochs (default: the recipe's). Ignored when maxDuration is given. */
  epochs?: number;
  /** Training length as a time string ("3ep", "200ba"); overrides epochs. */
  maxDuration?: string;
  /** Warmup as a time string (default "0.06dur", 6% of training). */
  warmup?: string;
  /** Tokens per sequence, specials included (default 128). */
  maxSeqLen?: number;
  device?: "cpu" | "cuda";
  /** Batch layout for the model (default: padded for classic BERT, unpadded for MosaicBERT). */
  layout?: BatchLayout;
  /** Sequences per microbatch (gradient accumulation), or "auto" on the GPU. */
  microbatchSize?: number | "auto";
  /** Use only the first N training examples / N examples of each dev set (smoke runs). */
  trainLimit?: number;
  evalLimit?: number;
  /** Evaluate also during training at this interval ("1ep", "500ba"); the final evaluation always runs. */
  evalInterval?: string;
  /** Overrides of the loaded config (e.g. { classifierDropout: 0.1 }). */
  configOverrides?: Partial<BertConfig>;
  /** Bad TSV rows: "error" (default) or "report" (left out, each printed through `log`). */
  badRows?: ReadGlueOptions["badRows"];
  /** Saves the finetuned classifier here (config.json + model.safetensors). */
  saveDir?: string;
  /** Keep the model in the result (the caller disposes it); default false: it is freed. */
  keepModel?: boolean;
  /** One line per notable event (load report, bad rows, results). */
  log?: (line: string) => void;
  loggers?: LoggerDestination[];
  progressBar?: boolean;
}

export interface FinetuneResult extends TaskResult {
  /** Only for a checkpoint source: keys ignored (MLM head) and parameters freshly initialized. */
  loadReport?: ClassifierLoadReport;
  /** With keepModel: the finetuned classifier. */
  model?: BertForSequenceClassification;
}

async function resolveTokenizer(t: string | PairTokenizer): Promise<PairTokenizer> {
  return typeof t === "string" ? await loadTokenizer(t) : t;
}

function checkPositive(name: string, v: number | undefined, integer: boolean): void {
  if (v === undefined) return;
  if (!(v > 0) || (integer && !Number.isInteger(v))) {
    throw new GlueConfigError(`${name} must be a positive ${integer ? "integer" : "number"}, got ${v}`);
  }
}

/** Tokenized dev sets of a task, by split name. */
async function readEvalSets(
  task: GlueTask,
  dataDir: string,
  collator: ClassificationCollator,
  opts: { limit?: number; badRows?: ReadGlueOptions["badRows"]; log: (s: string) => void },
): Promise<Map<string, EncodedExample[]>> {
  const out = new Map<string, EncodedExample[]>();
  for (const spec of task.eval) {
    const data = await readGlueSplit(dataDir, task, spec.split, { limit: opts.limit, badRows: opts.badRows });
    reportBadRows(data.badRows, opts.log);
    out.set(spec.split, collator.encodeAll(data.examples));
  }
  return out;
}

function reportBadRows(
  rows: readonly { file: string; line: number; detail: string }[],
  log: (s: string) => void,
) {
  for (const r of rows) log(`left out ${r.file}:${r.line}: ${r.detail}`);
}

/** The task's metrics of `model` over tokenized examples, in eval mode, without gradients. */
export function evaluateExamples(
  glueModel: GlueModel,
  examples: readonly EncodedExample[],
  collator: ClassificationCollator,
  batchSize: number,
): Record<string, number> {
  const metrics = glueModel.getMetrics();
  const module = glueModel.module;
  const wasTraining = module.training;
  module.eval();
  try {
    for (let i = 0; i < examples.length; i += batchSize) {
      const batch = collator.collate(examples.slice(i, i + batchSize));
      tidy(() =>
        noGrad(() => {
          const out = glueModel.forward(batch);
          for (const m of Object.values(metrics)) glueModel.updateMetric(batch, out, m);
          glueModel.disposeOutputs(out);
        }),
      );
    }
  } finally {
    if (wasTraining) module.train();
  }
  const values: Record<string, number> = {};
  for (const [name, m] of Object.entries(metrics)) values[name] = m.compute();
  return values;
}

/** The task's metrics on each evaluation set, by split name. */
function evaluateSets(
  glueModel: GlueModel,
  evalSets: Map<string, EncodedExample[]>,
  collator: ClassificationCollator,
  batchSize: number,
): Record<string, Record<string, number>> {
  const metrics: Record<string, Record<string, number>> = {};
  for (const [split, examples] of evalSets)
    metrics[split] = evaluateExamples(glueModel, examples, collator, batchSize);
  return metrics;
}

function buildModel(
  src: ModelSource,
  task: GlueTask,
  device: "cpu" | "cuda",
  overrides: Partial<BertConfig> | undefined,
): { model: BertForSequenceClassification; owned: boolean; report?: ClassifierLoadReport } {
  const given = [src.checkpoint, src.model, src.config].filter((x) => x !== undefined).length;
  if (given !== 1) throw new GlueConfigError("give exactly one of checkpoint, model or config");
  const problemType = task.kind === "regression" ? "regression" : "single_label_classification";
  if (src.checkpoint !== undefined) {
    const { model, report } = loadClassifierFromPretrained(src.checkpoint, {
      numLabels: task.numLabels,
      problemType,
      device,
      config: overrides,
    });
    return { model, owned: true, report };
  }
  if (src.config !== undefined) {
    const config = { ...src.config, ...overrides, numLabels: task.numLabels, problemType };
    return {
      model: createModel(config, "classification", { device }) as BertForSequenceClassification,
      owned: true,
    };
  }
  return { model: src.model!, owned: false };
}

/** Finetunes on one task's train set and evaluates on its dev set(s). */
export async function finetune(opts: FinetuneOptions): Promise<FinetuneResult> {
  const task = typeof opts.task === "string" ? getTask(opts.task) : opts.task;
  const log = opts.log ?? (() => {});
  const seed = opts.seed ?? 19;
  const lr = opts.lr ?? task.recipe.lr;
  const weightDecay = opts.weightDecay ?? (opts.lr !== undefined ? opts.lr / 10 : task.recipe.weightDecay);
  const batchSize = opts.batchSize ?? task.recipe.batchSize;
  const epochs = opts.epochs ?? task.recipe.epochs;
  const maxDuration = opts.maxDuration ?? `${epochs}ep`;
  const warmup = opts.warmup ?? "0.06dur";
  const device = opts.device ?? "cpu";
  checkPositive("lr", lr, false);
  checkPositive("batchSize", batchSize, true);
  checkPositive("epochs", epochs, false);
  checkPositive("trainLimit", opts.trainLimit, true);
  checkPositive("evalLimit", opts.evalLimit, true);
  if (weightDecay < 0) throw new GlueConfigError(`weightDecay must be >= 0, got ${weightDecay}`);

  const tokenizer = await resolveTokenizer(opts.tokenizer);
  const collator = new ClassificationCollator({ tokenizer, maxSeqLen: opts.maxSeqLen, kind: task.kind });
  const train = await readGlueSplit(opts.dataDir, task, "train", {
    limit: opts.trainLimit,
    badRows: opts.badRows,
  });
  reportBadRows(train.badRows, log);
  if (train.examples.length === 0) throw new GlueConfigError(`${train.file}: no training examples`);
  const trainSet = collator.encodeAll(train.examples);
  const evalSets = await readEvalSets(task, opts.dataDir, collator, {
    limit: opts.evalLimit,
    badRows: opts.badRows,
    log,
  });

  // The seed fixes the new head's initial weights as well as dropout and the data order.
  manualSeed(seed);
  const { model, owned, report } = buildModel(opts, task, device, opts.configOverrides);
  if (report) {
    log(
      `${task.displayName}: loaded ${opts.checkpoint}; ignored ${report.ignored.length} head key(s)` +
        `${report.ignored.length ? ` (${summarizeKeys(report.ignored)})` : ""}; freshly initialized ${report.initialized.join(", ") || "nothing"}` +
        `${report.unexpected.length ? `; unexpected ${report.unexpected.join(", ")}` : ""}`,
    );
  }
  let keep = false;
  try {
    const glueModel = new GlueModel(model, task, { layout: opts.layout });
    const trainSpec = dataSpec(trainSet, collator, batchSize, { shuffle: true, seed });
    // The recipe's optimizer: DecoupledAdamW, betas (0.9, 0.98), eps 1e-6, weight decay lr/10 on every parameter.
    const optimizer = new DecoupledAdamW([{ params: model.namedParameters(), weightDecay }], {
      lr,
      betas: [0.9, 0.98],
      eps: 1e-6,
      weightDecay,
    });
    const evaluators = opts.evalInterval
      ? [...evalSets].map(([split, examples]) => ({
          label: split,
          data: dataSpec(examples, collator, batchSize, { shuffle: false }),
        }))
      : undefined;
    const trainer = new Trainer({
      model: glueModel as never,
      trainDataloader: trainSpec as DataSpec,
      evalDataloader: evaluators as never,
      evalInterval: opts.evalInterval,
      optimizers: optimizer,
      schedulers: new LinearWithWarmupScheduler({ tWarmup: warmup, alphaF: 0 }),
      maxDuration,
      device,
      seed,
      runName: `glue-${task.name}-seed${seed}`,
      deviceTrainMicrobatchSize: opts.microbatchSize,
      loggers: opts.loggers,
      progressBar: opts.progressBar ?? false,
    });
    const t0 = performance.now();
    await trainer.fit();
    const trainSeconds = (performance.now() - t0) / 1000;
    optimizer.dispose();
    const t1 = performance.now();
    const metrics = evaluateSets(glueModel, evalSets, collator, batchSize);
    const evalSeconds = (performance.now() - t1) / 1000;
    if (opts.saveDir) savePretrained(model, opts.saveDir);
    const result: FinetuneResult = {
      task: task.name,
      seed,
      metrics,
      trainExamples: trainSet.length,
      steps: trainer.state.timestamp.batch,
      trainSeconds,
      evalSeconds,
      hparams: {
        lr,
        weightDecay,
        batchSize,
        maxDuration,
        warmup,
        maxSeqLen: collator.maxSeqLen,
        family: model.config.family,
        layout: glueModel.layout,
      },
      ...(report ? { loadReport: report } : {}),
    };
    log(`${task.displayName} (seed ${seed}): ${formatMetrics(metrics)}`);
    if (opts.keepModel) {
      keep = true;
      result.model = model;
    }
    return result;
  } finally {
    if (owned && !keep) model.dispose();
  }
}

/** Batches of `batchSize` tokenized examples (the last one may be short), for the Trainer. */
function dataSpec(
  examples: EncodedExample[],
  collator: ClassificationCollator,
  batchSize: number,
  order: { shuffle: boolean; seed?: number },
): DataSpec<GlueBatch> {
  const loader = new ArrayDataLoader<EncodedExample, GlueBatch>({
    samples: examples,
    batchSize,
    collate: (items) => collator.collate(items),
    ...order,
    dropLast: false,
  });
  return {
    dataloader: loader,
    numSamples: (b) => b.numSequences,
    numTokens: (b) => b.numTokens,
    splitBatch: splitGlueBatch,
  };
}

function summarizeKeys(keys: string[]): string {
  const prefixes = new Set(keys.map((k) => k.split(".").slice(0, 2).join(".")));
  return [...prefixes].map((p) => `${p}.*`).join(", ");
}

function formatMetrics(metrics: Record<string, Record<string, number>>): string {
  return Object.entries(metrics)
    .map(
      ([split, v]) =>
        `${split} ${Object.entries(v)
          .map(([k, x]) => `${k} ${(x * 100).toFixed(2)}`)
          .join(" ")}`,
    )
    .join("; ");
}

export interface EvaluateOptions {
  task: GlueTask | string;
  dataDir: string;
  tokenizer: string | PairTokenizer;
  /** A finetuned classifier folder (with classifier.* weights) ... */
  checkpoint?: string;
  /** ... or a classifier already built (not disposed). */
  model?: BertForSequenceClassification;
  maxSeqLen?: number;
  batchSize?: number;
  device?: "cpu" | "cuda";
  layout?: BatchLayout;
  evalLimit?: number;
  badRows?: ReadGlueOptions["badRows"];
  log?: (line: string) => void;
}

/** Evaluates a finetuned classifier on a task's dev set(s), without training. */
export async function evaluate(opts: EvaluateOptions): Promise<TaskResult> {
  const task = typeof opts.task === "string" ? getTask(opts.task) : opts.task;
  const log = opts.log ?? (() => {});
  if ((opts.checkpoint === undefined) === (opts.model === undefined)) {
    throw new GlueConfigError("evaluate: give exactly one of checkpoint or model");
  }
  const batchSize = opts.batchSize ?? 32;
  checkPositive("batchSize", batchSize, true);
  const tokenizer = await resolveTokenizer(opts.tokenizer);
  const collator = new ClassificationCollator({ tokenizer, maxSeqLen: opts.maxSeqLen, kind: task.kind });
  const evalSets = await readEvalSets(task, opts.dataDir, collator, {
    limit: opts.evalLimit,
    badRows: opts.badRows,
    log,
  });
  const model = opts.model ?? loadFinetunedClassifier(opts.checkpoint!, task, { device: opts.device });
  try {
    const glueModel = new GlueModel(model, task, { layout: opts.layout });
    const t0 = performance.now();
    const metrics = evaluateSets(glueModel, evalSets, collator, batchSize);
    log(`${task.displayName}: ${formatMetrics(metrics)}`);
    return {
      task: task.name,
      seed: 0,
      metrics,
      trainExamples: 0,
      steps: 0,
      trainSeconds: 0,
      evalSeconds: (performance.now() - t0) / 1000,
      hparams: {
        batchSize,
        maxSeqLen: collator.maxSeqLen,
        family: model.config.family,
        layout: glueModel.layout,
      },
    };
  } finally {
    if (opts.model === undefined) model.dispose();
  }
}
