/**
 * The logger fans metrics, hyperparameters and text out to destinations
 * (JSONL file, TensorBoard, console, progress bar, memory). A destination is
 * also a Callback, so it can react to events (flush at epoch end, draw a bar).
 */
import { Callback } from "./callback.js";
import type { State } from "./state.js";

export abstract class LoggerDestination extends Callback {
  logHyperparameters(_params: Record<string, unknown>): void {}
  /** Scalars keyed by name (`loss/train/total`, `metrics/eval/MaskedAccuracy`) at a batch count. */
  logMetrics(_metrics: Record<string, number>, _step: number): void {}
  logText(_text: string): void {}
}

export class Logger {
  constructor(
    readonly destinations: LoggerDestination[],
    private readonly state?: State,
  ) {}

  private step(step?: number): number {
    return step ?? this.state?.timestamp.batch ?? 0;
  }

  logMetrics(metrics: Record<string, number>, step?: number): void {
    const s = this.step(step);
    for (const d of this.destinations) d.logMetrics(metrics, s);
  }

  logHyperparameters(params: Record<string, unknown>): void {
    for (const d of this.destinations) d.logHyperparameters(params);
  }

  logText(text: string): void {
    for (const d of this.destinations) d.logText(text);
  }
}

/** Keeps every logged value in memory: `history['loss/train/total']` is `[step, value][]`. */
export class InMemoryLogger extends LoggerDestination {
  readonly history: Record<string, [number, number][]> = {};
  readonly latest: Record<string, number> = {};
  hyperparameters: Record<string, unknown> = {};
  readonly texts: string[] = [];

  override logMetrics(metrics: Record<string, number>, step: number): void {
    for (const [k, v] of Object.entries(metrics)) {
      const series = this.history[k] ?? [];
      series.push([step, v]);
      this.history[k] = series;
      this.latest[k] = v;
    }
  }

  override logHyperparameters(params: Record<string, unknown>): void {
    this.hyperparameters = { ...this.hyperparameters, ...params };
  }

  override logText(text: string): void {
    this.texts.push(text);
  }
}
