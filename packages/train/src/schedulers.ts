/**
 * Learning-rate schedules with Composer's semantics. A scheduler is
 * stateless: it maps the timestamp to a multiplier of each parameter
 * group's initial LR. The trainer evaluates it before every optimizer step,
 * so the first step of a warmup runs at multiplier 0, as in Composer.
 *
 * Time arguments take time strings; `dur` is a fraction of maxDuration and
 * epochs become batches (so a warmup can end mid-epoch).
 */
import { TrainerConfigError } from "./errors.js";
import { Time, type Timestamp, resolveTime } from "./time.js";

export interface ScheduleContext {
  maxDuration: Time;
  /** Batches per epoch, when the dataloader has a length. */
  batchesPerEpoch?: number;
}

export interface Scheduler {
  readonly name: string;
  /** The LR multiplier at `ts`. */
  factor(ts: Timestamp, ctx: ScheduleContext): number;
  /** The arguments, for logs and checkpoints. */
  toJSON(): Record<string, unknown>;
}

type TimeArg = Time | string;

function absolute(t: TimeArg, ctx: ScheduleContext): Time {
  return resolveTime(Time.from(t), ctx.maxDuration, ctx.batchesPerEpoch, { epochsToBatches: true });
}

function countIn(ts: Timestamp, t: Time): number {
  if (t.unit === "dur" || t.unit === "ep") throw new TrainerConfigError(`scheduler: unexpected unit in ${t}`);
  return ts.get(t.unit);
}

/** Warmup from 0 to 1 over tWarmup, then `after(frac)` with frac the fraction of (tMax - tWarmup) done. */
abstract class WarmupScheduler implements Scheduler {
  abstract readonly name: string;
  constructor(
    readonly tWarmup: TimeArg,
    readonly tMax: TimeArg,
  ) {
    Time.from(tWarmup);
    Time.from(tMax);
  }

  protected abstract after(frac: number): number;

  factor(ts: Timestamp, ctx: ScheduleContext): number {
    const warm = absolute(this.tWarmup, ctx);
    const max = absolute(this.tMax, ctx);
    if (warm.unit !== max.unit) {
      throw new TrainerConfigError(
        `${this.name}: t_warmup (${this.tWarmup}) and t_max (${this.tMax}) resolve to different units ` +
          `(${warm.unit} vs ${max.unit}); give them in the same unit`,
      );
    }
    const now = countIn(ts, warm);
    if (now < warm.value) return now / warm.value;
    const span = max.value - warm.value;
    const frac = span > 0 ? Math.min(1, (now - warm.value) / span) : 0;
    return this.after(frac);
  }

  abstract toJSON(): Record<string, unknown>;
}

/** Linear warmup to 1, then linear decay from alphaI to alphaF at tMax. */
export class LinearWithWarmupScheduler extends WarmupScheduler {
  readonly name = "linear_decay_with_warmup";
  readonly alphaI: number;
  readonly alphaF: number;
  constructor(opts: { tWarmup: TimeArg; alphaI?: number; alphaF?: number; tMax?: TimeArg }) {
    super(opts.tWarmup, opts.tMax ?? "1dur");
    this.alphaI = opts.alphaI ?? 1;
    this.alphaF = opts.alphaF ?? 0;
  }
  protected after(frac: number): number {
    return this.alphaI + frac * (this.alphaF - this.alphaI);
  }
  toJSON() {
    return {
      name: this.name,
      t_warmup: String(this.tWarmup),
      alpha_i: this.alphaI,
      alpha_f: this.alphaF,
      t_max: String(this.tMax),
    };
  }
}

/** Linear warmup to 1, then half a cosine from 1 down to alphaF at tMax. */
export class CosineAnnealingWithWarmupScheduler extends WarmupScheduler {
  readonly name = "cosine_with_warmup";
  readonly alphaF: number;
  constructor(opts: { tWarmup: TimeArg; alphaF?: number; tMax?: TimeArg }) {
    super(opts.tWarmup, opts.tMax ?? "1dur");
    this.alphaF = opts.alphaF ?? 0;
  }
  protected after(frac: number): number {
    return this.alphaF + ((1 - this.alphaF) * (1 + Math.cos(Math.PI * frac))) / 2;
  }
  toJSON() {
    return {
      name: this.name,
      t_warmup: String(this.tWarmup),
      alpha_f: this.alphaF,
      t_max: String(this.tMax),
    };
  }
}

/** Linear warmup to 1, then a constant alpha. */
export class ConstantWithWarmupScheduler extends WarmupScheduler {
  readonly name = "constant_with_warmup";
  readonly alpha: number;
  constructor(opts: { tWarmup: TimeArg; alpha?: number; tMax?: TimeArg }) {
    super(opts.tWarmup, opts.tMax ?? "1dur");
    this.alpha = opts.alpha ?? 1;
  }
  protected after(_frac: number): number {
    return this.alpha;
  }
  toJSON() {
    return { name: this.name, t_warmup: String(this.tWarmup), alpha: this.alpha, t_max: String(this.tMax) };
  }
}

/** The product of every scheduler's factor (1 when there is none). */
export function combinedFactor(
  schedulers: readonly Scheduler[],
  ts: Timestamp,
  ctx: ScheduleContext,
): number {
  let f = 1;
  for (const s of schedulers) f *= s.factor(ts, ctx);
  return f;
}

/** Builds a scheduler from its config name (as in the YAML recipes). */
export function buildScheduler(name: string, args: Record<string, unknown>): Scheduler {
  const t = (k: string) => args[k] as TimeArg | undefined;
  const n = (k: string) => args[k] as number | undefined;
  switch (name) {
    case "linear_decay_with_warmup":
      return new LinearWithWarmupScheduler({
        tWarmup: t("t_warmup") ?? "0ba",
        alphaI: n("alpha_i"),
        alphaF: n("alpha_f"),
        tMax: t("t_max"),
      });
    case "cosine_with_warmup":
      return new CosineAnnealingWithWarmupScheduler({
        tWarmup: t("t_warmup") ?? "0ba",
        alphaF: n("alpha_f"),
        tMax: t("t_max"),
      });
    case "constant_with_warmup":
      return new ConstantWithWarmupScheduler({
        tWarmup: t("t_warmup") ?? "0ba",
        alpha: n("alpha"),
        tMax: t("t_max"),
      });
    default:
      throw new TrainerConfigError(
        `unknown scheduler '${name}'; expected linear_decay_with_warmup, cosine_with_warmup or constant_with_warmup`,
      );
  }
}
