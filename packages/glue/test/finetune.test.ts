import { presetConfig } from "@mbert/model";
import { describe, expect, it } from "vitest";
import { finetune } from "../src/index.js";
import { tinyTokenizer, tmpDir, writeSignalSst2 } from "./helpers.js";

describe("finetune", () => {
  it("learns a synthetic task (label = whether a word appears) well above chance", async () => {
    const dir = tmpDir();
    writeSignalSst2(dir, 512, 128);
    const config = presetConfig("mosaic-bert-tiny", { vocabSize: 64, hiddenDropoutProb: 0 });
    const t0 = performance.now();
    const r = await finetune({
      task: "sst2",
      dataDir: dir,
      config,
      tokenizer: tinyTokenizer(),
      seed: 1,
      lr: 1e-3,
      batchSize: 16,
      epochs: 5,
    });
    console.log(r.metrics, r.steps, (performance.now() - t0) / 1000);
    expect(r.metrics.dev!.accuracy).toBeGreaterThan(0.8);
  });
});
