import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type Parameter, memory } from "@mbert/tensor";
import { describe, expect, it } from "vitest";
import {
  Callback,
  type Event,
  InMemoryLogger,
  LinearWithWarmupScheduler,
  NonFiniteLossError,
  type State,
  Trainer,
  TrainerConfigError,
  gradNorm,
  listCheckpoints,
} from "../src/index.js";
import { ToyModel, toyData, toyOptimizer, toySamples } from "./toy.js";

const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), `mbert-${p}-`));

function losses(log: InMemoryLogger): number[] {
  return (log.history["loss/train/total"] ?? []).map(([, v]) => v);
}

function makeTrainer(opts: {
  seed?: number;
  maxDuration: string;
  micro?: number | "auto";
  saveFolder?: string;
  saveInterval?: string;
  autoresume?: boolean;
  log: InMemoryLogger;
  callbacks?: Callback[];
  evalInterval?: string;
  dropout?: number;
  gradClipNorm?: number;
}) {
  const model = new ToyModel(opts.seed ?? 1, opts.dropout);
  const samples = toySamples(48);
  return new Trainer({
    model,
    trainDataloader: toyData(samples, 8),
    evalDataloader: toyData(toySamples(16), 8),
    evalInterval: opts.evalInterval ?? "1ep",
    optimizers: toyOptimizer(model),
    schedulers: new LinearWithWarmupScheduler({ tWarmup: "0.25dur", alphaF: 0.1 }),
    maxDuration: opts.maxDuration,
    deviceTrainMicrobatchSize: opts.micro,
    loggers: [opts.log],
    callbacks: opts.callbacks,
    seed: opts.seed ?? 1,
    device: "cpu",
    saveFolder: opts.saveFolder,
    saveInterval: opts.saveInterval,
    autoresume: opts.autoresume,
    gradClipNorm: opts.gradClipNorm,
    runName: "toy",
  });
}

class Recorder extends Callback {
  events: string[] = [];
  override run(event: Event): void {
    this.events.push(event);
  }
}

/** A toy model whose third microbatch's loss is log(0) = -inf. */
function poisoned(): ToyModel {
  const model = new ToyModel(1);
  const orig = model.loss.bind(model);
  let n = 0;
  model.loss = (out, batch) => {
    n++;
    const l = orig(out, batch);
    return n === 3 ? l.mul(0).log() : l;
  };
  return model;
}

describe("Trainer", () => {
  it("fires events in Composer's order", async () => {
    const rec = new Recorder();
    const log = new InMemoryLogger();
    await makeTrainer({ maxDuration: "1ep", log, callbacks: [rec], micro: 4 }).fit();
    const e = rec.events;
    expect(e.slice(0, 6)).toEqual([
      "init",
      "before_load",
      "after_load",
      "fit_start",
      "epoch_start",
      "before_dataloader",
    ]);
    const firstBatch = e.slice(6, e.indexOf("batch_checkpoint") + 1);
    expect(firstBatch).toEqual([
      "after_dataloader",
      "batch_start",
      "before_train_batch",
      ...Array(2)
        .fill([
          "before_forward",
          "after_forward",
          "before_loss",
          "after_loss",
          "before_backward",
          "after_backward",
        ])
        .flat(),
      "after_train_batch",
      "batch_end",
      "batch_checkpoint",
    ]);
    const tail = e.slice(e.lastIndexOf("batch_checkpoint") + 1);
    expect(tail).toEqual([
      "before_dataloader", // the exhausted dataloader ends the epoch, as in Composer
      "epoch_end",
      "eval_before_all",
      "eval_start",
      "eval_batch_start",
      "eval_before_forward",
      "eval_after_forward",
      "eval_batch_end",
      "eval_batch_start",
      "eval_before_forward",
      "eval_after_forward",
      "eval_batch_end",
      "eval_end",
      "eval_after_all",
      "epoch_checkpoint",
      "fit_end",
    ]);
    expect(log.latest["metrics/eval/LanguageCrossEntropy"]).toBeGreaterThan(0);
  });

  it("an evaluator's own evalInterval overrides the trainer's", async () => {
    const model = new ToyModel(1);
    const log = new InMemoryLogger();
    await new Trainer({
      model,
      trainDataloader: toyData(toySamples(48), 8), // 6 batches per epoch
      evalDataloader: [
        { label: "often", data: toyData(toySamples(16), 8), evalInterval: "2ba" },
        { label: "rare", data: toyData(toySamples(16), 8) },
      ],
      evalInterval: "1ep",
      optimizers: toyOptimizer(model),
      maxDuration: "1ep",
      loggers: [log],
      seed: 1,
      device: "cpu",
    }).fit();
    const at = (label: string) =>
      (log.history[`metrics/${label}/LanguageCrossEntropy`] ?? []).map(([b]) => b);
    expect(at("often")).toEqual([2, 4, 6]);
    expect(at("rare")).toEqual([6]);
    expect(
      () =>
        new Trainer({
          model,
          evalDataloader: [{ label: "x", data: toyData(toySamples(8), 8), evalInterval: "2parsecs" }],
        }),
    ).toThrow();
  });

  it("same seed gives the same losses; gradient accumulation matches one batch", async () => {
    const a = new InMemoryLogger();
    const b = new InMemoryLogger();
    const c = new InMemoryLogger();
    await makeTrainer({ maxDuration: "12ba", log: a }).fit();
    await makeTrainer({ maxDuration: "12ba", log: b }).fit();
    expect(losses(a)).toHaveLength(12);
    expect(losses(b)).toEqual(losses(a));
    // Without dropout, 4 microbatches of 2 give the same losses as one batch of 8.
    const d = new InMemoryLogger();
    await makeTrainer({ maxDuration: "12ba", log: c, dropout: 0 }).fit();
    await makeTrainer({ maxDuration: "12ba", log: d, micro: 2, dropout: 0 }).fit();
    expect(losses(d)).toHaveLength(12);
    for (const [i, v] of losses(d).entries()) expect(v).toBeCloseTo(losses(c)[i]!, 5);
  });

  it("N steps == N/2 steps, checkpoint, resume, N/2 steps: identical losses", async () => {
    const full = new InMemoryLogger();
    await makeTrainer({ maxDuration: "14ba", log: full }).fit();
    const folder = tmp("resume");
    const first = new InMemoryLogger();
    await makeTrainer({ maxDuration: "14ba", log: first, saveFolder: folder, saveInterval: "7ba" }).fit();
    // Throw away everything after step 7: resume from the step-7 checkpoint only.
    for (const dir of listCheckpoints(folder)) if (!dir.endsWith("ba7")) fs.rmSync(dir, { recursive: true });
    fs.writeFileSync(path.join(folder, "latest"), "ep1-ba7");
    const second = new InMemoryLogger();
    const t = makeTrainer({
      maxDuration: "14ba",
      log: second,
      saveFolder: folder,
      saveInterval: "7ba",
      autoresume: true,
      seed: 99,
    });
    await t.fit();
    expect(t.state.timestamp.batch).toBe(14);
    const resumed = losses(second);
    expect(resumed).toHaveLength(7);
    expect(resumed).toEqual(losses(full).slice(7));
  });

  it("memory stays flat from step 2", async () => {
    const counts: number[] = [];
    class Mem extends Callback {
      override batchEnd(): void {
        counts.push(memory().tensors);
      }
    }
    await makeTrainer({
      maxDuration: "20ba",
      log: new InMemoryLogger(),
      callbacks: [new Mem()],
      evalInterval: "100ba",
    }).fit();
    expect(new Set(counts.slice(2)).size).toBe(1);
  });

  it("a non-finite loss stops the run naming the step, or skips it when asked", async () => {
    const m1 = poisoned();
    const t = new Trainer({
      model: m1,
      trainDataloader: toyData(toySamples(48), 8),
      optimizers: toyOptimizer(m1),
      maxDuration: "6ba",
      device: "cpu",
    });
    const failed = t.fit();
    await expect(failed).rejects.toThrow(NonFiniteLossError);
    await expect(failed).rejects.toThrow(/loss is -Infinity at batch 3/);
    await expect(new Trainer({ model: poisoned(), maxDuration: "1ba" }).fit()).rejects.toThrow(
      TrainerConfigError,
    );
    const m2 = poisoned();
    const log = new InMemoryLogger();
    const t2 = new Trainer({
      model: m2,
      trainDataloader: toyData(toySamples(48), 8),
      optimizers: toyOptimizer(m2),
      maxDuration: "5ba",
      device: "cpu",
      nonFiniteLoss: "skip",
      loggers: [log],
    });
    await t2.fit();
    expect(t2.state.timestamp.batch).toBe(5);
    expect(log.texts.some((x) => /step 3: loss is -Infinity; skipping/.test(x))).toBe(true);
  });

  it("reads the loss from the device only every lossReadInterval batches, logging each batch", async () => {
    const run = async (every: number) => {
      const model = new ToyModel(1);
      const log = new InMemoryLogger();
      const pending: number[] = [];
      class Watch extends Callback {
        override batchEnd(state: State): void {
          pending.push(state.pendingLosses.length);
        }
      }
      const t = new Trainer({
        model,
        trainDataloader: toyData(toySamples(48), 8),
        optimizers: toyOptimizer(model),
        maxDuration: "12ba",
        device: "cpu",
        lossReadInterval: every,
        loggers: [log],
        callbacks: [new Watch()],
      });
      await t.fit();
      return { log, pending };
    };
    const each = await run(1);
    const every5 = await run(5);
    expect(each.pending).toEqual(Array(12).fill(0));
    // Unread losses pile up between reads (batches 5 and 10) and at the end.
    expect(every5.pending).toEqual([1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 0]);
    expect(every5.log.history["loss/train/total"]).toEqual(each.log.history["loss/train/total"]);
    expect(() => new Trainer({ model: new ToyModel(1), maxDuration: "1ba", lossReadInterval: 0 })).toThrow(
      /lossReadInterval/,
    );
  });

  it("a non-finite loss read late still names its own batch", async () => {
    const model = poisoned();
    const t = new Trainer({
      model,
      trainDataloader: toyData(toySamples(48), 8),
      optimizers: toyOptimizer(model),
      maxDuration: "6ba",
      device: "cpu",
      lossReadInterval: 4,
    });
    await expect(t.fit()).rejects.toThrow(/loss is -Infinity at batch 3/);
    expect(t.state.timestamp.batch).toBe(4);
  });

  it("rejects impossible settings before training", () => {
    const model = new ToyModel(1);
    expect(() => new Trainer({ model, maxDuration: "0.5dur" })).toThrow(TrainerConfigError);
    expect(() => new Trainer({ model, maxDuration: "0ba" })).toThrow(/expected > 0/);
    expect(() => new Trainer({ model, maxDuration: "1ep", precision: "amp_bf16", device: "cpu" })).toThrow(
      /cuda/,
    );
    expect(() => new Trainer({ model, maxDuration: "1ep", deviceTrainMicrobatchSize: 0 })).toThrow(
      /microbatch/i,
    );
  });

  it("clips by the global norm, which it reports on request", async () => {
    // The norm the trainer clips by, read on the host before each update.
    class NormProbe extends Callback {
      before: number[] = [];
      reported: number[] = [];
      override run(event: Event, state: State): void {
        const params = state.optimizers.flatMap((o) =>
          o.paramGroups.flatMap((g) => g.params.map(([, p]) => p as Parameter)),
        );
        if (event === "after_train_batch") this.before.push(gradNorm(params));
        if (event === "batch_end") this.reported.push(state.gradNorm!);
      }
    }
    const run = async (gradClipNorm?: number) => {
      const log = new InMemoryLogger();
      const probe = new NormProbe();
      const st = await makeTrainer({ maxDuration: "4ba", log, gradClipNorm, callbacks: [probe] }).fit();
      return { losses: losses(log), probe, st };
    };
    const plain = await run();
    const loose = await run(1e9);
    const tight = await run(1e-3);
    expect(loose.losses).toEqual(plain.losses);
    expect(tight.losses[0]).toBe(plain.losses[0]);
    expect(tight.losses.at(-1)).not.toBe(plain.losses.at(-1));
    expect(plain.st.gradNorm).toBeUndefined();
    expect(tight.probe.reported).toHaveLength(4);
    tight.probe.reported.forEach((n, i) => {
      expect(n).toBeGreaterThan(1e-3);
      expect(n).toBeCloseTo(tight.probe.before[i]!, 5);
    });
    expect(tight.st.gradNorm).toBe(tight.probe.reported.at(-1));
  });
});
