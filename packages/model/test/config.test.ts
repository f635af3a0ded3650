import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  BatchError,
  ConfigError,
  PRESETS,
  TokenIdOutOfRange,
  alibiSlopes,
  configFromHf,
  configToHf,
  presetConfig,
  readConfig,
  unpadBatch,
  validateBatch,
  writeConfig,
} from "../src/index.js";
import { fixturesDir } from "./fixtures.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mbert-cfg-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("BertConfig", () => {
  it("round-trips every fixture config.json key for key, unknown keys included", ({ skip }) => {
    const dir = fixturesDir();
    if (dir === undefined) return skip();
    for (const name of fs.readdirSync(dir)) {
      const file = path.join(dir, name, "config.json");
      if (!fs.existsSync(file)) continue;
      const original = JSON.parse(fs.readFileSync(file, "utf8"));
      const c = readConfig(file);
      const out = path.join(tmp, `${name}.json`);
      writeConfig(out, c);
      expect(JSON.parse(fs.readFileSync(out, "utf8"))).toEqual(original);
    }
  });

  it("reads typed fields and keeps the rest", () => {
    const c = configFromHf({
      vocab_size: 30528,
      hidden_size: 768,
      num_hidden_layers: 12,
      num_attention_heads: 12,
      intermediate_size: 3072,
      alibi_starting_size: 1024,
      auto_map: { AutoModelForMaskedLM: "bert_layers.BertForMaskedLM" },
      id2label: { "0": "neg", "1": "pos", "2": "neutral" },
    });
    expect(c.family).toBe("mosaic");
    expect(c.alibiStartingSize).toBe(1024);
    expect(c.numLabels).toBe(3);
    expect(c.extra.auto_map).toEqual({ AutoModelForMaskedLM: "bert_layers.BertForMaskedLM" });
    const back = configToHf({ ...c, numLabels: 1 });
    expect(back.num_labels).toBe(1);
    expect(back.id2label).toBeUndefined();
    expect(back.alibi_starting_size).toBe(1024);
  });

  it("rejects wrong types and impossible sizes with the key named", () => {
    expect(() => configFromHf({ hidden_size: 64 })).toThrow(/vocab_size/);
    const base = {
      vocab_size: 10,
      hidden_size: 64,
      num_hidden_layers: 1,
      num_attention_heads: 4,
      intermediate_size: 8,
    };
    expect(() => configFromHf({ ...base, hidden_size: "64" })).toThrow(ConfigError);
    expect(() => configFromHf({ ...base, num_attention_heads: 5 })).toThrow(
      /multiple of num_attention_heads/,
    );
    expect(() => configFromHf({ ...base, hidden_act: "relu" })).toThrow(/hidden_act/);
  });

  it("has the presets the paper uses", () => {
    expect(PRESETS["mosaic-bert-base"].vocabSize).toBe(30528);
    expect(PRESETS["mosaic-bert-base"].family).toBe("mosaic");
    expect(PRESETS["bert-base"].vocabSize).toBe(30522);
    expect(PRESETS["mosaic-bert-large"].hiddenSize).toBe(1024);
    expect(presetConfig("bert-tiny", { numLabels: 3 }).numLabels).toBe(3);
    expect(() => presetConfig("gpt2")).toThrow(/unknown preset/);
  });
});

describe("alibiSlopes", () => {
  it("uses 2^(-8/n * (i+1)) for a power of two", () => {
    const s = alibiSlopes(8);
    for (let i = 0; i < 8; i++) expect(s[i]).toBe(Math.fround(2 ** -(i + 1)));
    expect([...alibiSlopes(4)]).toEqual([0.25, 0.0625, 0.015625, 0.00390625]);
  });
  it("interleaves the next power's slopes otherwise (12 heads as in mosaic-bert-base)", () => {
    const s = alibiSlopes(12);
    const want = [1, 2, 3, 4, 5, 6, 7, 8]
      .map((i) => 2 ** -i)
      .concat([0.5, 1.5, 2.5, 3.5].map((e) => 2 ** -e));
    expect([...s]).toEqual(want.map(Math.fround));
    expect(alibiSlopes(6).length).toBe(6);
    expect(alibiSlopes(1)[0]).toBe(Math.fround(2 ** -8));
  });
});

describe("batches", () => {
  it("unpads by the attention mask, keeping HF position ids and masked labels", () => {
    const u = unpadBatch({
      batchSize: 2,
      seqLen: 3,
      inputIds: [5, 6, 7, 8, 9, 0],
      attentionMask: [1, 1, 1, 1, 1, 0],
      tokenTypeIds: [0, 0, 1, 0, 1, 0],
      mlmLabels: [-100, 60, -100, 80, -100, -100],
    });
    expect([...u.batch.inputIds]).toEqual([5, 6, 7, 8, 9]);
    expect([...u.batch.cuSeqlens]).toEqual([0, 3, 5]);
    expect(u.batch.maxSeqlen).toBe(3);
    expect([...u.batch.positionIds!]).toEqual([0, 1, 2, 0, 1]);
    expect([...u.batch.maskedPositions!]).toEqual([1, 3]);
    expect([...(u.batch.labels as Int32Array)]).toEqual([60, 80]);
    expect([...u.indices]).toEqual([0, 1, 2, 3, 4]);
  });

  it("rejects out-of-vocabulary ids on the host, naming the index", () => {
    const b = { inputIds: Int32Array.from([1, 2, 512]), cuSeqlens: Int32Array.from([0, 3]), maxSeqlen: 3 };
    expect(() => validateBatch(b, 512, 2)).toThrow(TokenIdOutOfRange);
    expect(() => validateBatch(b, 512, 2)).toThrow(/inputIds\[2\] = 512/);
    expect(() => validateBatch({ ...b, inputIds: [1, -1, 2] }, 512, 2)).toThrow(TokenIdOutOfRange);
    expect(() => validateBatch({ ...b, inputIds: [1, 2, 3], tokenTypeIds: [0, 2, 0] }, 512, 2)).toThrow(
      /tokenTypeIds\[1\] = 2/,
    );
  });

  it("rejects inconsistent cuSeqlens and masked positions", () => {
    const ids = [1, 2, 3];
    expect(() => validateBatch({ inputIds: ids, cuSeqlens: [0, 2], maxSeqlen: 3 }, 10, 2)).toThrow(
      BatchError,
    );
    expect(() => validateBatch({ inputIds: ids, cuSeqlens: [0, 3], maxSeqlen: 2 }, 10, 2)).toThrow(
      /maxSeqlen/,
    );
    expect(() =>
      validateBatch({ inputIds: ids, cuSeqlens: [0, 3], maxSeqlen: 3, maskedPositions: [2, 1] }, 10, 2),
    ).toThrow(/maskedPositions/);
  });
});
