/**
 * `mbert pretrain <config.yaml>`: builds the tokenizer, data loaders, model,
 * optimizer, schedule, callbacks and loggers a validated config describes,
 * and runs the Trainer. The demo runs the same path with its own recipe.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { MlmCollator, MlmDataLoader, StreamingDataset, type TextTokenizer, loadTokenizer } from "@mbert/data";
import { type BertForMaskedLM, configFromHf, configToHf, createModel, presetConfig } from "@mbert/model";
import { cudaAvailable } from "@mbert/tensor";
import {
  type Callback,
  EarlyStopper,
  JsonlLogger,
  LRMonitor,
  type LoggerDestination,
  MemoryMonitor,
  type MlmBatch,
  MlmTask,
  SpeedMonitor,
  TensorBoardLogger,
  Trainer,
  buildOptimizer,
  buildScheduler,
  mlmDataSpec,
} from "@mbert/train";
import { type PretrainConfig, loadPretrainConfig } from "./config.js";
import { ConfigError, UsageError } from "./errors.js";

export interface PretrainRun {
  trainer: Trainer;
  model: BertForMaskedLM;
  tokenizer: TextTokenizer;
  runDir: string;
  seconds: number;
  speed: SpeedMonitor;
  eval: Record<string, number>;
  evalLoader?: MlmDataLoader<MlmBatch>;
}

export interface PretrainOptions {
  /** Console/progress output (default process.stderr). */
  out?: NodeJS.WritableStream;
  device?: "cpu" | "cuda";
  /** Extra callbacks or loggers (the demo adds its own). */
  callbacks?: Callback[];
  loggers?: LoggerDestination[];
}

async function openLoader(
  cfg: PretrainConfig["train_loader"],
  tokenizer: TextTokenizer,
  batchSize: number,
  mlmProbability: number,
  seed: number,
): Promise<MlmDataLoader<MlmBatch>> {
  const ds = cfg.dataset;
  const source = path.join(ds.local, ds.split);
  if (!fs.existsSync(path.join(source, "index.json"))) {
    throw new UsageError(`${source}: no index.json; point ${ds.local} at the output of 'mbert shard'`);
  }
  const dataset = await StreamingDataset.open({
    source,
    seed: ds.shuffle_seed ?? seed,
    shuffle: ds.shuffle ?? true,
  });
  const collator = new MlmCollator({
    mlmProbability,
    seed,
    vocabSize: tokenizer.vocabSize,
    specialIds: tokenizer.specialIds,
  });
  return new MlmDataLoader<MlmBatch>({
    dataset,
    collator: collator as unknown as { collate(s: never): MlmBatch },
    batchSize,
    dropLast: cfg.drop_last ?? true,
    numWorkers: Math.max(1, cfg.num_workers ?? 1),
  });
}

/** The model config: the family's base preset, then model_config overrides (HF key names). */
export function modelConfigFor(c: PretrainConfig, vocabSize: number) {
  const base = presetConfig(c.model.name === "mosaic_bert" ? "mosaic-bert-base" : "bert-base");
  const overrides: Record<string, unknown> = { ...(c.model.model_config ?? {}) };
  if (overrides.max_position_embedding !== undefined) {
    overrides.max_position_embeddings ??= overrides.max_position_embedding;
    delete overrides.max_position_embedding;
  }
  // The vocabulary follows the tokenizer unless set, rounded up to a multiple of 64 (GEMM-friendly).
  overrides.vocab_size ??= Math.ceil(vocabSize / 64) * 64;
  return configFromHf({ ...configToHf(base), ...overrides }, { family: base.family });
}

/** The callbacks a config's `callbacks:` section names; the speed monitor is always on. */
export function callbacksFor(
  c: Pick<PretrainConfig, "callbacks">,
  flopsPerBatch?: (batch: unknown) => number,
): { speed: SpeedMonitor; callbacks: Callback[] } {
  const speed = new SpeedMonitor({
    windowSize: c.callbacks?.speed_monitor?.window_size ?? 100,
    peakFlopsPerSecond: c.callbacks?.speed_monitor?.gpu_flops_available,
    flopsPerBatch,
  });
  const callbacks: Callback[] = [speed];
  if (c.callbacks?.lr_monitor) callbacks.push(new LRMonitor());
  const mm = c.callbacks?.memory_monitor;
  if (mm) callbacks.push(new MemoryMonitor({ interval: mm.interval }));
  const es = c.callbacks?.early_stopper;
  if (es) {
    callbacks.push(
      new EarlyStopper({
        monitor: es.monitor,
        dataloaderLabel: es.dataloader_label,
        patience: es.patience,
        minDelta: es.min_delta,
      }),
    );
  }
  return { speed, callbacks };
}

export async function runPretrain(c: PretrainConfig, opts: PretrainOptions = {}): Promise<PretrainRun> {
  const device = opts.device ?? (cudaAvailable() ? "cuda" : "cpu");
  const precision = device === "cpu" ? "fp32" : c.precision;
  const runName = c.run_name ?? "mbert-pretrain";
  const runDir = c.run_dir ?? path.join("runs", runName);
  fs.mkdirSync(runDir, { recursive: true });
  if (!fs.existsSync(c.tokenizer_name)) {
    // Recipes name hub tokenizers (bert-base-uncased); mbert never downloads one.
    throw new ConfigError("config", [
      {
        key: "tokenizer_name",
        message: `'${c.tokenizer_name}' is not a file: mbert reads tokenizers from a local tokenizer.json and downloads nothing; set tokenizer_name=/path/to/tokenizer.json (or train one: mbert demo, trainWordPiece)`,
      },
    ]);
  }
  const tokenizer = await loadTokenizer(c.tokenizer_name);
  const worldSize = 1;
  const batchSize = c.global_train_batch_size / worldSize;
  const train = await openLoader(c.train_loader, tokenizer, batchSize, c.mlm_probability, c.seed);
  const evalLoader = c.eval_loader
    ? await openLoader(
        c.eval_loader,
        tokenizer,
        c.device_eval_batch_size ?? batchSize,
        c.eval_loader.dataset.mlm_probability ?? 0.15,
        c.seed,
      )
    : undefined;
  const config = modelConfigFor(c, tokenizer.vocabSize);
  const model = createModel(config, "mlm", { device }) as BertForMaskedLM;
  const task = new MlmTask(model);
  const optimizer = buildOptimizer(c.optimizer.name, [...model.namedParameters()], c.optimizer);
  const scheduler = buildScheduler(c.scheduler.name, c.scheduler);
  const { speed, callbacks } = callbacksFor(c, (b) => task.flopsPerBatch(b as MlmBatch));
  callbacks.push(...(opts.callbacks ?? []));
  const loggers: LoggerDestination[] = [...(opts.loggers ?? [])];
  if (c.loggers?.jsonl)
    loggers.push(new JsonlLogger(path.join(runDir, c.loggers.jsonl.filename ?? "metrics.jsonl")));
  if (c.loggers?.tensorboard)
    loggers.push(new TensorBoardLogger(path.join(runDir, c.loggers.tensorboard.log_dir ?? "tb")));
  const clip = c.algorithms?.gradient_clipping?.clipping_threshold;
  const trainer = new Trainer({
    model: task,
    trainDataloader: mlmDataSpec(train),
    evalDataloader: evalLoader ? { label: "eval", data: mlmDataSpec(evalLoader) } : undefined,
    evalInterval: c.eval_interval,
    evalSubsetNumBatches: c.eval_subset_num_batches,
    optimizers: optimizer,
    schedulers: scheduler,
    maxDuration: c.max_duration,
    deviceTrainMicrobatchSize: c.device_train_microbatch_size,
    precision,
    device,
    callbacks,
    loggers,
    seed: c.seed,
    runName,
    runDir,
    // Without save_folder, the Trainer saves under <runDir>/checkpoints when save_interval is set.
    saveFolder: c.save_folder ? c.save_folder.replaceAll("{run_name}", runName) : undefined,
    saveInterval: c.save_interval,
    saveNumCheckpointsToKeep: c.save_num_checkpoints_to_keep,
    saveOverwrite: c.save_overwrite,
    loadPath: c.load_path ?? undefined,
    loadWeightsOnly: c.load_weights_only,
    loadIgnoreKeys: c.load_ignore_keys,
    autoresume: c.autoresume,
    progressBar: c.progress_bar,
    logToConsole: c.log_to_console,
    consoleLogInterval: c.console_log_interval,
    gradClipNorm: clip,
    nonFiniteLoss: c.non_finite_loss,
  });
  const t0 = performance.now();
  await trainer.fit();
  const seconds = (performance.now() - t0) / 1000;
  return {
    trainer,
    model,
    tokenizer,
    runDir,
    seconds,
    speed,
    eval: trainer.state.evalMetricValues.eval ?? {},
    evalLoader,
  };
}

export const PRETRAIN_USAGE = `usage: mbert pretrain <config.yaml> [--set key=value ...]

Pretrains a BERT/MosaicBERT model with the recipe in <config.yaml> (the keys of
mosaicml/examples' mosaic-bert-base-uncased.yaml). --set overrides any key,
e.g. --set optimizer.lr=1e-4 --set max_duration=1000ba.`;

/**
 * Reads `--set key=value` or `--set=key=value` at `args[i]` into `sets`.
 * Returns the index of the last argument it used, or undefined when `args[i]` is not a --set.
 */
export function takeSetOption(args: string[], i: number, sets: string[]): number | undefined {
  const a = args[i]!;
  if (a === "--set") {
    const v = args[i + 1];
    if (v === undefined) throw new UsageError("--set needs key=value");
    sets.push(v);
    return i + 1;
  }
  if (a.startsWith("--set=")) {
    sets.push(a.slice(6));
    return i;
  }
  return undefined;
}

export async function pretrainCommand(args: string[], out: NodeJS.WritableStream): Promise<number> {
  const sets: string[] = [];
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const used = takeSetOption(args, i, sets);
    if (used !== undefined) i = used;
    else if (a.startsWith("-")) throw new UsageError(`unknown option ${a}\n${PRETRAIN_USAGE}`);
    else files.push(a);
  }
  if (files.length !== 1) throw new UsageError(PRETRAIN_USAGE);
  const config = loadPretrainConfig(files[0]!, { sets });
  const run = await runPretrain(config);
  const summary = {
    run_dir: run.runDir,
    seconds: run.seconds,
    batches: run.trainer.state.timestamp.batch,
    ...Object.fromEntries(Object.entries(run.eval).map(([k, v]) => [`eval/${k}`, v])),
    tokens_per_second: run.speed.latest["throughput/tokens_per_sec"] ?? null,
  };
  out.write(`${JSON.stringify(summary)}\n`);
  return 0;
}
