import { describe, expect, it } from "vitest";
import { F, Generator, type Tensor, arange, fromArray, full, ones, tensor, tidy, zeros } from "@mbert/tensor";
import { gradcheck, rand64, relErr } from "./gradcheck.js";

const SIZES = [1, 7, 129];

describe("elementwise forward", () => {
  it("computes hand-checked values", () => {
    tidy(() => {
      const a = tensor([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      const b = tensor([10, 20, 30]);
      expect(a.add(b).toArray()).toEqual([
        [11, 22, 33],
        [14, 25, 36],
      ]);
      expect(a.sub(1).toArray()).toEqual([
        [0, 1, 2],
        [3, 4, 5],
      ]);
      expect(a.mul(b).toArray()).toEqual([
        [10, 40, 90],
        [40, 100, 180],
      ]);
      expect(b.div(a).toArray()).toEqual([
        [10, 10, 10],
        [2.5, 4, 5],
      ]);
      expect(F.sub(10, a).toArray()).toEqual([
        [9, 8, 7],
        [6, 5, 4],
      ]);
      expect(a.maximum(3.5).toArray()).toEqual([
        [3.5, 3.5, 3.5],
        [4, 5, 6],
      ]);
      expect(a.gt(3).toArray()).toEqual([
        [0, 0, 0],
        [1, 1, 1],
      ]);
      const g = tensor([-1, 0, 1]).gelu().toArray() as number[];
      expect(g[0]).toBeCloseTo(-0.15865525, 6);
      expect(g[1]).toBe(0);
      expect(g[2]).toBeCloseTo(0.84134475, 6);
      expect(tensor([0, 1]).exp().toArray()).toEqual([1, Math.fround(Math.E)]);
    });
  });

  it("broadcasts (3,1) with (1,4) and rank-0 scalars", () => {
    tidy(() => {
      const a = tensor([[1], [2], [3]]);
      const b = tensor([[10, 20, 30, 40]]);
      expect(a.add(b).shape).toEqual([3, 4]);
      expect(a.add(b).toArray()).toEqual([
        [11, 21, 31, 41],
        [12, 22, 32, 42],
        [13, 23, 33, 43],
      ]);
      const s = full([], 2);
      expect(s.mul(a).toArray()).toEqual([[2], [4], [6]]);
    });
  });

  it("handles zero-size tensors", () => {
    tidy(() => {
      const z = zeros([0, 3]);
      expect(z.add(tensor([1, 2, 3])).shape).toEqual([0, 3]);
      expect(z.sum(0).toArray()).toEqual([0, 0, 0]);
      expect(z.exp().size).toBe(0);
    });
  });
});

describe("gradients (float64 finite differences)", () => {
  const unary: [string, (x: Tensor) => Tensor, number, number][] = [
    ["neg", (x) => x.neg(), 1, 0],
    ["exp", (x) => x.exp(), 1, 0],
    ["log", (x) => x.log(), 0.3, 2],
    ["tanh", (x) => x.tanh(), 1, 0],
    ["gelu", (x) => x.gelu(), 1, 0],
    ["sqrt", (x) => x.sqrt(), 0.3, 2],
    ["rsqrt", (x) => x.rsqrt(), 0.3, 2],
    ["sigmoid", (x) => x.sigmoid(), 1, 0],
    ["square", (x) => x.square(), 1, 0],
    ["pow 2.5", (x) => x.pow(2.5), 0.3, 2],
    ["affine", (x) => F.scale(x, 3, 1), 1, 0],
  ];
  for (const [name, f, scale, shift] of unary) {
    for (const n of SIZES) {
      it(`${name} (${n})`, () => {
        tidy(() => gradcheck(f, [rand64([n], n, scale, shift)]));
      });
    }
  }

  const binary: [string, (a: Tensor, b: Tensor) => Tensor][] = [
    ["add", (a, b) => a.add(b)],
    ["sub", (a, b) => a.sub(b)],
    ["mul", (a, b) => a.mul(b)],
    ["div", (a, b) => a.div(b)],
    ["maximum", (a, b) => a.maximum(b)],
    ["minimum", (a, b) => a.minimum(b)],
    ["pow", (a, b) => a.pow(b)],
  ];
  for (const [name, f] of binary) {
    it(`${name} with broadcasting (7,1,5) x (3,1)`, () => {
      tidy(() => gradcheck(f, [rand64([7, 1, 5], 1, 0.3, 2), rand64([3, 1], 2, 0.3, 2)]));
    });
    it(`${name} same shape (129)`, () => {
      tidy(() => gradcheck(f, [rand64([129], 3, 0.3, 2), rand64([129], 4, 0.3, 2)]));
    });
  }

  it("sum, mean, max over axes", () => {
    tidy(() => {
      gradcheck((x) => x.sum(1), [rand64([3, 7, 5], 5)]);
      gradcheck((x) => x.sum([0, 2], true), [rand64([3, 7, 5], 6)]);
      gradcheck((x) => x.mean(-1), [rand64([7, 129], 7)]);
      gradcheck((x) => x.max(1), [rand64([5, 7], 8)]);
      gradcheck((x) => x.sum(), [rand64([1], 9)]);
    });
  });

  it("max splits the gradient among ties", () => {
    tidy(() => {
      const x = tensor([1, 3, 3, 2], { dtype: "float64", requiresGrad: true });
      x.max().backward();
      expect(x.grad!.toArray()).toEqual([0, 0.5, 0.5, 0]);
    });
  });

  it("matmul (2-D, batched, broadcast batch, vectors)", () => {
    tidy(() => {
      gradcheck((a, b) => a.matmul(b), [rand64([7, 5], 10), rand64([5, 3], 11)]);
      gradcheck((a, b) => a.matmul(b), [rand64([2, 7, 5], 12), rand64([2, 5, 3], 13)]);
      gradcheck((a, b) => a.matmul(b), [rand64([2, 7, 5], 14), rand64([5, 3], 15)]);
      gradcheck((a, b) => a.matmul(b), [rand64([7, 5], 16), rand64([3, 5, 4], 17)]);
      gradcheck((a, b) => a.matmul(b), [rand64([5], 18), rand64([5, 4], 19)]);
      gradcheck((a, b) => a.matmul(b), [rand64([1, 1], 20), rand64([1, 129], 21)]);
    });
  });

  it("linear with and without bias", () => {
    tidy(() => {
      gradcheck((x, w, b) => F.linear(x, w, b), [rand64([2, 3, 7], 22), rand64([5, 7], 23), rand64([5], 24)]);
      gradcheck((x, w) => F.linear(x, w), [rand64([1, 7], 25), rand64([129, 7], 26)]);
    });
  });

  it("layout ops", () => {
    tidy(() => {
      gradcheck((x) => x.reshape([5, -1]), [rand64([3, 5, 2], 27)]);
      gradcheck((x) => x.transpose(0, 2), [rand64([3, 5, 2], 28)]);
      gradcheck((x) => x.permute([1, 2, 0]), [rand64([3, 5, 2], 29)]);
      gradcheck((x) => x.slice(1, 1, 4), [rand64([3, 5, 2], 30)]);
      gradcheck((x) => x.slice(0, -2), [rand64([7], 31)]);
      gradcheck((a, b) => F.concat([a, b], 1), [rand64([3, 2, 2], 32), rand64([3, 5, 2], 33)]);
      gradcheck((a, b) => F.stack([a, b], 0), [rand64([3, 2], 34), rand64([3, 2], 35)]);
      gradcheck((x) => x.expand([4, 3, 5]), [rand64([3, 1], 36)]);
    });
  });

  it("indexSelect, embedding and scatterRows", () => {
    tidy(() => {
      const idx = tensor([2, 0, 2, 6, 1], { dtype: "int32" });
      gradcheck((x) => x.indexSelect(idx), [rand64([7, 3], 37)]);
      gradcheck(
        (w) =>
          F.embedding(
            tensor(
              [
                [1, 1],
                [0, 4],
              ],
              { dtype: "int32" },
            ),
            w,
          ),
        [rand64([5, 3], 38)],
      );
      gradcheck((x) => F.scatterRows(x, tensor([3, 0], { dtype: "int32" }), 5), [rand64([2, 3], 39)]);
    });
  });

  it("softmax and log-softmax", () => {
    tidy(() => {
      for (const n of SIZES) {
        gradcheck((x) => x.softmax(), [rand64([3, n], 40 + n)]);
        gradcheck((x) => x.logSoftmax(), [rand64([3, n], 50 + n)]);
      }
    });
  });

  it("layerNorm with and without residual", () => {
    tidy(() => {
      for (const n of SIZES) {
        gradcheck(
          (x, w, b) => F.layerNorm(x, w, b, 1e-5),
          [rand64([3, n], 60 + n), rand64([n], 61 + n, 0.5, 1), rand64([n], 62 + n)],
          { tol: 1e-5 },
        );
      }
      gradcheck(
        (x, w, b, r) => F.layerNorm(x, w, b, 1e-5, r),
        [rand64([4, 7], 70), rand64([7], 71, 0.5, 1), rand64([7], 72), rand64([4, 7], 73)],
        { tol: 1e-5 },
      );
    });
  });

  it("cross-entropy with ignore index, mean over kept rows", () => {
    tidy(() => {
      const labels = tensor([3, -100, 0, 6, -100, 2, 1], { dtype: "int32" });
      gradcheck((x) => F.crossEntropy(x, labels), [rand64([7, 7], 80)]);
      gradcheck((x) => F.crossEntropy(x, labels, { reduction: "sum" }), [rand64([7, 7], 81)]);
      gradcheck((x) => F.crossEntropy(x, labels, { reduction: "none" }), [rand64([7, 7], 82)]);
      const logits = tensor(
        [
          [0, 0],
          [1, 3],
        ],
        { dtype: "float64" },
      );
      const loss = F.crossEntropy(logits, tensor([0, 1], { dtype: "int32" })).item();
      expect(loss).toBeCloseTo((Math.log(2) + Math.log(1 + Math.exp(-2))) / 2, 12);
    });
  });

  it("mse, geglu, dropout, cast", () => {
    tidy(() => {
      gradcheck((a, b) => F.mseLoss(a, b), [rand64([7, 3], 90), rand64([7, 3], 91)]);
      for (const n of SIZES) gradcheck((x) => F.geglu(x), [rand64([3, 2 * n], 92 + n)]);
      // A fresh generator with the same seed draws the same mask each call.
      gradcheck((t) => F.dropout(t, 0.3, true, new Generator(7)), [rand64([129], 95)]);
      gradcheck((t) => t.cast("float32").cast("float64"), [rand64([7], 97)], { eps: 1e-2, tol: 1e-4 });
    });
  });

  it("dropout drops about p of the elements and scales the rest", () => {
    tidy(() => {
      const x = ones([20000]);
      const y = F.dropout(x, 0.3, true, new Generator(1)).data() as Float32Array;
      const zeroCount = y.filter((v) => v === 0).length;
      expect(Math.abs(zeroCount / 20000 - 0.3)).toBeLessThan(0.02);
      for (const v of y) expect(v === 0 || Math.abs(v - 1 / 0.7) < 1e-6).toBe(true);
      expect(F.dropout(x, 0.3, false)).toBe(x);
    });
  });

  it("geglu equals gelu(x1) * x2", () => {
    tidy(() => {
      const x = rand64([5, 14], 96);
      const ref = x.slice(1, 0, 7).gelu().mul(x.slice(1, 7));
      expect(relErr(F.geglu(x).data() as Float64Array, ref.data() as Float64Array)).toBeLessThan(1e-14);
    });
  });

  it("geglu with fused dropout equals dropout(geglu): same bits, same gradient, same draw", () => {
    tidy(() => {
      for (const dtype of ["float32", "float64"] as const) {
        const x = rand64([6, 2 * 9], 97).castTo(dtype);
        x.requiresGrad = true;
        const x2 = rand64([6, 2 * 9], 97).castTo(dtype);
        x2.requiresGrad = true;
        const g1 = new Generator(5, 11);
        const g2 = new Generator(5, 11);
        const fused = F.geglu(x, { dropout: 0.25, generator: g1 });
        const split = F.dropout(F.geglu(x2), 0.25, true, g2);
        expect(Array.from(fused.data())).toEqual(Array.from(split.data()));
        expect(Array.from(fused.data()).some((v) => v === 0)).toBe(true);
        expect(g1.offset).toBe(g2.offset);
        const w = rand64([6, 9], 98).castTo(dtype);
        fused.mul(w).sum().backward();
        split.mul(w).sum().backward();
        expect(Array.from(x.grad!.data())).toEqual(Array.from(x2.grad!.data()));
      }
      const x = rand64([2, 4], 99);
      const g = new Generator(1, 0);
      expect(F.geglu(x, { dropout: 0.5, training: false, generator: g }).data()).toEqual(F.geglu(x).data());
      expect(g.offset).toBe(0);
      expect(() => F.geglu(x, { dropout: 1 })).toThrow(RangeError);
    });
  });
});

describe("layerNorm with fused dropout", () => {
  it("equals layerNorm(dropout(x) + residual): same bits, same gradients, same draw", () => {
    tidy(() => {
      for (const dtype of ["float32", "float64"] as const) {
        const make = () => {
          const x = rand64([7, 12], 201).castTo(dtype);
          const r = rand64([7, 12], 202).castTo(dtype);
          const w = rand64([12], 203).castTo(dtype);
          const b = rand64([12], 204).castTo(dtype);
          for (const t of [x, r, w, b]) t.requiresGrad = true;
          return { x, r, w, b };
        };
        const a = make();
        const c = make();
        const g1 = new Generator(9, 3);
        const g2 = new Generator(9, 3);
        const fused = F.layerNorm(a.x, a.w, a.b, 1e-5, a.r, { dropout: 0.3, generator: g1 });
        const split = F.layerNorm(F.dropout(c.x, 0.3, true, g2), c.w, c.b, 1e-5, c.r);
        expect(Array.from(fused.data())).toEqual(Array.from(split.data()));
        expect(g1.offset).toBe(g2.offset);
        const up = rand64([7, 12], 205).castTo(dtype);
        fused.mul(up).sum().backward();
        split.mul(up).sum().backward();
        for (const k of ["x", "r", "w", "b"] as const) {
          expect(Array.from(a[k].grad!.data())).toEqual(Array.from(c[k].grad!.data()));
        }
        expect(Array.from(a.x.grad!.data()).some((v) => v === 0)).toBe(true); // dropped elements
      }
      const x = rand64([2, 4], 206);
      const r = rand64([2, 4], 207);
      const w = rand64([4], 208);
      const b = rand64([4], 209);
      const g = new Generator(1, 0);
      const off = F.layerNorm(x, w, b, 1e-5, r, { dropout: 0.5, training: false, generator: g });
      expect(off.data()).toEqual(F.layerNorm(x, w, b, 1e-5, r).data());
      expect(g.offset).toBe(0);
      expect(() => F.layerNorm(x, w, b, 1e-5, r, { dropout: 1 })).toThrow(RangeError);
      expect(() => F.layerNorm(x, w, b, 1e-5, null, { dropout: 0.1 })).toThrow(/fused only with a residual/);
    });
  });
});

describe("creation", () => {
  it("arange, ones, fromArray", () => {
    tidy(() => {
      expect(arange(5).toArray()).toEqual([0, 1, 2, 3, 4]);
      expect(arange(1, 2, 0.25).toArray()).toEqual([1, 1.25, 1.5, 1.75]);
      expect(ones([2, 2], { dtype: "int32" }).toArray()).toEqual([
        [1, 1],
        [1, 1],
      ]);
      expect(fromArray([1, 2, 3, 4], [2, 2]).toArray()).toEqual([
        [1, 2],
        [3, 4],
      ]);
    });
  });
});

describe("zero-size edge cases (forward and backward)", () => {
  it("every op accepts empty tensors and gives empty (or zero) gradients", () => {
    tidy(() => {
      const e = (shape: number[]) => zeros(shape, { dtype: "float64", requiresGrad: true });
      const cases: [string, () => Tensor, Tensor[]][] = [];
      const a = e([0, 5]);
      const w = e([3, 5]);
      const b = e([3]);
      cases.push(["linear", () => F.linear(a, w, b), [a, w, b]]);
      const k0a = e([4, 0]);
      const k0b = e([0, 6]);
      cases.push(["matmul K=0", () => k0a.matmul(k0b), [k0a, k0b]]);
      const s = e([0, 7]);
      cases.push(["softmax", () => s.softmax(), [s]]);
      cases.push(["logSoftmax", () => s.logSoftmax(), [s]]);
      cases.push(["sum axis 1", () => s.sum(1), [s]]);
      cases.push(["transpose", () => s.transpose(0, 1), [s]]);
      cases.push(["slice", () => s.slice(1, 2, 2), [s]]);
      cases.push(["concat", () => F.concat([s, e([2, 7])], 0), [s]]);
      const lw = e([7]);
      const lb = e([7]);
      cases.push(["layerNorm", () => F.layerNorm(s, lw, lb), [s, lw, lb]]);
      cases.push(["geglu", () => F.geglu(e([0, 8])), []]);
      const table = e([4, 3]);
      cases.push(["indexSelect", () => table.indexSelect(zeros([0], { dtype: "int32" })), [table]]);
      cases.push([
        "crossEntropy sum",
        () => F.crossEntropy(e([0, 5]), zeros([0], { dtype: "int32" }), { reduction: "sum" }),
        [],
      ]);
      const qkv = e([0, 12]);
      cases.push([
        "varlenAttention T=0",
        () =>
          F.varlenAttention(qkv, { cuSeqlens: tensor([0], { dtype: "int32" }), maxSeqlen: 0, numHeads: 2 }),
        [qkv],
      ]);
      for (const [name, f, ins] of cases) {
        const out = f();
        expect(
          out.dataNumbers().every((v) => v === 0),
          name,
        ).toBe(true);
        if (out.size > 0) out.sum().backward();
        else out.backward(zeros(out.shape, { dtype: out.dtype }));
        for (const t of ins) {
          if (t.grad)
            expect(
              t.grad.dataNumbers().every((v) => v === 0),
              `${name} grad`,
            ).toBe(true);
          t.zeroGrad();
        }
      }
    });
  });
});
