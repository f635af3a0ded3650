/**
 * Stops training when a monitored metric has not improved for `patience`
 * evaluations (or a time span such as '2ep'/'1000ba').
 */
import { Callback } from "../callback.js";
import type { Logger } from "../logger.js";
import type { State } from "../state.js";
import { Time } from "../time.js";

export interface EarlyStopperOptions {
  /** Metric name, e.g. 'MaskedAccuracy' or 'LanguageCrossEntropy'. */
  monitor: string;
  /** Evaluator label ('eval'), or 'train' for train metrics. */
  dataloaderLabel: string;
  /** 'max' when higher is better (default: decided by the metric, else 'min'). */
  mode?: "min" | "max";
  minDelta?: number;
  /** A number of evaluations, or a time string. Default 1 evaluation. */
  patience?: number | string;
}

export class EarlyStopper extends Callback {
  private best?: number;
  private bestTime?: { batch: number; epoch: number };
  private waited = 0;
  stoppedAt?: number;

  constructor(private readonly opts: EarlyStopperOptions) {
    super();
  }

  private check(state: State, logger: Logger, value: number | undefined, higherIsBetter?: boolean): void {
    if (value === undefined) return;
    const mode = this.opts.mode ?? (higherIsBetter ? "max" : "min");
    const delta = this.opts.minDelta ?? 0;
    const improved =
      this.best === undefined || (mode === "max" ? value > this.best + delta : value < this.best - delta);
    if (improved) {
      this.best = value;
      this.bestTime = { batch: state.timestamp.batch, epoch: state.timestamp.epoch };
      this.waited = 0;
      return;
    }
    this.waited++;
    const patience = this.opts.patience ?? 1;
    let stop: boolean;
    if (typeof patience === "number") stop = this.waited >= patience;
    else {
      const t = Time.parse(patience);
      const since =
        t.unit === "ep"
          ? state.timestamp.epoch - (this.bestTime?.epoch ?? 0)
          : state.timestamp.batch - (this.bestTime?.batch ?? 0);
      stop = since >= t.value;
    }
    if (stop) {
      this.stoppedAt = state.timestamp.batch;
      logger.logText(
        `early stopping at batch ${state.timestamp.batch}: ${this.opts.monitor} has not improved on ${this.best} ` +
          `for ${this.waited} evaluations`,
      );
      state.stopTraining();
    }
  }

  override evalEnd(state: State, logger: Logger): void {
    const label = state.currentEvaluator?.label;
    if (label !== this.opts.dataloaderLabel) return;
    const value = state.evalMetricValues[label]?.[this.opts.monitor];
    this.check(state, logger, value, undefined);
  }

  override epochEnd(state: State, logger: Logger): void {
    if (this.opts.dataloaderLabel !== "train") return;
    const metric = state.trainMetrics[this.opts.monitor];
    this.check(state, logger, metric?.compute(), metric?.higherIsBetter);
  }

  override stateDict(): Record<string, unknown> {
    return { best: this.best, bestTime: this.bestTime, waited: this.waited };
  }

  override loadStateDict(s: Record<string, unknown>): void {
    this.best = s.best as number | undefined;
    this.bestTime = s.bestTime as { batch: number; epoch: number } | undefined;
    this.waited = (s.waited as number) ?? 0;
  }
}
