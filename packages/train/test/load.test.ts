// Starting a run from a checkpoint's weights only (finetuning), with
// loadIgnoreKeys globs, and the report of what was loaded, ignored and missing.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type BertForMaskedLM, createModel, presetConfig } from "@mbert/model";
import { type Tensor, manualSeed } from "@mbert/tensor";
import { describe, expect, it } from "vitest";
import {
  CheckpointError,
  InMemoryLogger,
  MlmTask,
  type ModuleLike,
  Trainer,
  saveCheckpoint,
} from "../src/index.js";
import { ToyModel, toyData, toyOptimizer, toySamples } from "./toy.js";

const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), `mbert-${p}-`));

function weights(m: ModuleLike): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const [k, p] of m.namedParameters()) out.set(k, Array.from((p as unknown as Tensor).data()));
  return out;
}

/** Trains a toy model for 4 batches and returns its checkpoint folder and final weights. */
async function toyCheckpoint() {
  const folder = tmp("load-src");
  const model = new ToyModel(1);
  const t = new Trainer({
    model,
    trainDataloader: toyData(toySamples(48), 8),
    optimizers: toyOptimizer(model),
    maxDuration: "4ba",
    device: "cpu",
    saveFolder: folder,
    saveInterval: "4ba",
  });
  await t.fit();
  return { dir: t.checkpointSaver!.saved.at(-1)!, trained: weights(model.module) };
}

function finetuner(loadPath: string, extra: Partial<ConstructorParameters<typeof Trainer>[0]> = {}) {
  const model = new ToyModel(2);
  const log = new InMemoryLogger();
  const trainer = new Trainer({
    model,
    trainDataloader: toyData(toySamples(48), 8),
    optimizers: toyOptimizer(model),
    maxDuration: "3ba",
    device: "cpu",
    loadPath,
    loadWeightsOnly: true,
    loggers: [log],
    ...extra,
  });
  return { model, log, trainer, fresh: weights(model.module) };
}

describe("loading weights", () => {
  it("weights-only loadPath copies the weights and starts the run from zero with a fresh optimizer", async () => {
    const { dir, trained } = await toyCheckpoint();
    const { model, trainer } = finetuner(dir);
    await trainer.eval(); // loads, without training
    expect(weights(model.module)).toEqual(trained);
    expect(trainer.state.timestamp.batch).toBe(0);
    const opt = trainer.state.optimizers[0]!.stateDict();
    expect(Object.keys(opt.tensors)).toHaveLength(0);
    expect(trainer.loadReport).toEqual({
      loaded: ["l1.weight", "l1.bias", "l2.weight", "l2.bias"],
      ignored: [],
      missing: [],
      unexpected: [],
      mismatched: [],
    });
    await trainer.fit();
    expect(trainer.state.timestamp.batch).toBe(3); // its own 3 batches, not 4 + 3
  });

  it("loadIgnoreKeys globs skip weights, which keep their fresh values, and are reported by name", async () => {
    const { dir, trained } = await toyCheckpoint();
    const { model, log, trainer, fresh } = finetuner(dir, { loadIgnoreKeys: ["model.l2.*"] });
    await trainer.eval();
    const now = weights(model.module);
    expect(now.get("l1.weight")).toEqual(trained.get("l1.weight"));
    expect(now.get("l1.bias")).toEqual(trained.get("l1.bias"));
    expect(now.get("l2.weight")).toEqual(fresh.get("l2.weight"));
    expect(now.get("l2.bias")).toEqual(fresh.get("l2.bias"));
    expect(trainer.loadReport?.loaded).toEqual(["l1.weight", "l1.bias"]);
    expect(trainer.loadReport?.ignored).toEqual(["l2.bias", "l2.weight"]);
    expect(log.texts.join("\n")).toMatch(
      /loaded weights from checkpoint .*: 2 weights loaded; ignored \(loadIgnoreKeys\): l2\.bias, l2\.weight/,
    );
  });

  it("a weight the model lacks fails by name unless ignored, or with loadStrict false", async () => {
    const { dir } = await toyCheckpoint();
    const { trainer } = finetuner(dir);
    // The model grows a parameter the checkpoint lacks ('head.weight').
    const module = trainer.state.model.module as ModuleLike & {
      namedParameters(): Iterable<[string, unknown]>;
    };
    const orig = module.namedParameters.bind(module);
    const extra = [...orig()][0]![1];
    module.namedParameters = function* () {
      yield* orig();
      yield ["head.weight", extra];
    } as typeof module.namedParameters;
    await expect(trainer.eval()).rejects.toThrow(CheckpointError);
    await expect(finetunerWith(dir, module, { loadIgnoreKeys: ["model.head.*"] })).resolves.toMatchObject({
      missing: [],
      ignored: ["head.weight"],
    });
    await expect(finetunerWith(dir, module, { loadStrict: false })).resolves.toMatchObject({
      missing: ["head.weight"],
    });
  });

  it("an MLM checkpoint loads into a fresh MosaicBERT with the MLM head dropped by 'model.cls.*'", async () => {
    const config = presetConfig("mosaic-bert-tiny", { vocabSize: 64, hiddenDropoutProb: 0 });
    manualSeed(5);
    const source = new MlmTask(createModel(config, "mlm") as BertForMaskedLM);
    const saver = new Trainer({ model: source, maxDuration: "1ba", device: "cpu" });
    const dir = saveCheckpoint(tmp("load-mlm"), saver.state);
    const before = weights(source.module);

    manualSeed(6);
    const target = new MlmTask(createModel(config, "mlm") as BertForMaskedLM);
    const fresh = weights(target.module);
    const t = new Trainer({
      model: target,
      maxDuration: "1ba",
      device: "cpu",
      loadPath: dir,
      loadWeightsOnly: true,
      loadIgnoreKeys: ["model.cls.*"],
    });
    await t.eval();
    const now = weights(target.module);
    const cls = [...now.keys()].filter((k) => k.startsWith("cls."));
    expect(cls.length).toBeGreaterThan(0);
    for (const k of cls) expect(now.get(k)).toEqual(fresh.get(k));
    for (const k of now.keys()) if (!k.startsWith("cls.")) expect(now.get(k)).toEqual(before.get(k));
    const r = t.loadReport!;
    expect(r.ignored).toEqual([...cls].sort());
    expect(r.missing).toEqual([]);
    expect(r.unexpected).toEqual([]);
    expect(r.loaded.length).toBe(now.size - cls.length);
    source.module.dispose();
    target.module.dispose();
  });
});

async function finetunerWith(
  dir: string,
  module: ModuleLike,
  extra: Partial<ConstructorParameters<typeof Trainer>[0]>,
) {
  const model = new ToyModel(2);
  (model as unknown as { module: ModuleLike }).module = module;
  const t = new Trainer({
    model,
    maxDuration: "1ba",
    device: "cpu",
    loadPath: dir,
    loadWeightsOnly: true,
    ...extra,
  });
  await t.eval();
  return t.loadReport;
}
