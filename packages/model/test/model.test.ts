import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Generator, noGrad, tidy } from "@mbert/tensor";
import { afterAll, describe, expect, it } from "vitest";
import {
  type BertForMaskedLM,
  BertForSequenceClassification,
  CheckpointError,
  StateDictMismatch,
  TokenIdOutOfRange,
  type UnpaddedMlmBatch,
  countParameters,
  createModel,
  loadPretrained,
  loadStateDict,
  presetConfig,
  readSafetensors,
  readSafetensorsHeader,
  savePretrained,
  unpadBatch,
  writeSafetensors,
} from "../src/index.js";
import { fixturesDir } from "./fixtures.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mbert-model-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A deterministic unpadded MLM batch: lengths `lens`, every 3rd token masked. */
function mlmBatch(lens: number[], vocab: number, seed = 1): UnpaddedMlmBatch {
  const T = lens.reduce((a, b) => a + b, 0);
  const ids = new Int32Array(T);
  const tt = new Int32Array(T);
  let x = seed;
  for (let t = 0; t < T; t++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    ids[t] = 1 + (x % (vocab - 1));
  }
  const cu = [0];
  for (const l of lens) cu.push(cu[cu.length - 1]! + l);
  for (let b = 0; b < lens.length; b++)
    for (let t = cu[b]! + Math.floor(lens[b]! / 2); t < cu[b + 1]!; t++) tt[t] = 1;
  const pos: number[] = [];
  for (let t = 0; t < T; t++) if (t % 3 === 1) pos.push(t);
  const labels = Int32Array.from(pos, (p) => (ids[p]! * 7) % vocab);
  return {
    inputIds: ids,
    tokenTypeIds: tt,
    cuSeqlens: Int32Array.from(cu),
    maxSeqlen: Math.max(...lens),
    maskedPositions: Int32Array.from(pos),
    labels,
    numSequences: lens.length,
    numTokens: T,
  };
}

function tiny(family: "bert" | "mosaic", over = {}) {
  return presetConfig(family === "mosaic" ? "mosaic-bert-tiny" : "bert-tiny", {
    hiddenDropoutProb: 0,
    attentionProbsDropoutProb: 0,
    ...over,
  });
}

describe("parameter counts", () => {
  it("mosaic-bert-base has 137M parameters with its MLM head", () => {
    const n = countParameters(presetConfig("mosaic-bert-base"), "mlm").total;
    expect(n).toBeGreaterThan(136.5e6);
    expect(n).toBeLessThan(137.5e6);
    expect(countParameters(presetConfig("bert-base"), "mlm").total).toBeGreaterThan(109e6);
  });

  it("countParameters agrees with the modules, and flopsPerToken is 6N", () => {
    for (const family of ["bert", "mosaic"] as const) {
      for (const head of ["mlm", "classification"] as const) {
        const c = tiny(family, { numLabels: 3 });
        const m = createModel(c, head);
        expect(m.paramCounts()).toEqual(countParameters(c, head));
        expect(m.flopsPerToken()).toBe(6 * m.numParams());
        expect(m.numParams({ embeddings: false })).toBeLessThan(m.numParams());
        m.dispose();
      }
    }
  });
});

describe("initialization", () => {
  it("follows HF BERT: normal(0, 0.02) weights, zero biases, LayerNorm 1/0, zero [PAD] row", () => {
    const m = createModel(tiny("mosaic"), "mlm", { generator: new Generator(3) });
    const sd = new Map(m.namedParameters());
    const w = sd.get("bert.encoder.layer.0.mlp.gated_layers.weight")!.data() as Float32Array;
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
    expect(Math.abs(std - 0.02)).toBeLessThan(0.002);
    expect(
      [...(sd.get("bert.encoder.layer.0.mlp.wo.bias")!.data() as Float32Array)].every((v) => v === 0),
    ).toBe(true);
    expect(
      [...(sd.get("bert.embeddings.LayerNorm.weight")!.data() as Float32Array)].every((v) => v === 1),
    ).toBe(true);
    expect([...(sd.get("cls.predictions.decoder.bias")!.data() as Float32Array)].every((v) => v === 0)).toBe(
      true,
    );
    const emb = sd.get("bert.embeddings.word_embeddings.weight")!.data() as Float32Array;
    expect([...emb.subarray(0, 64)].every((v) => v === 0)).toBe(true);
    expect(emb[64]).not.toBe(0);
    m.dispose();
  });
});

describe("moving a model", () => {
  it("to() moves every parameter in place (tied decoder included) and the forward still agrees", () => {
    const m = createModel(tiny("mosaic"), "mlm", { generator: new Generator(8) }) as BertForMaskedLM;
    const batch = mlmBatch([9, 5, 12], 512);
    const before = tidy(() => m.forward(batch).loss!.item());
    const params = m.parameters();
    m.to("cpu", "float64");
    expect(m.parameters()).toEqual(params);
    expect(params.every((p) => p.dtype === "float64")).toBe(true);
    const after = tidy(() => m.forward(batch).loss!.item());
    expect(Math.abs(after - before)).toBeLessThan(1e-5);
    m.dispose();
  });
});

describe("MosaicBERT forward", () => {
  it("runs the last layer on masked + [CLS] rows only, with the same loss and gradients as the full forward", () => {
    const m = createModel(tiny("mosaic"), "mlm", { generator: new Generator(5) }) as BertForMaskedLM;
    const batch = mlmBatch([9, 5, 12], 512);
    const run = (full: boolean) => {
      m.zeroGrad();
      const loss = tidy(() => {
        const out = m.forward(batch, { outputHiddenStates: full });
        expect(out.logits.shape).toEqual([batch.labels.length, 512]);
        out.loss!.backward();
        return out.loss!.item();
      });
      const grads = new Map([...m.namedParameters()].map(([n, p]) => [n, p.grad!.data() as Float32Array]));
      return { loss, grads };
    };
    const subset = run(false);
    const full = run(true);
    expect(Math.abs(subset.loss - full.loss)).toBeLessThan(1e-6);
    for (const [n, g] of full.grads) {
      const s = subset.grads.get(n)!;
      let d = 0;
      let r = 0;
      for (let i = 0; i < g.length; i++) {
        d += (g[i]! - s[i]!) ** 2;
        r += g[i]! ** 2;
      }
      expect(Math.sqrt(d) / Math.max(Math.sqrt(r), 1e-12), n).toBeLessThan(1e-5);
    }
    m.dispose();
  });

  it("takes non-power-of-two head counts and sequences beyond alibi_starting_size", () => {
    const c = tiny("mosaic", { hiddenSize: 48, numAttentionHeads: 6, alibiStartingSize: 16 });
    const m = createModel(c, "mlm", { generator: new Generator(7) }) as BertForMaskedLM;
    const batch = mlmBatch([40, 7], 512);
    const loss = tidy(() => m.forward(batch).loss!.item());
    expect(Number.isFinite(loss)).toBe(true);
    // A sequence's result does not depend on its neighbours in the batch.
    const alone = mlmBatch([40], 512);
    const h1 = tidy(
      () => m.forward({ ...batch, maskedPositions: undefined } as never).logits.data() as Float32Array,
    );
    const h2 = tidy(
      () => m.forward({ ...alone, maskedPositions: undefined } as never).logits.data() as Float32Array,
    );
    let d = 0;
    for (let i = 0; i < h2.length; i++) d = Math.max(d, Math.abs(h1[i]! - h2[i]!));
    expect(d).toBeLessThan(1e-4);
    m.dispose();
  });

  it("gives the same logits from a padded batch as from the unpadded one", () => {
    const m = createModel(tiny("mosaic"), "classification", {
      generator: new Generator(2),
    }) as BertForSequenceClassification;
    const S = 6;
    const ids = [5, 6, 7, 8, 0, 0, 9, 10, 11, 12, 13, 14];
    const mask = [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1];
    const p = { batchSize: 2, seqLen: S, inputIds: ids, attentionMask: mask, labels: [1, 0] };
    const a = tidy(() => m.forwardPadded(p).logits.data() as Float32Array);
    const b = tidy(() => m.forward(unpadBatch(p).batch).logits.data() as Float32Array);
    expect([...a]).toEqual([...b]);
    m.dispose();
  });
});

describe("classic BERT forward", () => {
  it("padded and unpadded layouts agree at real tokens", () => {
    const m = createModel(tiny("bert"), "classification", {
      generator: new Generator(4),
    }) as BertForSequenceClassification;
    const p = {
      batchSize: 2,
      seqLen: 5,
      inputIds: [5, 6, 7, 0, 0, 9, 10, 11, 12, 13],
      attentionMask: [1, 1, 1, 0, 0, 1, 1, 1, 1, 1],
      labels: [1, 0],
    };
    const a = tidy(() => m.forwardPadded(p).loss!.item());
    const b = tidy(() => m.forward(unpadBatch(p).batch).loss!.item());
    expect(Math.abs(a - b)).toBeLessThan(1e-6);
    m.dispose();
  });

  it("computes attention explicitly for dropout on the probabilities, matching the fused kernel", () => {
    // p = 1e-9 drops nothing in practice, so training mode must reproduce eval mode.
    const c = tiny("bert", { attentionProbsDropoutProb: 1e-9 });
    const m = createModel(c, "mlm", { generator: new Generator(6) }) as BertForMaskedLM;
    const batch = mlmBatch([9, 4, 7], 512);
    const p = {
      batchSize: 2,
      seqLen: 5,
      inputIds: [5, 6, 7, 0, 0, 9, 10, 11, 12, 13],
      attentionMask: [1, 1, 1, 0, 0, 1, 1, 1, 1, 1],
      mlmLabels: [-100, 8, -100, -100, -100, 3, -100, -100, 4, -100],
    };
    for (const run of [() => m.forward(batch), () => m.forwardPadded(p)]) {
      m.eval();
      const fused = tidy(() => run().loss!.item());
      m.train();
      const explicit = tidy(() => run().loss!.item());
      expect(Math.abs(fused - explicit)).toBeLessThan(1e-5);
    }
    // With real dropout the loss changes and still has gradients.
    const d = createModel(tiny("bert", { attentionProbsDropoutProb: 0.5 }), "mlm") as BertForMaskedLM;
    d.train();
    tidy(() => d.forward(batch).loss!.backward());
    const g = new Map(d.namedParameters()).get("bert.encoder.layer.0.attention.self.query.weight")!.grad!;
    expect((g.data() as Float32Array).some((v) => v !== 0)).toBe(true);
    m.dispose();
    d.dispose();
  });

  it("refuses sequences longer than its position table", () => {
    const m = createModel(tiny("bert"), "mlm") as BertForMaskedLM;
    expect(() => m.forward(mlmBatch([65], 512))).toThrow(/max_position_embeddings/);
    m.dispose();
  });
});

describe("input checks", () => {
  it("refuses out-of-vocabulary token ids on the host", () => {
    for (const family of ["bert", "mosaic"] as const) {
      const m = createModel(tiny(family), "mlm") as BertForMaskedLM;
      const batch = mlmBatch([4, 4], 512);
      batch.inputIds[5] = 512;
      expect(() => m.forward(batch)).toThrow(TokenIdOutOfRange);
      const bad = mlmBatch([4, 4], 512);
      bad.labels[0] = 9999;
      expect(() => m.forward(bad)).toThrow(/labels\[0\] = 9999/);
      m.dispose();
    }
  });
});

describe("edge batches", () => {
  it("gives a zero loss (not NaN) when no token is masked, for both families", () => {
    for (const family of ["bert", "mosaic"] as const) {
      const m = createModel(tiny(family), "mlm") as BertForMaskedLM;
      const batch = {
        ...mlmBatch([5, 3], 512),
        maskedPositions: new Int32Array(0),
        labels: new Int32Array(0),
      };
      const loss = tidy(() => {
        const out = m.forward(batch);
        out.loss!.backward();
        return out.loss!.item();
      });
      expect(loss).toBe(0);
      m.dispose();
    }
  });

  it("takes @mbert/data's padded MLM batch (labels as B*S with -100) in forwardPadded", () => {
    for (const family of ["bert", "mosaic"] as const) {
      const m = createModel(tiny(family), "mlm", { generator: new Generator(1) }) as BertForMaskedLM;
      const p = {
        batchSize: 2,
        seqLen: 4,
        inputIds: [5, 6, 7, 0, 9, 10, 11, 12],
        attentionMask: [1, 1, 1, 0, 1, 1, 1, 1],
        labels: [-100, 8, -100, -100, -100, 3, -100, 4],
      };
      const a = tidy(() => m.forwardPadded(p).loss!.item());
      const b = tidy(() => m.forwardPadded({ ...p, labels: undefined, mlmLabels: p.labels }).loss!.item());
      expect(a).toBe(b);
      expect(Number.isFinite(a)).toBe(true);
      m.dispose();
    }
  });
});

describe("gradients in float64", () => {
  it("match finite differences (MosaicBERT MLM)", () => {
    const m = createModel(tiny("mosaic", { numHiddenLayers: 1 }), "mlm", {
      dtype: "float64",
      generator: new Generator(11),
    }) as BertForMaskedLM;
    const batch = mlmBatch([6, 4], 512);
    m.zeroGrad();
    tidy(() => m.forward(batch).loss!.backward());
    const params = new Map(m.namedParameters());
    for (const [name, idx] of [
      ["bert.encoder.layer.0.attention.self.Wqkv.weight", 70],
      ["bert.encoder.layer.0.mlp.gated_layers.weight", 300],
      ["bert.embeddings.token_type_embeddings.weight", 65],
      ["cls.predictions.transform.LayerNorm.weight", 3],
      ["bert.embeddings.word_embeddings.weight", 64 * batch.inputIds[2]! + 5],
    ] as const) {
      const p = params.get(name)!;
      const analytic = (p.grad!.data() as Float64Array)[idx]!;
      const h = 1e-6;
      const lossAt = (delta: number) => {
        const host = p.data() as Float64Array;
        host[idx] = host[idx]! + delta;
        noGrad(() =>
          loadStateDict(m, new Map([[name, { dtype: "F64" as const, shape: [...p.shape], data: host }]]), {
            strict: false,
          }),
        );
        return tidy(() => noGrad(() => m.forward(batch).loss!.item()));
      };
      const up = lossAt(h);
      const down = lossAt(-2 * h);
      lossAt(h);
      const numeric = (up - down) / (2 * h);
      expect(Math.abs(numeric - analytic), name).toBeLessThan(1e-6 + 1e-5 * Math.abs(analytic));
    }
    m.dispose();
  });
});

describe("checkpoints", () => {
  it("savePretrained / loadPretrained round-trip both families with HF names and no tied decoder weight", () => {
    for (const family of ["bert", "mosaic"] as const) {
      const m = createModel(tiny(family), "mlm", { generator: new Generator(8) }) as BertForMaskedLM;
      const dir = path.join(tmp, `rt-${family}`);
      savePretrained(m, dir);
      const names = [...readSafetensorsHeader(path.join(dir, "model.safetensors")).keys()];
      expect(names).not.toContain("cls.predictions.decoder.weight");
      expect(names).toContain(family === "mosaic" ? "cls.predictions.decoder.bias" : "cls.predictions.bias");
      expect(JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")).architectures).toEqual([
        "BertForMaskedLM",
      ]);
      const loaded = loadPretrained(dir);
      expect(loaded.family).toBe(family);
      expect(loaded.loadReport).toEqual({ missing: [], unexpected: [], mismatched: [] });
      const back = loaded as BertForMaskedLM;
      const batch = mlmBatch([7, 3], 512);
      const a = tidy(() => m.forward(batch).loss!.item());
      const b = tidy(() => back.forward(batch).loss!.item());
      expect(b).toBe(a);
      m.dispose();
      back.dispose();
    }
  });

  it("accepts Composer's model. prefix and reports head keys when finetuning an MLM checkpoint", () => {
    const m = createModel(tiny("mosaic"), "mlm", { generator: new Generator(9) });
    const dir = path.join(tmp, "composer");
    savePretrained(m, dir);
    const file = path.join(dir, "model.safetensors");
    const { tensors } = readSafetensors(file);
    writeSafetensors(file, new Map([...tensors].map(([k, v]) => [`model.${k}`, v])));
    const cls = loadPretrained(dir, { head: "classification", numLabels: 3 });
    expect(cls).toBeInstanceOf(BertForSequenceClassification);
    expect(cls.loadReport.missing.sort()).toEqual(
      ["bert.pooler.dense.bias", "bert.pooler.dense.weight", "classifier.bias", "classifier.weight"].sort(),
    );
    expect(cls.loadReport.unexpected.every((k) => k.startsWith("cls.predictions."))).toBe(true);
    expect(() => loadPretrained(dir, { head: "classification", strict: true })).toThrow(StateDictMismatch);
    m.dispose();
    cls.dispose();
  });

  it("reports missing, unexpected and mis-shaped keys by name", () => {
    const m = createModel(tiny("bert"), "mlm");
    const sd = new Map(
      [...m.namedParameters()].map(([k, p]) => [
        k,
        { dtype: "F32" as const, shape: [...p.shape], data: p.data() as Float32Array },
      ]),
    );
    sd.delete("bert.encoder.layer.1.output.dense.bias");
    sd.set("bert.encoder.layer.9.extra.weight", { dtype: "F32", shape: [1], data: new Float32Array(1) });
    sd.set("cls.predictions.transform.dense.bias", { dtype: "F32", shape: [3], data: new Float32Array(3) });
    try {
      loadStateDict(m, sd);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(StateDictMismatch);
      const r = (e as StateDictMismatch).report;
      expect(r.missing).toEqual(["bert.encoder.layer.1.output.dense.bias"]);
      expect(r.unexpected).toEqual(["bert.encoder.layer.9.extra.weight"]);
      expect(r.mismatched).toEqual(["cls.predictions.transform.dense.bias: checkpoint [3] vs model [64]"]);
      expect((e as Error).message).toContain("bert.encoder.layer.1.output.dense.bias");
    }
    const r = loadStateDict(m, sd, { strict: false });
    expect(r.missing.length + r.unexpected.length + r.mismatched.length).toBe(3);
    m.dispose();
  });

  it("refuses a folder with only a pickle, saying how to convert it", () => {
    const dir = path.join(tmp, "pickle");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "pytorch_model.bin"), "not loaded");
    fs.writeFileSync(path.join(dir, "config.json"), "{}");
    try {
      loadPretrained(dir);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(CheckpointError);
      expect((e as CheckpointError).code).toBe("PICKLE_CHECKPOINT");
      expect((e as Error).message).toMatch(/safe_serialization=True/);
    }
  });

  it("loads the fixture checkpoints and detects their family from the weights", ({ skip }) => {
    const dir = fixturesDir();
    if (dir === undefined) return skip();
    const hf = loadPretrained(path.join(dir, "hf-bert-mlm-tiny"));
    expect(hf.family).toBe("bert");
    expect(hf.loadReport.missing).toEqual([]);
    const mosaic = loadPretrained(path.join(dir, "mosaic-bert-cls2-tiny"));
    expect(mosaic.family).toBe("mosaic");
    expect(mosaic).toBeInstanceOf(BertForSequenceClassification);
    hf.dispose();
    mosaic.dispose();
  });
});
