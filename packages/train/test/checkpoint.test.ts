import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  CheckpointError,
  InMemoryLogger,
  State,
  Trainer,
  listCheckpoints,
  latestCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  validateCheckpoint,
} from "../src/index.js";
import { ToyModel, toyData, toyOptimizer, toySamples } from "./toy.js";

function trainedState(folder: string, steps: number): Trainer {
  const model = new ToyModel(1);
  return new Trainer({
    model,
    trainDataloader: toyData(toySamples(48), 8),
    optimizers: toyOptimizer(model),
    maxDuration: `${steps}ba`,
    device: "cpu",
    saveFolder: folder,
    saveInterval: "2ba",
    loggers: [new InMemoryLogger()],
  });
}

describe("checkpoints", () => {
  it("a fractional saveInterval resolves against the dataloader's own length", async () => {
    // toyData's spec has no length of its own: batches per epoch come from its loader (6).
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "mbert-ckpt-dur-"));
    const model = new ToyModel(1);
    await new Trainer({
      model,
      trainDataloader: toyData(toySamples(48), 8),
      optimizers: toyOptimizer(model),
      maxDuration: "2ep",
      device: "cpu",
      saveFolder: folder,
      saveInterval: "0.25dur", // 3 of 12 batches
      loggers: [new InMemoryLogger()],
    }).fit();
    expect(listCheckpoints(folder).map((c) => path.basename(c))).toEqual([
      "ep0-ba3",
      "ep0-ba6", // saved at the batch end, before the epoch is counted
      "ep1-ba9",
      "ep1-ba12",
    ]);
  });

  it("a failure between the temporary write and the rename leaves the previous checkpoint loadable", async () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "mbert-ckpt-"));
    const t = trainedState(folder, 2);
    await t.fit();
    const good = latestCheckpoint(folder)!;
    expect(path.basename(good)).toBe("ep0-ba2");
    // Pretend training moved on, then crash just before publishing.
    t.state.timestamp = t.state.timestamp.afterBatch(8, 8);
    expect(() =>
      saveCheckpoint(folder, t.state, {
        beforePublish: () => {
          throw new Error("simulated crash");
        },
      }),
    ).toThrow("simulated crash");
    expect(latestCheckpoint(folder)).toBe(good);
    expect(fs.readdirSync(folder).sort()).toEqual(["ep0-ba2", "latest"]);
    validateCheckpoint(good);
    const fresh = new ToyModel(5);
    const st = new State({ model: fresh, runName: "x", seed: 0, device: "cpu", precision: "fp32" });
    st.optimizers = [toyOptimizer(fresh)];
    loadCheckpoint(good, st);
    expect(st.timestamp.batch).toBe(2);
  });

  // The writer side of a crash is the beforePublish test above; this one checks what a
  // reader makes of the folder a killed writer leaves behind.
  it("a temporary checkpoint left by a killed process is skipped by readers and fails validation", async () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "mbert-kill-"));
    await trainedState(folder, 2).fit();
    const before = fs.readFileSync(path.join(folder, "latest"), "utf8");
    // A child that starts a checkpoint write of the same layout and is SIGKILLed halfway.
    const script = `
      const fs = require("node:fs"); const path = require("node:path");
      const tmp = path.join(${JSON.stringify(folder)}, "ep0-ba4.tmp-" + process.pid);
      fs.mkdirSync(path.join(tmp, "model"), { recursive: true });
      fs.writeFileSync(path.join(tmp, "model", "model.safetensors"), Buffer.alloc(1 << 20));
      process.kill(process.pid, "SIGKILL");
    `;
    const r = spawnSync(process.execPath, ["-e", script]);
    expect(r.signal).toBe("SIGKILL");
    expect(fs.readFileSync(path.join(folder, "latest"), "utf8")).toBe(before);
    validateCheckpoint(path.join(folder, before));
    const leftover = fs.readdirSync(folder).find((n) => n.includes(".tmp-"))!;
    expect(() => validateCheckpoint(path.join(folder, leftover))).toThrow(/has no manifest.json/);
    expect(listCheckpoints(folder).map((c) => path.basename(c))).toEqual(["ep0-ba2"]);
    expect(latestCheckpoint(folder)).toBe(path.join(folder, before));
  });

  it("a corrupt file is reported by checkpoint and file name", async () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "mbert-corrupt-"));
    await trainedState(folder, 2).fit();
    const dir = latestCheckpoint(folder)!;
    const f = path.join(dir, "optimizers", "0.safetensors");
    const bytes = fs.readFileSync(f);
    bytes[bytes.length - 1] ^= 0xff;
    fs.writeFileSync(f, bytes);
    expect(() => validateCheckpoint(dir)).toThrow(CheckpointError);
    expect(() => validateCheckpoint(dir)).toThrow(/ep0-ba2: optimizers\/0.safetensors: sha256 differs/);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));
    expect(manifest).toMatchObject({ format: "mbert-checkpoint", version: 1 });
  });
});
