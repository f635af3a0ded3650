import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { checkParityCommand, createModel, presetConfig } from "../src/index.js";
import { fixturesDir } from "./fixtures.js";

function capture() {
  const lines: string[] = [];
  return { out: { write: (s: string) => lines.push(s) }, lines };
}

describe("mbert check-parity", () => {
  it("prints one JSON line and exits 0 on a passing case", async ({ skip }) => {
    const dir = fixturesDir();
    if (dir === undefined) return skip();
    const { out, lines } = capture();
    const code = await checkParityCommand([path.join(dir, "mosaic-bert-cls2-tiny"), "--device", "cpu"], out);
    expect(code).toBe(0);
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]!);
    expect(r).toMatchObject({ case: "mosaic-bert-cls2-tiny", device: "cpu", pass: true });
    for (const k of [
      "logits_rel_err",
      "hidden_rel_err",
      "loss_abs_err",
      "grad_max_rel_err",
      "adamw_max_abs_err",
    ]) {
      expect(typeof r[k]).toBe("number");
    }
  });

  it("exits 1 with an error line for a folder that is not a case, and 2 on bad usage", async () => {
    const a = capture();
    expect(await checkParityCommand(["/nonexistent/case"], a.out)).toBe(1);
    expect(JSON.parse(a.lines[0]!)).toMatchObject({ pass: false });
    expect(JSON.parse(a.lines[0]!).error).toMatch(/config.json/);
    const b = capture();
    expect(await checkParityCommand(["x", "--device", "tpu"], b.out)).toBe(2);
    expect(await checkParityCommand([], b.out)).toBe(2);
  });
});

describe("weight-decay groups", () => {
  it("decay matrices and tables, not biases or LayerNorm", () => {
    const m = createModel(presetConfig("mosaic-bert-tiny"), "mlm");
    const g = m.decayGroups();
    expect(g.decay).toContain("bert.encoder.layer.0.mlp.gated_layers.weight");
    expect(g.decay).toContain("bert.embeddings.word_embeddings.weight");
    expect(g.noDecay).toContain("bert.encoder.layer.0.mlp.layernorm.weight");
    expect(g.noDecay).toContain("cls.predictions.decoder.bias");
    expect(g.noDecay.every((n) => n.endsWith(".bias") || /layernorm|LayerNorm/.test(n))).toBe(true);
    m.dispose();
  });
});
