import { describe, expect, it } from "vitest";
import { F, Generator, type Tensor, isGradEnabled, memory, noGrad, randn, tensor, tidy } from "@mbert/tensor";

describe("autograd", () => {
  it("accumulates into .grad across backward calls until zeroGrad", () => {
    tidy(() => {
      const x = tensor([1, 2, 3], { requiresGrad: true });
      x.mul(2).sum().backward();
      x.mul(x).sum().backward();
      expect(x.grad!.toArray()).toEqual([4, 6, 8]);
      x.zeroGrad();
      expect(x.grad).toBeNull();
      x.sum().backward();
      expect(x.grad!.toArray()).toEqual([1, 1, 1]);
    });
  });

  it("a tensor used twice gets both gradients", () => {
    tidy(() => {
      const x = tensor([2], { requiresGrad: true });
      const y = x.mul(x).add(x);
      y.backward();
      expect(x.grad!.item()).toBe(5);
    });
  });

  it("a loss used twice gets both gradients through the fused cross-entropy backward", () => {
    tidy(() => {
      const labels = tensor([1, 0, 2], { dtype: "int32" });
      const logits = () =>
        randn([3, 4], { dtype: "float64", requiresGrad: true, generator: new Generator(4) });
      const twice = logits();
      const l = F.crossEntropy(twice, labels);
      // The seed (a known 1) is summed in place with its copy: the gradient is 2, not 1.
      l.add(l).backward();
      const doubled = logits();
      F.crossEntropy(doubled, labels).mul(2).backward();
      expect(twice.grad!.toArray()).toEqual(doubled.grad!.toArray());
    });
  });

  it("a unary op keeps on the tape only the tensor its backward reads", () => {
    tidy(() => {
      const x = randn([8], { requiresGrad: true });
      // exp reads its output, gelu its input: the output plus one tape reference.
      for (const f of [(t: Tensor) => t.exp(), (t: Tensor) => t.gelu()]) {
        const before = memory().tensors;
        f(x);
        expect(memory().tensors).toBe(before + 2);
      }
      const before = memory().tensors;
      x.neg();
      expect(memory().tensors).toBe(before + 1);
    });
  });

  it("noGrad records nothing", () => {
    tidy(() => {
      const x = randn([3], { requiresGrad: true });
      const y = noGrad(() => {
        expect(isGradEnabled()).toBe(false);
        return x.mul(2);
      });
      expect(y.requiresGrad).toBe(false);
      expect(isGradEnabled()).toBe(true);
    });
  });

  it("detach cuts the graph", () => {
    tidy(() => {
      const x = tensor([3], { requiresGrad: true });
      const y = x.mul(x.detach());
      y.backward();
      expect(x.grad!.item()).toBe(3);
    });
  });

  it("releases the tensors saved for backward once backward has run", () => {
    const x = randn([64, 64], { requiresGrad: true });
    const before = memory();
    tidy(() => {
      const loss = x.matmul(x).tanh().softmax().sum();
      loss.backward();
    });
    const after = memory();
    // Only x.grad is new.
    expect(after.tensors).toBe(before.tensors + 1);
    expect(after.bytes.cpu).toBe(before.bytes.cpu + 64 * 64 * 4);
    x.dispose();
  });

  it("an explicit upstream gradient is not modified by accumulation", () => {
    tidy(() => {
      const x = tensor([1, 1], { requiresGrad: true });
      const g = tensor([5, 7]);
      x.backward(g);
      x.backward(g);
      expect(g.toArray()).toEqual([5, 7]);
      expect(x.grad!.toArray()).toEqual([10, 14]);
    });
  });
});
