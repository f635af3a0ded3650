import { describe, expect, it } from "vitest";
import { F, type Tensor, fromArray, tensor, tidy } from "@mbert/tensor";
import { rand64, relErr } from "./gradcheck.js";

/** Reference: per sequence, scores = q kᵀ * scale + bias, softmax, @ v, from primitive ops. */
function reference(
  qkv: Tensor,
  lens: number[],
  NH: number,
  slopes: number[] | null,
  keyBias: number[][] | null,
): Tensor {
  const C = qkv.shape[1]! / 3;
  const HS = C / NH;
  const outs: Tensor[] = [];
  let start = 0;
  lens.forEach((S, b) => {
    const rows = qkv.slice(0, start, start + S);
    const heads = (i: number) =>
      rows
        .slice(1, i * C, (i + 1) * C)
        .reshape([S, NH, HS])
        .permute([1, 0, 2]);
    const q = heads(0);
    const k = heads(1);
    const v = heads(2);
    const bias = new Float64Array(NH * S * S);
    for (let h = 0; h < NH; h++)
      for (let i = 0; i < S; i++)
        for (let j = 0; j < S; j++)
          bias[(h * S + i) * S + j] =
            (slopes ? -slopes[h]! * Math.abs(i - j) : 0) + (keyBias ? keyBias[b]![j]! : 0);
    const scores = q
      .matmul(k.transpose(1, 2))
      .mul(1 / Math.sqrt(HS))
      .add(fromArray(bias, [NH, S, S]));
    const o = scores.softmax().matmul(v).permute([1, 0, 2]).reshape([S, C]);
    outs.push(o);
    start += S;
  });
  return F.concat(outs, 0);
}

function cu(lens: number[]): Tensor {
  const c = [0];
  for (const l of lens) c.push(c[c.length - 1]! + l);
  return tensor(c, { dtype: "int32" });
}

function compare(lens: number[], NH: number, HS: number, alibi: boolean): void {
  tidy(() => {
    const T = lens.reduce((a, b) => a + b, 0);
    const C = NH * HS;
    const qkv = rand64([T, 3 * C], T + NH);
    qkv.requiresGrad = true;
    const slopes = alibi ? F.alibiSlopes(NH) : null;
    const slopesT = slopes ? fromArray(new Float32Array(slopes), [NH]) : null;
    const w = rand64([T, C], 7);
    const out = F.varlenAttention(qkv, {
      cuSeqlens: cu(lens),
      maxSeqlen: Math.max(...lens),
      numHeads: NH,
      alibiSlopes: slopesT,
    });
    // Slopes are float32 in the kernel: use the same rounded values in the reference.
    const ref = reference(qkv, lens, NH, slopes ? [...new Float32Array(slopes)] : null, null);
    expect(relErr(out.data() as Float64Array, ref.data() as Float64Array)).toBeLessThan(1e-10);
    out.mul(w).sum().backward();
    const g1 = qkv.grad!.data() as Float64Array;
    qkv.zeroGrad();
    ref.mul(w).sum().backward();
    const g2 = qkv.grad!.data() as Float64Array;
    expect(relErr(g1, g2)).toBeLessThan(1e-10);
  });
}

describe("varlen attention equals the padded form with an explicit bias", () => {
  it("ALiBi, lengths 1..300 packed together, 3 heads (not a power of two)", () => {
    compare([1, 2, 7, 64, 300], 3, 4, true);
  });
  it("ALiBi, 6 heads of size 8", () => {
    compare([5, 17, 1], 6, 8, true);
  });
  it("no ALiBi, one head", () => {
    compare([9, 3], 1, 16, false);
  });
  it("single-token sequences attend only to themselves", () => {
    tidy(() => {
      const qkv = rand64([3, 6], 3);
      const out = F.varlenAttention(qkv, { cuSeqlens: cu([1, 1, 1]), maxSeqlen: 1, numHeads: 1 });
      expect(relErr(out.data() as Float64Array, qkv.slice(1, 4, 6).data() as Float64Array)).toBeLessThan(
        1e-15,
      );
    });
  });
});

describe("padded attention with a key mask", () => {
  it("matches the reference on real positions, gradients included", () => {
    tidy(() => {
      const B = 2;
      const S = 5;
      const NH = 2;
      const HS = 3;
      const C = NH * HS;
      const lens = [5, 3];
      const mask = lens.map((l) => Array.from({ length: S }, (_, j) => (j < l ? 0 : -10000)));
      const q = rand64([B, S, C], 1);
      const k = rand64([B, S, C], 2);
      const v = rand64([B, S, C], 3);
      for (const t of [q, k, v]) t.requiresGrad = true;
      const keyMask = fromArray(new Float32Array(mask.flat()), [B, S]);
      const out = F.paddedAttention(q, k, v, { keyMask, numHeads: NH });
      const qkv = F.concat([q, k, v], 2).reshape([B * S, 3 * C]);
      const ref = reference(qkv, [S, S], NH, null, mask);
      expect(relErr(out.data() as Float64Array, ref.data() as Float64Array)).toBeLessThan(1e-10);
      const w = rand64([B, S, C], 4);
      out.mul(w).sum().backward();
      const grads = [q, k, v].map((t) => t.grad!.data() as Float64Array);
      for (const t of [q, k, v]) t.zeroGrad();
      ref.reshape([B, S, C]).mul(w).sum().backward();
      for (const [i, t] of [q, k, v].entries()) {
        expect(relErr(grads[i]!, t.grad!.data() as Float64Array)).toBeLessThan(1e-9);
      }
    });
  });
});

describe("ALiBi slopes", () => {
  it("follow the reference rule for powers of two and others", () => {
    expect(F.alibiSlopes(4)).toEqual([2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8]);
    const s12 = F.alibiSlopes(12);
    const p8 = Array.from({ length: 8 }, (_, i) => 2 ** -(i + 1));
    const p16 = Array.from({ length: 16 }, (_, i) => 2 ** (-0.5 * (i + 1)));
    expect(s12).toEqual([...p8, p16[0], p16[2], p16[4], p16[6]]);
  });
});
