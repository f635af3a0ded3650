import { Parameter, fromArray } from "@mbert/tensor";
import { describe, expect, it } from "vitest";
import {
  AdamW,
  DecoupledAdamW,
  SGD,
  buildOptimizer,
  clipScale,
  decayGroups,
  gradNorm,
  gradSumSquares,
} from "../src/optim.js";

function param(values: number[], grad: number[]): Parameter {
  const p = new Parameter(fromArray(values, [values.length], { dtype: "float64" }));
  p.grad = fromArray(grad, [grad.length], { dtype: "float64" });
  return p;
}

/** Composer's DecoupledAdamW on one scalar, written out by hand. */
function referenceDecoupled(
  p0: number,
  grads: number[],
  lrs: number[],
  o: { initialLr: number; b1: number; b2: number; eps: number; wd: number },
): number {
  let p = p0;
  let m = 0;
  let v = 0;
  grads.forEach((g, i) => {
    const step = i + 1;
    const lr = lrs[i]!;
    p *= 1 - (lr / o.initialLr) * o.wd;
    m = o.b1 * m + (1 - o.b1) * g;
    v = o.b2 * v + (1 - o.b2) * g * g;
    const denom = Math.sqrt(v) / Math.sqrt(1 - o.b2 ** step) + o.eps;
    p -= (lr / (1 - o.b1 ** step)) * (m / denom);
  });
  return p;
}

describe("optimizers", () => {
  it("DecoupledAdamW matches Composer's update, with decay following lr / initialLr", () => {
    const p = param([1.5, -2], [0.3, -0.1]);
    const opt = new DecoupledAdamW([["w", p]], { lr: 0.1, betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.01 });
    const lrs = [0.1, 0.05, 0.025];
    const grads = [
      [0.3, -0.1],
      [0.2, 0.4],
      [-0.5, 0.1],
    ];
    lrs.forEach((lr, i) => {
      opt.paramGroups[0]!.lr = lr;
      p.grad?.dispose();
      p.grad = fromArray(grads[i]!, [2], { dtype: "float64" });
      opt.step();
    });
    const o = { initialLr: 0.1, b1: 0.9, b2: 0.98, eps: 1e-6, wd: 0.01 };
    const got = Array.from(p.data());
    expect(got[0]).toBeCloseTo(
      referenceDecoupled(
        1.5,
        grads.map((g) => g[0]!),
        lrs,
        o,
      ),
      12,
    );
    expect(got[1]).toBeCloseTo(
      referenceDecoupled(
        -2,
        grads.map((g) => g[1]!),
        lrs,
        o,
      ),
      12,
    );
    // First step by hand: p = 1.5 * (1 - 0.01) - 0.1 * 1 * (0.03/0.1)/(sqrt(0.0018/0.02)+1e-6) ~ 1.385 - 0.1
    const state = opt.stateDict();
    expect(Object.keys(state.tensors)).toEqual(["w.exp_avg", "w.exp_avg_sq"]);
    expect((state.meta.steps as Record<string, number>).w).toBe(3);
    opt.dispose();
    p.dispose();
  });

  it("a recipe without betas gets each optimizer's own default", () => {
    const p = () => [["w", param([1], [0.5])] as [string, Parameter]];
    const d = buildOptimizer("decoupled_adamw", p(), { lr: 0.1 }) as DecoupledAdamW;
    const a = buildOptimizer("adamw", p(), { lr: 0.1 }) as AdamW;
    expect(d.betas).toEqual([0.9, 0.95]);
    expect(a.betas).toEqual([0.9, 0.999]);
    expect(
      (buildOptimizer("decoupled_adamw", p(), { lr: 0.1, betas: [0.8, 0.9] }) as DecoupledAdamW).betas,
    ).toEqual([0.8, 0.9]);
    for (const o of [d, a]) o.dispose();
  });

  it("first DecoupledAdamW step equals the closed form", () => {
    const p = param([1.5], [0.3]);
    const opt = new DecoupledAdamW([["w", p]], { lr: 0.1, betas: [0.9, 0.98], eps: 0, weightDecay: 0.01 });
    opt.step();
    // Bias-corrected m/sqrt(v) is sign(g) = 1 on step 1: p = 1.5 * 0.99 - 0.1.
    expect(p.item()).toBeCloseTo(1.5 * 0.99 - 0.1, 12);
    opt.dispose();
    p.dispose();
  });

  it("AdamW (torch) decays by lr * weightDecay", () => {
    const p = param([2], [0.5]);
    const opt = new AdamW([["w", p]], { lr: 0.1, eps: 0, weightDecay: 0.5 });
    opt.step();
    expect(p.item()).toBeCloseTo(2 * (1 - 0.05) - 0.1, 12);
    opt.dispose();
    p.dispose();
  });

  it("SGD with momentum follows torch", () => {
    const p = param([1], [0.5]);
    const opt = new SGD([["w", p]], { lr: 0.1, momentum: 0.9 });
    opt.step(); // buf = 0.5; p = 1 - 0.05
    p.grad?.dispose();
    p.grad = fromArray([0.5], [1], { dtype: "float64" });
    opt.step(); // buf = 0.45 + 0.5 = 0.95; p = 0.95 - 0.095
    expect(p.item()).toBeCloseTo(0.855, 12);
    opt.dispose();
    p.dispose();
  });

  it("global grad norm and clip scale", () => {
    const a = param([0, 0], [3, 0]);
    const b = param([0], [4]);
    expect(gradNorm([a, b])).toBeCloseTo(5, 12);
    const { scale } = clipScale([a, b], 1);
    expect(scale).toBeCloseTo(0.2, 6);
    a.dispose();
    b.dispose();
  });

  for (const dtype of ["float32", "float64"] as const) {
    it(`clipping on the device equals scaling by the host's coefficient (${dtype})`, () => {
      const make = () => {
        const ps: [string, Parameter][] = [0, 1, 2, 3].map((i) => {
          const n = [5, 1, 130, 7][i]!;
          const p = new Parameter(
            fromArray(
              Array.from({ length: n }, (_, j) => Math.sin(i * 7 + j)),
              [n],
              { dtype },
            ),
          );
          p.decay = i % 2 === 0;
          if (i !== 1)
            p.grad = fromArray(
              Array.from({ length: n }, (_, j) => Math.cos(i + 3 * j)),
              [n],
              { dtype },
            );
          return [`p${i}`, p];
        });
        return ps;
      };
      for (const Opt of [DecoupledAdamW, AdamW] as const) {
        for (const maxNorm of [0.5, 1e6]) {
          const a = make();
          const b = make();
          const params = a.map(([, p]) => p);
          const sq = gradSumSquares(params)!;
          expect(sq.item()).toBeCloseTo(gradNorm(params) ** 2, dtype === "float64" ? 10 : 3);
          const { scale } = clipScale(params, maxNorm);
          const oa = new Opt(decayGroups(a, 0.1), { lr: 0.01 });
          const ob = new Opt(decayGroups(b, 0.1), { lr: 0.01 });
          oa.step({ clip: { sumSquares: sq, maxNorm } });
          ob.step({ gradScale: scale });
          for (const [i, [, p]] of a.entries())
            expect(Array.from(p.data())).toEqual(Array.from(b[i]![1].data()));
          const untouched = dtype === "float64" ? Math.sin(7) : Math.fround(Math.sin(7));
          expect(a[1]![1].data()[0]).toBe(untouched); // no gradient: no update
          if (maxNorm === 0.5) expect(scale).toBeLessThan(1);
          expect(() => oa.step({ clip: { sumSquares: sq, maxNorm: 0 } })).toThrow(/maxNorm must be > 0/);
          sq.dispose();
          for (const o of [oa, ob]) o.dispose();
          for (const [, p] of [...a, ...b]) p.dispose();
        }
      }
    });
  }

  it("SGD takes a device clip too", () => {
    const a = param([1, 2], [3, 4]);
    const b = param([1, 2], [3, 4]);
    const sq = gradSumSquares([a])!;
    new SGD([["w", a]], { lr: 0.1 }).step({ clip: { sumSquares: sq, maxNorm: 1 } });
    new SGD([["w", b]], { lr: 0.1 }).step({ gradScale: 1 / (5 + 1e-6) });
    expect(Array.from(a.data())).toEqual(Array.from(b.data()));
    for (const t of [a, b, sq]) t.dispose();
  });

  it("gradSumSquares: nothing without gradients", () => {
    const p = new Parameter(fromArray([1], [1], { dtype: "float32" }));
    expect(gradSumSquares([p])).toBeUndefined();
    p.dispose();
  });
});
