// Central finite differences in float64 against autograd.
import { expect } from "vitest";
import { Generator, type Tensor, fromArray, noGrad, randn, tidy } from "@mbert/tensor";

export function rand64(shape: number[], seed: number, scale = 1, shift = 0): Tensor {
  return tidy(() => {
    const t = randn(shape, { dtype: "float64", generator: new Generator(seed) });
    const data = t.data() as Float64Array;
    for (let i = 0; i < data.length; i++) data[i] = data[i]! * scale + shift;
    return fromArray(data, shape, { dtype: "float64" });
  });
}

export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  if (den === 0) return Math.sqrt(num);
  return Math.sqrt(num / den);
}

/**
 * Checks d(sum(f(inputs) * w))/d(input) for every input that requires grad,
 * where w is a fixed random weighting of the output.
 */
export function gradcheck(
  f: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: { eps?: number; tol?: number; seed?: number } = {},
): void {
  const eps = opts.eps ?? 1e-6;
  const tol = opts.tol ?? 1e-6;
  for (const x of inputs) if (x.dtype === "float64") x.requiresGrad = true;
  const out0 = noGrad(() => f(...inputs));
  const w = rand64([...out0.shape], opts.seed ?? 99);
  const wData = w.data() as Float64Array;
  out0.dispose();
  const objective = (): number =>
    noGrad(() =>
      tidy(() => {
        const o = f(...inputs);
        const d = o.cast("float64").data() as Float64Array;
        let s = 0;
        for (let i = 0; i < d.length; i++) s += d[i]! * wData[i]!;
        return s;
      }),
    );
  // Analytic.
  for (const x of inputs) x.zeroGrad();
  tidy(() => {
    const o = f(...inputs);
    const loss = o.cast("float64").mul(w).sum();
    loss.backward();
  });
  inputs.forEach((x, xi) => {
    if (x.dtype !== "float64") return;
    const analytic = x.grad ? (x.grad.data() as Float64Array) : new Float64Array(x.size);
    const base = x.data() as Float64Array;
    const numeric = new Float64Array(x.size);
    for (let i = 0; i < x.size; i++) {
      const orig = base[i]!;
      base[i] = orig + eps;
      upload(x, base);
      const fp = objective();
      base[i] = orig - eps;
      upload(x, base);
      const fm = objective();
      base[i] = orig;
      upload(x, base);
      numeric[i] = (fp - fm) / (2 * eps);
    }
    const err = relErr(analytic, numeric);
    if (!(err <= tol)) {
      throw new Error(
        `gradcheck: input ${xi} rel err ${err} > ${tol}\nanalytic ${[...analytic].slice(0, 8)}\nnumeric  ${[...numeric].slice(0, 8)}`,
      );
    }
    expect(err).toBeLessThanOrEqual(tol);
  });
  w.dispose();
}

import { backend } from "@mbert/tensor";
function upload(x: Tensor, data: Float64Array): void {
  backend(x.device).upload(x.ptr, 0, data);
}
