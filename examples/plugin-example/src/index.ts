/**
 * A third-party plugin for @mbert/train, written only against its public
 * exports: a Callback that records the best training loss and logs it, and
 * an Algorithm that scales every LR down during the first batches.
 */
import { type Algorithm, Callback, Event, type Logger, type State } from "@mbert/train";

/** Logs `plugin/best_loss` at every batch end and remembers it across checkpoints. */
export class BestLossTracker extends Callback {
  best = Number.POSITIVE_INFINITY;

  override batchEnd(state: State, logger: Logger): void {
    if (state.lossValue < this.best) this.best = state.lossValue;
    logger.logMetrics({ "plugin/best_loss": this.best });
  }

  override stateDict(): Record<string, unknown> {
    return { best: this.best };
  }

  override loadStateDict(s: Record<string, unknown>): void {
    this.best = Number(s.best);
  }
}

/** Multiplies every parameter group's initial LR by `factor` until `batches` batches have run. */
export class SlowStart implements Algorithm {
  readonly name = "SlowStart";
  private scaled = false;
  constructor(
    readonly batches: number,
    readonly factor: number,
  ) {}

  match(event: Event, state: State): boolean {
    if (event !== Event.BEFORE_TRAIN_BATCH) return false;
    return !this.scaled ? state.timestamp.batch < this.batches : state.timestamp.batch >= this.batches;
  }

  apply(_event: Event, state: State, logger: Logger): void {
    const f = this.scaled ? 1 / this.factor : this.factor;
    for (const opt of state.optimizers) for (const g of opt.paramGroups) g.initialLr *= f;
    this.scaled = !this.scaled;
    logger.logText(`SlowStart: LR x${f} at batch ${state.timestamp.batch}`);
  }
}
