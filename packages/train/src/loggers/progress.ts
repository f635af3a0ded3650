/**
 * A progress bar over maxDuration with the latest loss, rate and ETA. On a
 * TTY it redraws one line; otherwise it prints a plain line every
 * `plainEvery` of the run (10% by default) so logs stay readable.
 */
import { LoggerDestination } from "../logger.js";
import type { State } from "../state.js";
import type { Writable } from "./console.js";

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const mm = String(m).padStart(2, "0");
  const ss = String(r).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class ProgressBarLogger extends LoggerDestination {
  private readonly out: Writable & { isTTY?: boolean; columns?: number };
  private readonly tty: boolean;
  private readonly plainEvery: number;
  private start = 0;
  private startProgress = 0;
  private lastPlain = -1;
  private loss = Number.NaN;
  private evalLine = "";
  private drawn = false;

  constructor(opts: { stream?: Writable & { isTTY?: boolean }; tty?: boolean; plainEvery?: number } = {}) {
    super();
    this.out = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean(this.out.isTTY);
    this.plainEvery = opts.plainEvery ?? 0.1;
  }

  override fitStart(state: State): void {
    this.start = performance.now();
    this.startProgress = state.progress;
    this.lastPlain = Math.floor(state.progress / this.plainEvery);
  }

  override logMetrics(metrics: Record<string, number>): void {
    const l = metrics["loss/train/total"];
    if (l !== undefined) this.loss = l;
    const evals = Object.entries(metrics).filter(
      ([k]) => k.startsWith("metrics/") && !k.startsWith("metrics/train"),
    );
    if (evals.length > 0) {
      this.evalLine = evals.map(([k, v]) => `${k.replace(/^metrics\//, "")}=${v.toFixed(4)}`).join(" ");
    }
  }

  private line(state: State): string {
    const p = state.progress;
    const elapsed = (performance.now() - this.start) / 1000;
    const done = p - this.startProgress;
    const eta = done > 0 ? (elapsed * (1 - p)) / done : Number.NaN;
    const max = state.maxDuration;
    const count = max && max.unit !== "dur" ? `${state.timestamp.get(max.unit)}/${max.value}${max.unit}` : "";
    const rate = elapsed > 0 ? `${(state.timestamp.batch / elapsed).toFixed(2)}ba/s` : "";
    const loss = Number.isFinite(this.loss) ? ` loss ${this.loss.toFixed(4)}` : "";
    const width = 24;
    const filled = Math.round(p * width);
    const bar = `${"█".repeat(filled)}${" ".repeat(width - filled)}`;
    const pct = `${(p * 100).toFixed(0).padStart(3)}%`;
    return `train ${pct} |${bar}| ${count}${loss} [${formatDuration(elapsed)}<${formatDuration(eta)}, ${rate}]`;
  }

  override batchEnd(state: State): void {
    if (this.tty) {
      this.out.write(`\r${this.line(state)}\x1b[K`);
      this.drawn = true;
      return;
    }
    const bucket = Math.floor(state.progress / this.plainEvery);
    if (bucket > this.lastPlain) {
      this.lastPlain = bucket;
      this.out.write(`${this.line(state)}\n`);
    }
  }

  override evalEnd(state: State): void {
    if (!this.evalLine) return;
    if (this.drawn) this.out.write("\n");
    this.drawn = false;
    this.out.write(`eval  [batch=${state.timestamp.batch}] ${this.evalLine}\n`);
    this.evalLine = "";
  }

  override fitEnd(state: State): void {
    if (this.tty) {
      this.out.write(`\r${this.line(state)}\x1b[K\n`);
      this.drawn = false;
    } else if (this.lastPlain < Math.floor(1 / this.plainEvery)) {
      this.out.write(`${this.line(state)}\n`);
    }
  }
}
