/**
 * Training time, as in Composer: a `Time` is a value with a unit
 * (`"2ep"`, `"70000ba"`, `"286720000sp"`, `"1e9tok"`, `"0.06dur"`), and a
 * `Timestamp` counts how far training has gone in every unit at once.
 */
import { TimeStringError } from "./errors.js";

export const TimeUnit = {
  EPOCH: "ep",
  BATCH: "ba",
  SAMPLE: "sp",
  TOKEN: "tok",
  /** A fraction of `maxDuration` (0.06dur = 6% of training). */
  DURATION: "dur",
} as const;
export type TimeUnit = (typeof TimeUnit)[keyof typeof TimeUnit];

const UNITS: readonly TimeUnit[] = ["ep", "ba", "sp", "tok", "dur"];
// Longest suffix first so "tok" is not read as "...k".
const TIME_RE =
  /^([0-9][0-9_]*(?:\.[0-9_]*)?(?:e[+-]?[0-9]+)?|\.[0-9]+(?:e[+-]?[0-9]+)?)(ep|ba|sp|tok|dur)$/i;

export class Time {
  readonly value: number;
  readonly unit: TimeUnit;
  constructor(value: number, unit: TimeUnit) {
    if (!UNITS.includes(unit))
      throw new TimeStringError(`unknown time unit '${unit}'; expected one of ${UNITS.join(", ")}`);
    if (!Number.isFinite(value) || value < 0) {
      throw new TimeStringError(`time value must be a finite number >= 0, got ${value}${unit}`);
    }
    if (unit !== "dur" && !Number.isInteger(value)) {
      throw new TimeStringError(`${value}${unit}: units other than 'dur' take whole numbers`);
    }
    this.value = value;
    this.unit = unit;
  }

  /** Parses `"2ep"`, `"70000ba"`, `"1e9tok"`, `"0.06dur"` (underscores allowed: `"70_000ba"`). */
  static parse(s: string): Time {
    const text = s.trim();
    const m = TIME_RE.exec(text);
    if (!m) {
      throw new TimeStringError(
        `invalid time string '${s}': expected a number followed by one of ${UNITS.join(", ")} (e.g. '2ep', '1000ba', '0.06dur')`,
      );
    }
    const value = Number(m[1]!.replaceAll("_", ""));
    const unit = m[2]!.toLowerCase() as TimeUnit;
    if (unit !== "dur" && !Number.isInteger(value)) {
      throw new TimeStringError(`invalid time string '${s}': '${unit}' takes a whole number`);
    }
    if (unit === "dur" && value > 1) {
      throw new TimeStringError(`invalid time string '${s}': a 'dur' fraction must be between 0 and 1`);
    }
    return new Time(value, unit);
  }

  /** Accepts a Time, a time string, or a bare integer (read as `defaultUnit`). */
  static from(x: Time | string | number, defaultUnit: TimeUnit = "ba"): Time {
    if (x instanceof Time) return x;
    if (typeof x === "number") return new Time(x, defaultUnit);
    return Time.parse(x);
  }

  toString(): string {
    return `${this.value}${this.unit}`;
  }
}

export interface TimestampState {
  epoch: number;
  batch: number;
  sample: number;
  token: number;
  batchInEpoch: number;
  sampleInEpoch: number;
  tokenInEpoch: number;
  /** Seconds of training (wall clock, summed across resumptions). */
  totalWallClockSeconds: number;
}

/** How far training has gone, in every unit. Immutable: updates return a new Timestamp. */
export class Timestamp implements Readonly<TimestampState> {
  readonly epoch: number;
  readonly batch: number;
  readonly sample: number;
  readonly token: number;
  readonly batchInEpoch: number;
  readonly sampleInEpoch: number;
  readonly tokenInEpoch: number;
  readonly totalWallClockSeconds: number;

  constructor(s: Partial<TimestampState> = {}) {
    this.epoch = s.epoch ?? 0;
    this.batch = s.batch ?? 0;
    this.sample = s.sample ?? 0;
    this.token = s.token ?? 0;
    this.batchInEpoch = s.batchInEpoch ?? 0;
    this.sampleInEpoch = s.sampleInEpoch ?? 0;
    this.tokenInEpoch = s.tokenInEpoch ?? 0;
    this.totalWallClockSeconds = s.totalWallClockSeconds ?? 0;
  }

  /** The count in `unit` (not 'dur': use `fractionOf`). */
  get(unit: Exclude<TimeUnit, "dur">): number {
    switch (unit) {
      case "ep":
        return this.epoch;
      case "ba":
        return this.batch;
      case "sp":
        return this.sample;
      case "tok":
        return this.token;
    }
  }

  /** After one optimizer step over `samples` samples and `tokens` tokens. */
  afterBatch(samples: number, tokens: number, seconds = 0): Timestamp {
    return new Timestamp({
      ...this.toJSON(),
      batch: this.batch + 1,
      sample: this.sample + samples,
      token: this.token + tokens,
      batchInEpoch: this.batchInEpoch + 1,
      sampleInEpoch: this.sampleInEpoch + samples,
      tokenInEpoch: this.tokenInEpoch + tokens,
      totalWallClockSeconds: this.totalWallClockSeconds + seconds,
    });
  }

  afterEpoch(): Timestamp {
    return new Timestamp({
      ...this.toJSON(),
      epoch: this.epoch + 1,
      batchInEpoch: 0,
      sampleInEpoch: 0,
      tokenInEpoch: 0,
    });
  }

  toJSON(): TimestampState {
    return {
      epoch: this.epoch,
      batch: this.batch,
      sample: this.sample,
      token: this.token,
      batchInEpoch: this.batchInEpoch,
      sampleInEpoch: this.sampleInEpoch,
      tokenInEpoch: this.tokenInEpoch,
      totalWallClockSeconds: this.totalWallClockSeconds,
    };
  }

  toString(): string {
    return `[epoch=${this.epoch} batch=${this.batch} sample=${this.sample} token=${this.token}]`;
  }
}

/**
 * Converts `t` to an absolute Time in a countable unit. `dur` is taken as a
 * fraction of `maxDuration` (in its unit); epochs become batches when the
 * dataloader length is known (as Composer's schedulers do).
 */
export function resolveTime(
  t: Time,
  maxDuration: Time,
  batchesPerEpoch?: number,
  opts: { epochsToBatches?: boolean } = {},
): Time {
  let out = t;
  if (t.unit === "dur") {
    if (maxDuration.unit === "dur") throw new TimeStringError("maxDuration cannot be given in 'dur'");
    if (maxDuration.unit === "ep" && opts.epochsToBatches) {
      if (batchesPerEpoch === undefined) {
        throw new TimeStringError(`cannot convert ${t} to batches: the dataloader has no length`);
      }
      return new Time(Math.floor(t.value * maxDuration.value * batchesPerEpoch), "ba");
    }
    out = new Time(Math.floor(t.value * maxDuration.value), maxDuration.unit);
  }
  if (out.unit === "ep" && opts.epochsToBatches) {
    if (batchesPerEpoch === undefined) {
      throw new TimeStringError(`cannot convert ${t} to batches: the dataloader has no length`);
    }
    return new Time(out.value * batchesPerEpoch, "ba");
  }
  return out;
}

/** True once `ts` has reached `t` (an absolute time, not 'dur'). */
export function reached(ts: Timestamp, t: Time): boolean {
  if (t.unit === "dur") throw new TimeStringError(`reached(): resolve '${t}' against maxDuration first`);
  return ts.get(t.unit) >= t.value;
}

/** Fraction of `maxDuration` completed, in [0, 1]. */
export function fractionOf(ts: Timestamp, maxDuration: Time): number {
  if (maxDuration.unit === "dur") return 0;
  if (maxDuration.value === 0) return 1;
  return Math.min(1, ts.get(maxDuration.unit) / maxDuration.value);
}
