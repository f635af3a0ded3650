import { describe, expect, it } from "vitest";
import {
  DTypeError,
  DisposedTensorError,
  F,
  IndexError,
  ShapeError,
  TensorError,
  nn,
  randn,
  tensor,
  tidy,
  zeros,
} from "@mbert/tensor";

describe("bad input throws typed errors naming the op", () => {
  it("shape mismatches", () => {
    tidy(() => {
      expect(() => randn([2, 3]).add(randn([4]))).toThrow(ShapeError);
      expect(() => randn([2, 3]).matmul(randn([4, 5]))).toThrow(/matmul: .*inner dimensions 3 and 4 differ/);
      expect(() => F.linear(randn([2, 767]), randn([10, 768]))).toThrow(
        /linear: input has 767 features .* weight expects 768/,
      );
      expect(() => randn([6]).reshape([4, -1])).toThrow(/reshape/);
      expect(() => randn([2, 3]).slice(1, 2, 5)).toThrow(/slice/);
      expect(() => F.layerNorm(randn([2, 3]), randn([4]), randn([4]))).toThrow(/layerNorm/);
    });
  });

  it("dtype mismatches", () => {
    tidy(() => {
      expect(() => randn([2]).add(randn([2], { dtype: "float64" }))).toThrow(DTypeError);
      expect(() => randn([3, 2]).indexSelect(tensor([0, 1]))).toThrow(/indices must be int32/);
      expect(() => F.crossEntropy(randn([2, 3]), tensor([0, 1]))).toThrow(/labels must be int32/);
    });
  });

  it("out-of-range indices and labels", () => {
    tidy(() => {
      const w = randn([5, 2]);
      expect(() => F.embedding(tensor([0, 5], { dtype: "int32" }), w)).toThrow(IndexError);
      expect(() => F.embedding(tensor([0, 5], { dtype: "int32" }), w)).toThrow(TensorError);
      expect(() => w.indexSelect(tensor([-1], { dtype: "int32" }))).toThrow(/indexSelect/);
      expect(() => F.crossEntropy(randn([2, 3]), tensor([0, 3], { dtype: "int32" }))).toThrow(/crossEntropy/);
    });
  });

  it("wrong cuSeqlens", () => {
    tidy(() => {
      const qkv = randn([5, 6]);
      const opts = (c: number[], max = 5) => ({
        cuSeqlens: tensor(c, { dtype: "int32" }),
        maxSeqlen: max,
        numHeads: 2,
      });
      expect(() => F.varlenAttention(qkv, opts([0, 3, 4]))).toThrow(/ends at 4 but there are 5 tokens/);
      expect(() => F.varlenAttention(qkv, opts([1, 5]))).toThrow(/cuSeqlens\[0\] must be 0/);
      expect(() => F.varlenAttention(qkv, opts([0, 4, 2, 5]))).toThrow(/non-decreasing/);
      expect(() => F.varlenAttention(qkv, opts([0, 5], 3))).toThrow(/more than maxSeqlen/);
      expect(() => F.varlenAttention(randn([5, 7]), opts([0, 5]))).toThrow(/\(T, 3\*C\)/);
      // A host copy is what gets validated; on the CPU it must also match the tensor.
      const withHost = (c: number[], host: number[]) => ({ ...opts(c), cuSeqlensHost: host });
      expect(() => F.varlenAttention(qkv, withHost([0, 2, 5], [0, 5]))).toThrow(/cuSeqlensHost has 2 values/);
      expect(() => F.varlenAttention(qkv, withHost([0, 2, 5], [0, 3, 5]))).toThrow(
        /cuSeqlensHost\[1\] = 3 but cuSeqlens\[1\] = 2/,
      );
      expect(() => F.varlenAttention(qkv, withHost([0, 2, 4], [0, 2, 4]))).toThrow(/ends at 4/);
      const a = F.varlenAttention(qkv, withHost([0, 2, 5], [0, 2, 5]));
      const b = F.varlenAttention(qkv, opts([0, 2, 5]));
      expect(Array.from(a.data())).toEqual(Array.from(b.data()));
    });
  });

  it("using a disposed tensor", () => {
    const t = randn([1]);
    t.dispose();
    expect(() => t.add(1)).toThrow(DisposedTensorError);
    expect(() => t.item()).toThrow(DisposedTensorError);
  });

  it("backward on something without grad", () => {
    tidy(() => {
      expect(() => randn([1]).backward()).toThrow(/does not require grad/);
      const x = randn([3], { requiresGrad: true });
      expect(() => x.mul(2).backward()).toThrow(/one-element/);
    });
  });

  it("state dict reports missing, unexpected and mis-shaped keys by name", () => {
    const lin = new nn.Linear(3, 2);
    expect(() => lin.loadStateDict({ weight: zeros([2, 4]), extra: zeros([1]) })).toThrow(
      /missing keys: bias; unexpected keys: extra; shape mismatches: weight expects \[2, 3\], got \[2, 4\]/,
    );
    const report = lin.loadStateDict({ weight: zeros([2, 3]) }, { strict: false });
    expect(report.missing).toEqual(["bias"]);
    lin.dispose();
  });
});
