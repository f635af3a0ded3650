import { memory } from "@mbert/tensor";
import { describe, expect, it } from "vitest";
import {
  type AllocatorProbe,
  InMemoryLogger,
  MemoryMonitor,
  Trainer,
  TrainerConfigError,
} from "../src/index.js";
import { ToyModel, toyData, toyOptimizer, toySamples } from "./toy.js";

function fit(monitor: MemoryMonitor, log: InMemoryLogger, maxDuration = "6ba") {
  const model = new ToyModel(1);
  return new Trainer({
    model,
    trainDataloader: toyData(toySamples(48), 8),
    optimizers: toyOptimizer(model),
    maxDuration,
    device: "cpu",
    callbacks: [monitor],
    loggers: [log],
  }).fit();
}

describe("MemoryMonitor", () => {
  it("logs live tensors and bytes held on the CPU at every interval", async () => {
    const log = new InMemoryLogger();
    const mon = new MemoryMonitor({ interval: 2 });
    await fit(mon, log);
    const steps = (k: string) => (log.history[k] ?? []).map(([s]) => s);
    expect(steps("memory/live_tensors")).toEqual([2, 4, 6]);
    expect(steps("memory/allocated_bytes")).toEqual([2, 4, 6]);
    const bytes = log.history["memory/allocated_bytes"]!.map(([, v]) => v);
    // At least the parameters and both Adam moments of the toy model (97 floats each).
    for (const b of bytes) expect(b).toBeGreaterThanOrEqual(3 * 97 * 4);
    // Steady from step 2 on, and no allocator counters on the CPU.
    expect(new Set(log.history["memory/live_tensors"]!.map(([, v]) => v)).size).toBe(1);
    expect(log.latest["memory/reserved_bytes"]).toBeUndefined();
    expect(mon.latest["memory/live_tensors"]).toBeGreaterThan(0);
    expect(mon.latest["memory/live_tensors"]).toBeLessThanOrEqual(memory().tensors + 64);
  });

  it("reads the device allocator (allocated, reserved, peak) and resets the peak each interval", async () => {
    const calls: string[] = [];
    let peak = 1000;
    const probe: AllocatorProbe = {
      stats: () => {
        calls.push("stats");
        return { allocated: 500, reserved: 4096, peak: peak++, count: 7 };
      },
      resetPeak: () => {
        calls.push("reset");
      },
    };
    const log = new InMemoryLogger();
    await fit(new MemoryMonitor({ interval: "3ba", statsFor: () => probe }), log);
    // Once at FIT_START, then after each read (batches 3 and 6).
    expect(calls).toEqual(["reset", "stats", "reset", "stats", "reset"]);
    expect(log.history["memory/peak_bytes"]).toEqual([
      [3, 1000],
      [6, 1001],
    ]);
    expect(log.latest["memory/allocated_bytes"]).toBe(500);
    expect(log.latest["memory/reserved_bytes"]).toBe(4096);
    expect(log.latest["memory/allocations"]).toBe(7);
    expect(log.latest["memory/live_tensors"]).toBeGreaterThan(0);
  });

  it("rejects intervals that are not whole batches", () => {
    expect(() => new MemoryMonitor({ interval: 0 })).toThrow(TrainerConfigError);
    expect(() => new MemoryMonitor({ interval: "1ep" })).toThrow(/whole number of batches/);
  });
});
