// One MosaicBERT-base pretraining step on the GPU, timed: microbatch 256 x 128
// with 25% of sequences shorter (lengths uniform in [32, 128)), 30% masking,
// bf16 compute over fp32 master weights, DecoupledAdamW. Reports tokens/s over
// real tokens, MFU (6 x params x tokens/s / 989e12), and where a step's time
// goes (per-op device time from a separate profiled step, plus host time).
// Bundle with scripts/device-bundle.mjs; run on the GPU machine. Prints a table
// and a JSON line; writes $OUT/pretrain.json.
import fs from "node:fs";
import path from "node:path";
import { type UnpaddedMlmBatch, createModel, presetConfig } from "@mbert/model";
import { Generator, native, profileOps, tidy } from "./bench-deps.js";
import { syntheticMlmBatch } from "./synthetic-mlm.js";
import { DecoupledAdamW, clipScale, gradSumSquares } from "@mbert/train";

const PEAK = 989e12;
const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};
const preset = arg("preset", "mosaic-bert-base");
const B = Number(arg("batch", "256"));
const S = Number(arg("seq", "128"));
const steps = Number(arg("steps", "20"));
// Gradient clipping at norm 1.0 (the MosaicBERT recipe's): none, on the device (what the
// trainer does: the norm never leaves the GPU) or through the host (reads the norm).
const clip = arg("clip", "none");
if (!["none", "device", "host"].includes(clip))
  throw new Error(`--clip: expected none, device or host, got ${clip}`);

const makeBatch = (seed: number, V: number): UnpaddedMlmBatch =>
  syntheticMlmBatch(seed, { batch: B, seq: S, vocabSize: V });

function main(): void {
  const cuda = native.cuda;
  if (!cuda) throw new Error("pretrain bench: built without CUDA");
  const config = presetConfig(preset);
  const model = createModel(config, "mlm", { device: "cuda", generator: new Generator(0) });
  model.train();
  const opt = new DecoupledAdamW(model.namedParameters(), {
    lr: 5e-4,
    betas: [0.9, 0.98],
    eps: 1e-6,
    weightDecay: 1e-5,
  });
  const paramList = [...model.namedParameters()].map(([, p]) => p);
  const batches = [0, 1, 2, 3].map((i) => makeBatch(i + 1, config.vocabSize));
  const params = model.numParams();
  const phases = { forward: 0, backward: 0, optimizer: 0 };
  // Events are read only after the timed loop, so reading them never stalls the host mid-run.
  const marks: { start: number; fwd: number; bwd: number; opt: number }[] = [];
  const step = (batch: UnpaddedMlmBatch, timed = false) => {
    const start = timed ? cuda.eventRecord() : 0;
    let fwd = 0;
    tidy(() => {
      const out = model.forward(batch);
      if (timed) fwd = cuda.eventRecord();
      out.loss!.backward();
    });
    const bwd = timed ? cuda.eventRecord() : 0;
    if (clip === "device") {
      const sq = gradSumSquares(paramList)!;
      opt.step({ clip: { sumSquares: sq, maxNorm: 1 } });
      sq.dispose();
    } else if (clip === "host") {
      opt.step({ gradScale: clipScale(paramList, 1).scale });
    } else {
      opt.step();
    }
    opt.zeroGrad();
    if (timed) marks.push({ start, fwd, bwd, opt: cuda.eventRecord() });
  };
  for (let i = 0; i < 3; i++) step(batches[i % 4]!);
  cuda.synchronize();
  const hostMs: number[] = [];
  let tokens = 0;
  const h0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const b = batches[i % 4]!;
    const t0 = performance.now();
    step(b, true);
    hostMs.push(performance.now() - t0);
    tokens += b.inputIds.length;
  }
  cuda.synchronize();
  const wallMs = (performance.now() - h0) / steps;
  // The host's own cost of a step: enqueue one step onto an idle GPU (its uploads
  // then never wait for a free pinned slot), the median of five.
  const idleHost: number[] = [];
  for (let i = 0; i < 5; i++) {
    cuda.synchronize();
    const t0 = performance.now();
    step(batches[i % 4]!);
    idleHost.push(performance.now() - t0);
  }
  cuda.synchronize();
  const hostOwnMs = [...idleHost].sort((a, b) => a - b)[2]!;
  const times: number[] = [];
  marks.forEach((m, i) => {
    const next = marks[i + 1];
    phases.forward += cuda.eventElapsed(m.start, m.fwd);
    phases.backward += cuda.eventElapsed(m.fwd, m.bwd);
    phases.optimizer += cuda.eventElapsed(m.bwd, m.opt);
    // A step's time: from its start to the next step's start (host gaps included), or to its end.
    times.push(cuda.eventElapsed(m.start, next ? next.start : m.opt));
  });
  for (const m of marks) for (const e of [m.start, m.fwd, m.bwd, m.opt]) cuda.eventDestroy(e);
  const sorted = [...times].sort((a, b) => a - b);
  const med = sorted[Math.floor(sorted.length / 2)]!;
  const meanTokens = tokens / steps;
  const tps = meanTokens / (med / 1e3);
  const mfu = (6 * params * tps) / PEAK;
  // Per-op breakdown from one profiled step.
  const { profile } = profileOps(() => step(batches[0]!));
  const opRows = [...profile.ops.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const loss = tidy(() => model.forward(batches[0]!).loss!.item());
  console.log(
    `\n${preset} pretraining step, microbatch ${B} x ${S}, ${params} params, ${meanTokens.toFixed(0)} real tokens/step, clipping: ${clip}`,
  );
  console.log(
    `step median ${med.toFixed(2)} ms  tokens/s ${tps.toFixed(0)}  MFU ${(mfu * 100).toFixed(1)}%  loss ${loss.toFixed(3)}`,
  );
  const n = steps;
  console.log(
    `phases (mean ms): forward ${(phases.forward / n).toFixed(2)}  backward ${(phases.backward / n).toFixed(2)}  optimizer ${(phases.optimizer / n).toFixed(2)}  host enqueue ${(hostMs.reduce((a, b) => a + b, 0) / n).toFixed(2)} (on an idle GPU ${hostOwnMs.toFixed(2)})  wall ${wallMs.toFixed(2)}`,
  );
  console.log("op                                   ms/step  launches");
  for (const [op, v] of opRows.slice(0, 25))
    console.log(`${op.padEnd(36)} ${v.ms.toFixed(3).padStart(8)} ${String(v.count).padStart(8)}`);
  const json = {
    bench: "pretrain-step",
    impl: "mbert",
    model: preset,
    params,
    batch: B,
    seq: S,
    clip,
    step_ms: med,
    tokens_per_second: tps,
    mfu,
    loss,
    phases_ms: {
      forward: phases.forward / n,
      backward: phases.backward / n,
      optimizer: phases.optimizer / n,
      host: hostMs.reduce((a, b) => a + b, 0) / n,
      host_idle_gpu: hostOwnMs,
    },
    ops_ms: Object.fromEntries(opRows.map(([k, v]) => [k, v.ms])),
    profiled_total_ms: profile.totalMs,
  };
  console.log(JSON.stringify(json));
  if (process.env.OUT)
    fs.writeFileSync(
      path.join(process.env.OUT, `pretrain-${preset}${clip === "none" ? "" : `-clip-${clip}`}.json`),
      JSON.stringify(json, null, 1),
    );
  opt.dispose();
  model.dispose();
}

main();
