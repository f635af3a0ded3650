import { describe, expect, it } from "vitest";
import {
  ConstantWithWarmupScheduler,
  CosineAnnealingWithWarmupScheduler,
  LinearWithWarmupScheduler,
  Time,
  Timestamp,
  buildScheduler,
} from "../src/index.js";

const at = (batch: number, samplesPerBatch = 1) =>
  new Timestamp({ batch, sample: batch * samplesPerBatch, token: batch * samplesPerBatch * 10 });
const ctx = { maxDuration: Time.parse("100ba") };

describe("schedulers (Composer semantics)", () => {
  it("linear_decay_with_warmup: 0 at step 0, 1 at the end of warmup, alpha_f at the end", () => {
    const s = new LinearWithWarmupScheduler({ tWarmup: "0.06dur", alphaF: 0.02 });
    expect(s.factor(at(0), ctx)).toBe(0);
    expect(s.factor(at(3), ctx)).toBeCloseTo(0.5, 12); // 3 / 6
    expect(s.factor(at(6), ctx)).toBe(1);
    // halfway through decay: (53 - 6) / 94 = 0.5 -> 1 + 0.5 * (0.02 - 1) = 0.51
    expect(s.factor(at(53), ctx)).toBeCloseTo(0.51, 12);
    expect(s.factor(at(100), ctx)).toBeCloseTo(0.02, 12);
    expect(s.factor(at(150), ctx)).toBeCloseTo(0.02, 12); // clamped
  });

  it("cosine_with_warmup decays along half a cosine", () => {
    const s = new CosineAnnealingWithWarmupScheduler({ tWarmup: "10ba", alphaF: 0.1 });
    expect(s.factor(at(5), ctx)).toBe(0.5);
    expect(s.factor(at(10), ctx)).toBeCloseTo(1, 12);
    // frac = 45/90 = 0.5 -> 0.1 + 0.9 * (1 + cos(pi/2)) / 2 = 0.55
    expect(s.factor(at(55), ctx)).toBeCloseTo(0.55, 12);
    expect(s.factor(at(100), ctx)).toBeCloseTo(0.1, 12);
  });

  it("constant_with_warmup holds alpha after warmup", () => {
    const s = new ConstantWithWarmupScheduler({ tWarmup: "4ba", alpha: 0.5 });
    expect(s.factor(at(1), ctx)).toBe(0.25);
    expect(s.factor(at(4), ctx)).toBe(0.5);
    expect(s.factor(at(99), ctx)).toBe(0.5);
  });

  it("works in samples and in epochs", () => {
    const s = new LinearWithWarmupScheduler({ tWarmup: "0.25dur", alphaF: 0 });
    const sp = { maxDuration: Time.parse("800sp") };
    expect(s.factor(at(25, 4), sp)).toBe(0.5); // 100 of 200 warmup samples
    const ep = { maxDuration: Time.parse("2ep"), batchesPerEpoch: 20 };
    expect(s.factor(at(5), ep)).toBe(0.5); // warmup = 10 batches
    expect(s.factor(at(25), ep)).toBeCloseTo(0.5, 12); // (25 - 10) / 30
  });

  it("builds from recipe names and rejects unknown ones", () => {
    expect(
      buildScheduler("linear_decay_with_warmup", { t_warmup: "0.06dur", alpha_f: 0.02 }).toJSON(),
    ).toMatchObject({
      name: "linear_decay_with_warmup",
      alpha_f: 0.02,
    });
    expect(() => buildScheduler("step", {})).toThrow(/unknown scheduler 'step'/);
  });
});
