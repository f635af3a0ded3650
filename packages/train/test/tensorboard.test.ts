import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { JsonlLogger, TensorBoardLogger, crc32c, readEventFile, readJsonlMetrics } from "../src/index.js";

describe("TensorBoard event files", () => {
  it("crc32c matches the standard check value", () => {
    expect(crc32c(new TextEncoder().encode("123456789"))).toBe(0xe3069283);
  });

  it("writes a file_version event then scalar events that decode back", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mbert-tb-"));
    const tb = new TensorBoardLogger(dir);
    tb.logMetrics({ "loss/train/total": 2.5, "lr-DecoupledAdamW/group0": 5e-4 }, 1);
    tb.logMetrics({ "loss/train/total": 2.25 }, 2);
    tb.close();
    const files = fs.readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^events\.out\.tfevents\./);
    const events = readEventFile(path.join(dir, files[0]!));
    expect(events[0]!.fileVersion).toBe("brain.Event:2");
    expect(events.slice(1).map((e) => e.step)).toEqual([1, 2]);
    expect(events[1]!.scalars["loss/train/total"]).toBe(2.5);
    expect(events[1]!.scalars["lr-DecoupledAdamW/group0"]).toBeCloseTo(5e-4, 9);
    expect(events[2]!.scalars).toEqual({ "loss/train/total": 2.25 });
    // A flipped byte is caught by the CRC.
    const file = path.join(dir, files[0]!);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 6] ^= 0xff;
    fs.writeFileSync(file, bytes);
    expect(() => readEventFile(file)).toThrow(/CRC mismatch/);
  });

  it("JSONL rows carry the step and every metric", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "mbert-jsonl-")), "metrics.jsonl");
    const l = new JsonlLogger(file);
    l.logHyperparameters({ lr: 1 });
    l.logMetrics({ a: 1 }, 3);
    l.close();
    expect(readJsonlMetrics(file)).toEqual([expect.objectContaining({ step: 3, a: 1 })]);
  });
});
