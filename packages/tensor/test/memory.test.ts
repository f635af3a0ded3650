import { describe, expect, it } from "vitest";
import { F, Generator, backend, memory, nn, randn, tensor, tidy } from "@mbert/tensor";

class MLP extends nn.Module {
  fc1 = this.registerModule("fc1", new nn.Linear(16, 32));
  ln = this.registerModule("ln", new nn.LayerNorm(32));
  fc2 = this.registerModule("fc2", new nn.Linear(32, 4));
  forward(x: ReturnType<typeof randn>) {
    return this.fc2.forward(this.ln.forward(this.fc1.forward(x).gelu()));
  }
}

describe("memory", () => {
  it("200 forward/backward steps of an MLP leave live tensors and bytes unchanged after step 2", () => {
    const gen = new Generator(3);
    const model = new MLP();
    model.resetParameters(gen);
    const labels = tensor([0, 1, 2, 3, 0, 1, 2, 3], { dtype: "int32" });
    const counts: { tensors: number; bytes: number; native: number }[] = [];
    for (let step = 0; step < 200; step++) {
      tidy(() => {
        const x = randn([8, 16], { generator: gen });
        const loss = F.crossEntropy(model.forward(x), labels);
        loss.backward();
        // A plain SGD step.
        for (const p of model.parameters()) {
          const k = backend("cpu");
          k.binary(1, 0, p.ptr, p.ptr, p.grad!.mul(0.01).ptr, [p.size], [1], [1]);
        }
      });
      const m = memory();
      counts.push({ tensors: m.tensors, bytes: m.bytes.cpu, native: backend("cpu").memoryStats().allocated });
    }
    for (const c of counts.slice(2)) expect(c).toEqual(counts[1]);
    labels.dispose();
    model.dispose();
  });

  it("disposing a module returns every byte its parameters took", () => {
    const before = memory();
    const m = new MLP();
    m.resetParameters(new Generator(1));
    // A recorded forward whose tensors are all disposed without a backward releases its graph.
    tidy(() => {
      m.forward(randn([2, 16]));
    });
    m.dispose();
    const after = memory();
    expect(after.tensors).toBe(before.tensors);
    expect(after.bytes).toEqual(before.bytes);
  });

  it("tidy frees intermediates but keeps what is returned", () => {
    const before = memory().tensors;
    const kept = tidy(() => {
      const a = randn([4]);
      const b = a.mul(2);
      return b.add(1);
    });
    expect(memory().tensors).toBe(before + 1);
    kept.dispose();
    expect(memory().tensors).toBe(before);
  });
});

describe("Module.to", () => {
  it("moves parameters in place, keeping the objects fields and optimizers hold", () => {
    const lin = new nn.Linear(3, 2, { dtype: "float32" });
    const w = lin.weight;
    const before = memory();
    lin.to("cpu", "float64");
    expect(lin.weight).toBe(w);
    expect(w.dtype).toBe("float64");
    expect(lin.parameters()[0]).toBe(w);
    expect(memory().tensors).toBe(before.tensors);
    lin.resetParameters(new Generator(1));
    lin.dispose();
  });
});
