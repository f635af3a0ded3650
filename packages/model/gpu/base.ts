// GPU check of @mbert/model at full size: a MosaicBERT-base forward/backward
// on a 256 x 128 batch on `cuda` in bf16, compared with the CPU float32 result
// on a few of its sequences (the fixtures are checked by gpu/parity.ts).
// Usage (GPU machine): node .device/base.mjs
import fs from "node:fs";
import path from "node:path";
import { type UnpaddedMlmBatch, createModel, presetConfig } from "@mbert/model";
import { native } from "@mbert/kernels";
import { syntheticMlmBatch } from "../../../bench/synthetic-mlm.js";
import { Generator, type Tensor, tidy } from "@mbert/tensor";

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

function f32(t: Tensor): Float32Array {
  return t.cast("float32").to("cpu").data() as Float32Array;
}

/** The first `n` sequences of a batch. */
function head(b: UnpaddedMlmBatch, n: number): UnpaddedMlmBatch {
  const T = b.cuSeqlens[n]!;
  const keep = [...b.maskedPositions].map((p, i) => [p, i] as const).filter(([p]) => p < T);
  return {
    inputIds: b.inputIds.slice(0, T),
    tokenTypeIds: (b.tokenTypeIds ?? new Int32Array(b.inputIds.length)).slice(0, T),
    cuSeqlens: b.cuSeqlens.slice(0, n + 1),
    maxSeqlen: b.maxSeqlen,
    maskedPositions: Int32Array.from(keep.map(([p]) => p)),
    labels: Int32Array.from(keep.map(([, i]) => b.labels[i]!)),
    numSequences: n,
    numTokens: T,
  };
}

function baseCompare(): Record<string, number | boolean> {
  native.cpu.setNumThreads(
    Math.min(
      16,
      (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 8,
    ),
  );
  const config = presetConfig("mosaic-bert-base", { hiddenDropoutProb: 0 } as never);
  const gpu = createModel(config, "mlm", { device: "cuda", generator: new Generator(1) });
  const cpu = createModel(config, "mlm", { device: "cpu", init: false });
  cpu.loadStateDict(gpu.stateDict() as never);
  gpu.train();
  cpu.train();
  const full: UnpaddedMlmBatch = syntheticMlmBatch(7, { batch: 256, seq: 128, vocabSize: config.vocabSize });
  const few = head(full, 4);
  const t0 = performance.now();
  const r = tidy(() => {
    const outFull = gpu.forward(full, { outputHiddenStates: true });
    const T4 = few.inputIds.length;
    const hFull = f32(outFull.hiddenStates!).slice(0, T4 * config.hiddenSize);
    outFull.loss!.backward();
    const gpuFew = gpu.forward(few, { outputHiddenStates: true });
    const cpuFew = cpu.forward(few, { outputHiddenStates: true });
    const hRel = relErr(f32(gpuFew.hiddenStates!), f32(cpuFew.hiddenStates!));
    const hFullRel = relErr(hFull, f32(cpuFew.hiddenStates!));
    const lossAbs = Math.abs(gpuFew.loss!.item() - cpuFew.loss!.item());
    gpu.zeroGrad();
    gpuFew.loss!.backward();
    cpuFew.loss!.backward();
    let gradMax = 0;
    let worst = "";
    const cpuParams = new Map(cpu.namedParameters());
    for (const [name, p] of gpu.namedParameters()) {
      const q = cpuParams.get(name)!;
      if (!p.grad || !q.grad) continue;
      const e = relErr(f32(p.grad), f32(q.grad));
      if (e > gradMax) {
        gradMax = e;
        worst = name;
      }
    }
    return {
      hidden_rel_err: hRel,
      hidden_full_batch_rel_err: hFullRel,
      loss_abs_err: lossAbs,
      grad_max_rel_err: gradMax,
      grad_worst: worst,
    };
  });
  const pass =
    r.hidden_rel_err <= 2e-2 &&
    r.hidden_full_batch_rel_err <= 2e-2 &&
    r.loss_abs_err <= 2e-2 &&
    r.grad_max_rel_err <= 5e-2;
  gpu.dispose();
  cpu.dispose();
  return { ...r, seconds: (performance.now() - t0) / 1000, pass } as never;
}

function main(): void {
  let pass = false;
  try {
    const b = baseCompare();
    console.log(
      JSON.stringify({ case: "mosaic-bert-base 256x128 cuda bf16 vs cpu f32 (4 sequences)", ...b }),
    );
    pass = b.pass === true;
    if (process.env.OUT)
      fs.writeFileSync(path.join(process.env.OUT, "model-base.json"), JSON.stringify(b, null, 1));
  } catch (e) {
    console.log(JSON.stringify({ case: "mosaic-bert-base", error: String(e).slice(0, 300), pass: false }));
  }
  console.log(`model-base: ${pass ? 1 : 0} passed, ${pass ? 0 : 1} failed`);
  process.exitCode = pass ? 0 : 1;
}

main();
