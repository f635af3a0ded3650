/**
 * Console logging at an interval: `[batch=20/100]: loss/train/total: 3.2104, lr-DecoupledAdamW/group0: 0.0005`.
 * Train metrics print every `logInterval` batches; eval metrics print when logged.
 */
import type { Logger } from "../logger.js";
import { LoggerDestination } from "../logger.js";
import type { State } from "../state.js";
import { Time } from "../time.js";

export interface Writable {
  write(s: string): unknown;
}

function fmt(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(4) : v.toFixed(4);
}

export class ConsoleLogger extends LoggerDestination {
  private readonly interval: Time;
  private pending: Record<string, number> = {};
  private state?: State;
  private readonly out: Writable;

  constructor(opts: { logInterval?: Time | string | number; stream?: Writable } = {}) {
    super();
    this.interval = Time.from(opts.logInterval ?? "1ba");
    if (this.interval.unit !== "ba" && this.interval.unit !== "ep") {
      throw new Error(`ConsoleLogger: logInterval must be in 'ba' or 'ep', got ${this.interval}`);
    }
    this.out = opts.stream ?? process.stdout;
  }

  override fitStart(state: State): void {
    this.state = state;
  }

  override logMetrics(metrics: Record<string, number>): void {
    const isEval = Object.keys(metrics).some(
      (k) => k.startsWith("metrics/") && !k.startsWith("metrics/train"),
    );
    if (isEval) {
      this.print(metrics);
      return;
    }
    Object.assign(this.pending, metrics);
  }

  override logText(text: string): void {
    this.out.write(`${text}\n`);
  }

  override batchEnd(state: State, _logger: Logger): void {
    const every = this.interval.value;
    const due = this.interval.unit === "ba" && every > 0 && state.timestamp.batch % every === 0;
    if (due) this.flush();
  }

  override epochEnd(): void {
    if (this.interval.unit === "ep") this.flush();
  }

  override fitEnd(): void {
    this.flush();
  }

  private flush(): void {
    if (Object.keys(this.pending).length === 0) return;
    this.print(this.pending);
    this.pending = {};
  }

  private print(metrics: Record<string, number>): void {
    const ts = this.state?.timestamp;
    const max = this.state?.maxDuration;
    let where = "";
    if (ts) {
      const total = max && max.unit === "ba" ? `/${max.value}` : "";
      where = `[epoch=${ts.epoch}][batch=${ts.batch}${total}]: `;
    }
    const body = Object.entries(metrics)
      .map(([k, v]) => `${k}: ${fmt(v)}`)
      .join(", ");
    this.out.write(`${where}${body}\n`);
  }
}
