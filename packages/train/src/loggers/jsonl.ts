/** One JSON object per line: `{"step": 12, "time": 1700000000.1, "loss/train/total": 3.2}`. */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoggerDestination } from "../logger.js";

export class JsonlLogger extends LoggerDestination {
  private fd: number;
  constructor(readonly file: string) {
    super();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, "a");
  }

  private write(obj: Record<string, unknown>): void {
    if (this.fd < 0) return;
    fs.writeSync(this.fd, `${JSON.stringify(obj)}\n`);
  }

  override logMetrics(metrics: Record<string, number>, step: number): void {
    this.write({ step, time: Date.now() / 1000, ...metrics });
  }

  override logHyperparameters(params: Record<string, unknown>): void {
    this.write({ hyperparameters: params });
  }

  override logText(text: string): void {
    this.write({ time: Date.now() / 1000, text });
  }

  override close(): void {
    if (this.fd < 0) return;
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** Reads a JSONL metrics file back: the metric rows (those with a `step`). */
export function readJsonlMetrics(file: string): Record<string, number>[] {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, number>)
    .filter((r) => typeof r.step === "number");
}
