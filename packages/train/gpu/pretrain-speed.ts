// MosaicBERT-base pretraining speed through the Trainer, on the GPU: the
// number bench/pretrain.ts measures for a bare step, here with everything a
// real run adds (events, callbacks, LR schedule, loss reads at an interval).
// Microbatch 256 x 128 with 25% of sequences shorter (lengths uniform in
// [32, 128)), 30% masking, amp_bf16, DecoupledAdamW (lr 5e-4, betas 0.9/0.98,
// eps 1e-6, wd 1e-5), linear decay with warmup, 60 batches. Reports, from the
// speed monitor (window of 20 batches), tokens/s over real tokens and MFU
// (6 x params x tokens/s / 989e12), with the memory monitor's last reading.
// Bundle: node scripts/device-bundle.mjs packages/train/gpu/pretrain-speed.ts
// Run (GPU machine): MBERT_ADDON=.device/mbert.node node .device/pretrain-speed.mjs
// Prints a JSON line last and writes $OUT/pretrain-trainer.json. --clip 1.0 clips
// gradients by global norm (on the device: the step never waits for the host).
// Options for a smoke run elsewhere: --preset mosaic-bert-tiny --batch 16 --batches 6 --device cpu.
import fs from "node:fs";
import path from "node:path";
import { type BertForMaskedLM, createModel, presetConfig } from "@mbert/model";
import {
  ConsoleLogger,
  DecoupledAdamW,
  InMemoryLogger,
  LinearWithWarmupScheduler,
  type MlmBatch,
  MemoryMonitor,
  MlmTask,
  SpeedMonitor,
  Trainer,
  mlmDataSpec,
} from "@mbert/train";
import { syntheticMlmBatch } from "../../../bench/synthetic-mlm.js";

const PEAK = 989e12;
const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};
const preset = arg("preset", "mosaic-bert-base");
const device = arg("device", "cuda") as "cpu" | "cuda";
const B = Number(arg("batch", "256"));
const S = 128;
const BATCHES = Number(arg("batches", "60"));
const WINDOW = Math.min(20, BATCHES);
const clip = args.includes("--clip") ? Number(arg("clip", "")) : undefined;

/** An in-memory loader cycling a few pregenerated batches; one epoch is the whole run. */
function syntheticLoader(vocabSize: number, distinct = 8) {
  const batches = Array.from({ length: distinct }, (_, i) =>
    syntheticMlmBatch(i + 1, { batch: B, seq: S, vocabSize }),
  );
  return {
    length: BATCHES,
    *[Symbol.iterator](): Iterator<MlmBatch> {
      for (let i = 0; i < BATCHES; i++) yield batches[i % distinct]!;
    },
  };
}

async function main(): Promise<void> {
  // Synthetic ids are drawn from [1000, V - 100): tiny presets get a vocabulary that holds them.
  const base = presetConfig(preset);
  const config = base.vocabSize < 2048 ? presetConfig(preset, { vocabSize: 2048 }) : base;
  const model = createModel(config, "mlm", { device }) as BertForMaskedLM;
  const task = new MlmTask(model);
  const params = model.numParams();
  const speed = new SpeedMonitor({ windowSize: WINDOW, peakFlopsPerSecond: PEAK });
  const mem = new MemoryMonitor({ interval: WINDOW });
  const log = new InMemoryLogger();
  const trainer = new Trainer({
    model: task,
    trainDataloader: mlmDataSpec(syntheticLoader(config.vocabSize)),
    optimizers: new DecoupledAdamW([...model.namedParameters()], {
      lr: 5e-4,
      betas: [0.9, 0.98],
      eps: 1e-6,
      weightDecay: 1e-5,
    }),
    schedulers: new LinearWithWarmupScheduler({ tWarmup: "0.06dur", alphaF: 0.02 }),
    maxDuration: `${BATCHES}ba`,
    precision: device === "cuda" ? "amp_bf16" : "fp32",
    device,
    callbacks: [speed, mem],
    loggers: [new ConsoleLogger({ logInterval: `${WINDOW}ba` }), log],
    // The loss is read at the console interval: the speed window ends on a read (a device sync).
    lossReadInterval: WINDOW,
    gradClipNorm: clip,
    seed: 17,
    runName: "pretrain-speed",
  });
  const t0 = performance.now();
  await trainer.fit();
  const seconds = (performance.now() - t0) / 1000;
  const tps = speed.latest["throughput/tokens_per_sec"] ?? Number.NaN;
  const mfu = speed.latest["throughput/device/mfu"] ?? Number.NaN;
  const json = {
    bench: "pretrain-trainer",
    impl: "mbert",
    model: preset,
    device,
    params,
    batch: B,
    seq: S,
    batches: trainer.state.timestamp.batch,
    grad_clip_norm: clip ?? null,
    grad_norm_last: trainer.state.gradNorm ?? null,
    window: WINDOW,
    tokens_per_second: tps,
    mfu,
    // The same rate counted with the model's own FLOPs per token (attention included).
    mfu_model_flops: (model.flopsPerToken({ seqLen: S }) * tps) / PEAK,
    step_ms: 1000 / (speed.latest["throughput/batches_per_sec"] ?? Number.NaN),
    loss: trainer.state.lossValue,
    memory_peak_bytes: mem.latest["memory/peak_bytes"] ?? null,
    memory_reserved_bytes: mem.latest["memory/reserved_bytes"] ?? null,
    live_tensors: mem.latest["memory/live_tensors"] ?? null,
    fit_seconds: seconds,
    losses: (log.history["loss/train/total"] ?? []).map(([, v]) => Number(v.toFixed(4))),
  };
  console.log(JSON.stringify(json));
  if (process.env.OUT)
    fs.writeFileSync(
      path.join(process.env.OUT, `pretrain-trainer${clip === undefined ? "" : "-clip"}.json`),
      JSON.stringify(json, null, 1),
    );
  model.dispose();
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exitCode = 1;
});
