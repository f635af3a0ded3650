import { describe, expect, it } from "vitest";
import {
  Accuracy,
  BinaryF1,
  LanguageCrossEntropy,
  MaskedAccuracy,
  MatthewsCorrelation,
  PearsonCorrelation,
  SpearmanCorrelation,
} from "../src/index.js";

describe("metrics", () => {
  it("accuracy skips ignored targets", () => {
    const m = new MaskedAccuracy();
    m.update([1, 2, 3, 4], [1, -100, 0, 4]);
    expect(m.compute()).toBeCloseTo(2 / 3);
    m.reset();
    expect(m.compute()).toBe(0);
    expect(() => new Accuracy().update([1], [1, 2])).toThrow(/1 predictions but 2 targets/);
  });

  it("F1 and Matthews match hand-computed values", () => {
    const preds = [1, 1, 0, 0, 1, 0];
    const targets = [1, 0, 0, 1, 1, 0];
    // tp=2 fp=1 fn=1 tn=2
    const f1 = new BinaryF1();
    f1.update(preds, targets);
    expect(f1.compute()).toBeCloseTo(4 / 6);
    const mcc = new MatthewsCorrelation();
    mcc.update(preds, targets);
    expect(mcc.compute()).toBeCloseTo((2 * 2 - 1 * 1) / Math.sqrt(3 * 3 * 3 * 3));
    const constant = new MatthewsCorrelation();
    constant.update([1, 1, 1], [1, 0, 1]);
    expect(constant.compute()).toBe(0);
  });

  it("Pearson and Spearman (ties share ranks)", () => {
    const p = new PearsonCorrelation();
    p.update([1, 2, 3, 4], [2, 4, 6, 8.5]);
    // sxy = 10.75, sxx = 5, syy = 23.1875
    expect(p.compute()).toBeCloseTo(10.75 / Math.sqrt(5 * 23.1875), 12);
    const s = new SpearmanCorrelation();
    s.update([1, 2, 2, 3], [10, 20, 30, 40]);
    // ranks [1, 2.5, 2.5, 4] vs [1, 2, 3, 4]
    expect(s.compute()).toBeCloseTo(0.948683, 5);
  });

  it("cross-entropy is weighted by tokens", () => {
    const m = new LanguageCrossEntropy();
    m.update([10, 2], [4, 1]);
    expect(m.compute()).toBe(12 / 5);
  });
});
