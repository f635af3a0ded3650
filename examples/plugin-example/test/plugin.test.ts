import { ArrayDataLoader, InMemoryLogger, SGD, Trainer, arrayDataSpec } from "@mbert/train";
import { F, Module, type Tensor, fromArray, manualSeed, nn } from "@mbert/tensor";
import { describe, expect, it } from "vitest";
import { BestLossTracker, SlowStart } from "../src/index.js";

type Sample = { x: number; y: number };

class Line extends Module {
  lin = this.registerModule("lin", new nn.Linear(1, 1));
}

describe("plugin example", () => {
  it("runs inside a Trainer: the callback logs, the algorithm changes the LR", async () => {
    manualSeed(0);
    const net = new Line();
    net.resetParameters();
    const samples: Sample[] = Array.from({ length: 32 }, (_, i) => ({ x: i / 32, y: (2 * i) / 32 + 1 }));
    const model = {
      module: net,
      forward: (b: Sample[]) =>
        net.lin.forward(
          fromArray(
            b.map((s) => s.x),
            [b.length, 1],
          ),
        ),
      loss: (out: Tensor, b: Sample[]) =>
        F.mseLoss(
          out,
          fromArray(
            b.map((s) => s.y),
            [b.length, 1],
          ),
        ),
      getMetrics: () => ({}),
      updateMetric: () => {},
    };
    const log = new InMemoryLogger();
    const tracker = new BestLossTracker();
    const trainer = new Trainer({
      model,
      trainDataloader: arrayDataSpec(
        new ArrayDataLoader({ samples, batchSize: 8, collate: (s: Sample[]) => s }),
      ),
      optimizers: new SGD([...net.namedParameters()], { lr: 0.1 }),
      maxDuration: "8ba",
      device: "cpu",
      callbacks: [tracker],
      algorithms: [new SlowStart(2, 0.1)],
      loggers: [log],
    });
    await trainer.fit();
    expect(log.history["plugin/best_loss"]).toHaveLength(8);
    expect(tracker.best).toBeLessThan(log.history["loss/train/total"]![0]![1]);
    expect(log.texts.filter((t) => t.startsWith("SlowStart"))).toHaveLength(2);
    expect(trainer.state.optimizers[0]!.paramGroups[0]!.initialLr).toBeCloseTo(0.1, 12);
  });
});
