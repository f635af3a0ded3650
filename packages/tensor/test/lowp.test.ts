import { describe, expect, it } from "vitest";
import { F, Generator, nn, randn, tidy, zeros } from "@mbert/tensor";
import { relErr } from "./gradcheck.js";

// The mixed-precision rule (bf16 activations over fp32 master weights on the
// GPU) exercised on the CPU with float32 activations over float64 parameters.
describe("parameters read through a low-precision copy", () => {
  it("linear computes in bf16 over float32 master weights and writes a float32 weight gradient", () => {
    tidy(() => {
      const gen = new Generator(5);
      const lin = new nn.Linear(16, 8, { bias: false });
      lin.resetParameters(gen);
      const x = randn([5, 16], { generator: gen });
      const y = lin.forward(x.cast("bfloat16"));
      expect(y.dtype).toBe("bfloat16");
      expect(lin.weight.lowp?.dtype).toBe("bfloat16");
      const w = randn([5, 8], { generator: gen });
      y.backward(w.cast("bfloat16"));
      expect(lin.weight.grad!.dtype).toBe("float32");
      const gLow = lin.weight.grad!.data() as Float32Array;
      lin.zeroGrad();
      const y32 = lin.forward(x);
      y32.backward(w);
      expect(relErr(y.cast("float32").data(), y32.data())).toBeLessThan(2e-2);
      expect(relErr(gLow, lin.weight.grad!.data())).toBeLessThan(2e-2);
      lin.dispose();
    });
  });

  it("layerNorm reads float64 parameters through a float32 copy, forward and backward", () => {
    tidy(() => {
      const gen = new Generator(6);
      const ln = new nn.LayerNorm(7, 1e-5, { dtype: "float64" });
      ln.resetParameters();
      ln.weight.adopt(randn([7], { dtype: "float64", generator: gen }).add(1));
      const x64 = randn([3, 7], { dtype: "float64", generator: gen });
      const g64 = randn([3, 7], { dtype: "float64", generator: gen });
      const x32 = x64.cast("float32").detach();
      x32.requiresGrad = true;
      const y = ln.forward(x32);
      expect(y.dtype).toBe("float32");
      y.backward(g64.cast("float32"));
      const dx32 = x32.grad!.cast("float64").data();
      const dw32 = ln.weight.grad!.data();
      expect(ln.weight.grad!.dtype).toBe("float64");
      ln.zeroGrad();
      const xr = x64.detach();
      xr.requiresGrad = true;
      const y64 = ln.forward(xr);
      y64.backward(g64);
      expect(relErr(y.cast("float64").data(), y64.data())).toBeLessThan(1e-5);
      expect(relErr(dx32, xr.grad!.data())).toBeLessThan(1e-5);
      expect(relErr(dw32, ln.weight.grad!.data())).toBeLessThan(1e-5);
      ln.dispose();
    });
  });

  it("loading new values invalidates the cached copy", () => {
    tidy(() => {
      const lin = new nn.Linear(2, 2, { bias: false, dtype: "float64" });
      const x = randn([1, 2]);
      lin.forward(x);
      expect(lin.weight.lowp).not.toBeNull();
      lin.loadStateDict({ weight: zeros([2, 2], { dtype: "float64" }) });
      expect(lin.weight.lowp).toBeNull();
      expect(lin.forward(x).toArray()).toEqual([[0, 0]]);
      lin.dispose();
    });
  });

  it("a plain tensor of another dtype is an error naming the op", () => {
    tidy(() => {
      expect(() => F.linear(randn([2, 3]), randn([4, 3], { dtype: "float64" }))).toThrow(
        /linear: input is float32 but weight is float64/,
      );
    });
  });
});
