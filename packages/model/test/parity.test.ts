import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { checkParity } from "../src/index.js";
import { fixtureCases, fixturesDir } from "./fixtures.js";

const dir = fixturesDir();
const cases = fixtureCases();

describe.skipIf(dir === undefined)("parity with the PyTorch references (cpu, float32)", () => {
  for (const name of cases) {
    it(name, () => {
      const r = checkParity(path.join(dir!, name), { device: "cpu" });
      console.log(JSON.stringify(r));
      expect(r.logits_rel_err).toBeLessThanOrEqual(1e-5);
      expect(r.hidden_rel_err).toBeLessThanOrEqual(1e-5);
      expect(r.loss_abs_err).toBeLessThanOrEqual(1e-5);
      expect(r.grad_max_rel_err).toBeLessThanOrEqual(1e-4);
      expect(r.adamw_max_abs_err).toBeLessThanOrEqual(1e-4);
      expect(r.pass).toBe(true);
    });
    if (name.startsWith("hf-bert")) {
      it(`${name} (unpadded varlen path)`, () => {
        const r = checkParity(path.join(dir!, name), { device: "cpu", layout: "unpadded" });
        console.log(JSON.stringify(r));
        expect(r.pass).toBe(true);
      });
    }
  }
});
