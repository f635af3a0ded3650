/**
 * Saves a checkpoint every `saveInterval` (at BATCH_CHECKPOINT or
 * EPOCH_CHECKPOINT, and at the end of fit), keeps the newest
 * `numCheckpointsToKeep`, and points `latest` at the newest.
 */
import { Callback } from "../callback.js";
import { type SaveOptions, pruneCheckpoints, saveCheckpoint } from "../checkpoint.js";
import type { Logger } from "../logger.js";
import type { State } from "../state.js";
import { Time, resolveTime } from "../time.js";

export interface CheckpointSaverOptions {
  folder: string;
  /** '1ep' by default; any unit, or a 'dur' fraction. */
  saveInterval?: Time | string | number;
  /** -1 keeps every checkpoint (default). */
  numCheckpointsToKeep?: number;
  overwrite?: boolean;
  /** Also save when fit ends (default true). */
  saveAtEnd?: boolean;
  saveOptions?: SaveOptions;
}

export class CheckpointSaver extends Callback {
  readonly folder: string;
  readonly interval: Time;
  readonly keep: number;
  /** Paths of the checkpoints this saver wrote, in order. */
  readonly saved: string[] = [];
  private lastSavedBatch = -1;
  private lastMark = 0;

  constructor(private readonly opts: CheckpointSaverOptions) {
    super();
    this.folder = opts.folder;
    this.interval = Time.from(opts.saveInterval ?? "1ep");
    this.keep = opts.numCheckpointsToKeep ?? -1;
  }

  override fitStart(state: State): void {
    this.lastMark = this.mark(state);
  }

  private step(state: State): Time {
    if (this.interval.unit !== "dur" || !state.maxDuration) return this.interval;
    return resolveTime(this.interval, state.maxDuration, state.dataloaderLen, { epochsToBatches: true });
  }

  /** How many whole intervals have elapsed. */
  private mark(state: State): number {
    const t = this.step(state);
    if (t.unit === "dur" || t.value === 0) return 0;
    return Math.floor(state.timestamp.get(t.unit) / t.value);
  }

  private save(state: State, logger: Logger): void {
    if (state.timestamp.batch === this.lastSavedBatch) return;
    // A non-finite loss still on the device stops the run here, before a bad checkpoint is written.
    state.readLosses();
    const dir = saveCheckpoint(this.folder, state, {
      overwrite: this.opts.overwrite ?? true,
      ...this.opts.saveOptions,
    });
    this.lastSavedBatch = state.timestamp.batch;
    this.saved.push(dir);
    logger.logText(`checkpoint saved: ${dir}`);
    pruneCheckpoints(this.folder, this.keep);
  }

  /** Saves when another whole interval has elapsed since the last save. */
  private saveIfDue(state: State, logger: Logger): void {
    const m = this.mark(state);
    if (m > this.lastMark) {
      this.lastMark = m;
      this.save(state, logger);
    }
  }

  override batchCheckpoint(state: State, logger: Logger): void {
    if (this.interval.unit !== "ep") this.saveIfDue(state, logger);
  }

  override epochCheckpoint(state: State, logger: Logger): void {
    if (this.interval.unit === "ep") this.saveIfDue(state, logger);
  }

  override fitEnd(state: State, logger: Logger): void {
    if (this.opts.saveAtEnd !== false) this.save(state, logger);
  }
}
