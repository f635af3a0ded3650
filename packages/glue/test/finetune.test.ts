import * as fs from "node:fs";
import * as path from "node:path";
import {
  type BertForSequenceClassification,
  createModel,
  presetConfig,
  readSafetensors,
  savePretrained,
  writeSafetensors,
} from "@mbert/model";
import { manualSeed, memory } from "@mbert/tensor";
import { describe, expect, it } from "vitest";
import {
  GLUE_TASKS,
  GlueCheckpointError,
  evaluate,
  finetune,
  loadClassifierFromPretrained,
  loadFinetunedClassifier,
} from "../src/index.js";
import { SIGNAL, WORDS, tinyTokenizer, tmpDir, writeSignalSst2 } from "./helpers.js";

const tinyMosaic = () => presetConfig("mosaic-bert-tiny", { vocabSize: 64, hiddenDropoutProb: 0 });
const tinyBert = () =>
  presetConfig("bert-tiny", { vocabSize: 64, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 });

/** An MLM checkpoint folder of a tiny randomly initialized model (what pretraining writes). */
function mlmCheckpoint(config = tinyMosaic()): string {
  const dir = tmpDir("mbert-glue-ckpt-");
  manualSeed(5);
  const m = createModel(config, "mlm");
  savePretrained(m, dir);
  m.dispose();
  return dir;
}

describe("finetune", () => {
  it("a tiny MosaicBERT learns a synthetic task (label = whether a word appears) well above chance", async () => {
    const dir = tmpDir();
    writeSignalSst2(dir, 512, 128);
    const lines: string[] = [];
    const r = await finetune({
      task: "sst2",
      dataDir: dir,
      config: tinyMosaic(),
      tokenizer: tinyTokenizer(),
      seed: 1,
      lr: 1e-3,
      batchSize: 16,
      epochs: 5,
      log: (l) => lines.push(l),
    });
    expect(r.steps).toBe(160); // 512 / 16 x 5
    expect(r.hparams.layout).toBe("unpadded");
    expect(r.metrics.dev!.accuracy).toBeGreaterThan(0.85);
    expect(lines.at(-1)).toMatch(/^SST-2 \(seed 1\): dev accuracy \d+\.\d\d$/);
  });

  it("classic BERT on the padded path learns it too", async () => {
    const dir = tmpDir();
    writeSignalSst2(dir, 512, 128);
    const r = await finetune({
      task: "sst2",
      dataDir: dir,
      config: tinyBert(),
      tokenizer: tinyTokenizer(),
      seed: 1,
      lr: 1e-3,
      batchSize: 16,
      epochs: 5,
    });
    expect(r.hparams.layout).toBe("padded");
    expect(r.metrics.dev!.accuracy).toBeGreaterThan(0.85);
  });

  it("STS-B regression: the score is the count of the signal word; Pearson and Spearman rise", async () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, "STS-B"));
    const header = GLUE_TASKS.stsb.train.header!.join("\t");
    const rows = (n: number, off: number) =>
      Array.from({ length: n }, (_, i) => {
        const k = (i + off) % 6; // 0..5 signal words
        const words = [...Array(k).fill(SIGNAL), ...WORDS.slice((i * 7) % 30, ((i * 7) % 30) + 6 - k)];
        return `${i}\tg\tf\t2012\t${i}\ts\ts\t${words.join(" ")}\t${WORDS[i % 40]}\t${k.toFixed(3)}`;
      }).join("\n");
    fs.writeFileSync(path.join(dir, "STS-B", "train.tsv"), `${header}\n${rows(384, 0)}\n`);
    fs.writeFileSync(path.join(dir, "STS-B", "dev.tsv"), `${header}\n${rows(96, 3)}\n`);
    const r = await finetune({
      task: "stsb",
      dataDir: dir,
      config: tinyMosaic(),
      tokenizer: tinyTokenizer(),
      seed: 2,
      lr: 1e-3,
      batchSize: 16,
      epochs: 4,
    });
    expect(r.metrics.dev!.pearson).toBeGreaterThan(0.8);
    expect(r.metrics.dev!.spearman).toBeGreaterThan(0.8);
  });

  it("frees what it allocated (model, optimizer state, activations)", async () => {
    const dir = tmpDir();
    writeSignalSst2(dir, 64, 32);
    // What building and disposing the bare model leaves behind is the tensor
    // package's business (at the time of writing each new Parameter leaves its
    // temporary); finetune must leave nothing more than that.
    const config = { ...tinyMosaic(), numLabels: 2, problemType: "single_label_classification" };
    const m0 = memory();
    createModel(config, "classification").dispose();
    const m1 = memory();
    await finetune({
      task: "sst2",
      dataDir: dir,
      config: tinyMosaic(),
      tokenizer: tinyTokenizer(),
      maxDuration: "6ba",
      batchSize: 8,
    });
    const m2 = memory();
    expect(m2.tensors - m1.tensors).toBe(m1.tensors - m0.tensors);
    expect(m2.storages - m1.storages).toBe(m1.storages - m0.storages);
    expect(m2.bytes.cpu - m1.bytes.cpu).toBe(m1.bytes.cpu - m0.bytes.cpu);
  });

  it("rejects bad hyperparameters and a missing model source by name", async () => {
    const base = { task: "sst2", dataDir: tmpDir(), tokenizer: tinyTokenizer() };
    await expect(finetune({ ...base, config: tinyMosaic(), batchSize: 0 })).rejects.toThrowError(
      /batchSize must be a positive integer/,
    );
    await expect(finetune({ ...base })).rejects.toMatchObject({ code: "GLUE_FILE_MISSING" });
    writeSignalSst2(base.dataDir, 8, 4);
    await expect(finetune({ ...base })).rejects.toThrowError(
      /give exactly one of checkpoint, model or config/,
    );
  });
});

describe("checkpoint -> classifier", () => {
  it("ignores the MLM head keys, keeps the encoder, initializes the classifier (and the missing pooler)", () => {
    const dir = mlmCheckpoint();
    const saved = readSafetensors(path.join(dir, "model.safetensors")).tensors;
    manualSeed(3);
    const { model, report } = loadClassifierFromPretrained(dir, { numLabels: 3 });
    try {
      expect(report.ignored.length).toBeGreaterThan(0);
      expect(report.ignored.every((k) => k.startsWith("cls.predictions."))).toBe(true);
      expect(report.unexpected).toEqual([]);
      expect(report.initialized.sort()).toEqual(
        ["bert.pooler.dense.bias", "bert.pooler.dense.weight", "classifier.bias", "classifier.weight"].sort(),
      );
      const params = new Map(model.namedParameters());
      const name = "bert.encoder.layer.1.attention.self.Wqkv.weight";
      expect([...params.get(name)!.data()]).toEqual([...(saved.get(name)!.data as Float32Array)]);
      const w = params.get("classifier.weight")!;
      expect(w.shape).toEqual([3, 64]);
      const v = w.data() as Float32Array;
      const std = Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
      expect(std).toBeGreaterThan(0.01); // normal(0, 0.02), not zeros
      expect(std).toBeLessThan(0.03);
      expect(model.config.numLabels).toBe(3);
    } finally {
      model.dispose();
    }
  });

  it("an earlier classifier of another size (an MNLI checkpoint for RTE) is ignored, not a mismatch", () => {
    const dir = tmpDir();
    const m = createModel({ ...tinyMosaic(), numLabels: 3 }, "classification");
    savePretrained(m, dir);
    m.dispose();
    const { model, report } = loadClassifierFromPretrained(dir, { numLabels: 2 });
    expect(report.ignored).toEqual(["classifier.bias", "classifier.weight"]);
    expect(report.initialized).toEqual(["classifier.weight", "classifier.bias"]);
    model.dispose();
  });

  it("a checkpoint missing encoder weights is a GlueCheckpointError naming them", () => {
    const dir = mlmCheckpoint();
    const file = path.join(dir, "model.safetensors");
    const t = readSafetensors(file).tensors;
    t.delete("bert.encoder.layer.0.mlp.wo.weight");
    writeSafetensors(file, t as never);
    expect(() => loadClassifierFromPretrained(dir, { numLabels: 2 })).toThrowError(GlueCheckpointError);
    expect(() => loadClassifierFromPretrained(dir, { numLabels: 2 })).toThrowError(/mlp\.wo\.weight/);
  });

  it("finetunes from a checkpoint, saves, and evaluate() of the saved classifier gives the same metrics", async () => {
    const ckpt = mlmCheckpoint();
    const data = tmpDir();
    writeSignalSst2(data, 256, 64);
    const out = tmpDir();
    const lines: string[] = [];
    const r = await finetune({
      task: "sst2",
      dataDir: data,
      checkpoint: ckpt,
      tokenizer: tinyTokenizer(),
      lr: 1e-3,
      batchSize: 16,
      maxDuration: "20ba",
      saveDir: out,
      keepModel: true,
      log: (l) => lines.push(l),
    });
    expect(r.loadReport!.ignored.length).toBeGreaterThan(0);
    expect(lines[0]).toMatch(
      /ignored \d+ head key\(s\) \(cls\.predictions\.\*\); freshly initialized .*classifier\.weight/,
    );
    expect(r.steps).toBe(20);
    const model = r.model as BertForSequenceClassification;
    const again = await evaluate({
      task: "sst2",
      dataDir: data,
      checkpoint: out,
      tokenizer: tinyTokenizer(),
    });
    expect(again.metrics.dev!.accuracy).toBe(r.metrics.dev!.accuracy);
    const same = await evaluate({
      task: "sst2",
      dataDir: data,
      model,
      tokenizer: tinyTokenizer(),
      batchSize: 7,
    });
    expect(same.metrics.dev!.accuracy).toBe(r.metrics.dev!.accuracy);
    model.dispose();
    // An MLM checkpoint is not a finetuned classifier.
    expect(() => loadFinetunedClassifier(ckpt, GLUE_TASKS.sst2)).toThrowError(/no classifier\.\* weights/);
    // A 2-label classifier does not fit MNLI's 3.
    expect(() => loadFinetunedClassifier(out, GLUE_TASKS.mnli)).toThrowError(GlueCheckpointError);
  });
});
