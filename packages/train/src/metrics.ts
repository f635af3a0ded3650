/**
 * Metrics: accumulate with `update`, read with `compute`, clear with `reset`.
 * They take host arrays (a prediction per example, a target per example) so
 * they do not depend on a device; a model's `updateMetric` turns its outputs
 * into those arrays (argmax over logits, masked positions). The accumulated
 * state is sums and counts, so ranks can add theirs together.
 */
import { MetricError } from "./errors.js";

export type Values = ArrayLike<number>;

export interface Metric {
  /** The name metrics are logged under: `metrics/<eval label>/<name>`. */
  readonly name: string;
  /** Higher is better (accuracy) or lower (loss): used by early stopping and best-checkpoint choice. */
  readonly higherIsBetter: boolean;
  update(preds: Values, targets: Values): void;
  compute(): number;
  reset(): void;
}

function checkLengths(name: string, preds: Values, targets: Values): void {
  if (preds.length !== targets.length) {
    throw new MetricError(`${name}: ${preds.length} predictions but ${targets.length} targets`);
  }
}

/** Fraction of predictions equal to their target; targets equal to `ignoreIndex` are skipped. */
export class Accuracy implements Metric {
  readonly higherIsBetter = true;
  correct = 0;
  total = 0;
  constructor(
    readonly name = "Accuracy",
    readonly ignoreIndex = -100,
  ) {}
  update(preds: Values, targets: Values): void {
    checkLengths(this.name, preds, targets);
    for (let i = 0; i < preds.length; i++) {
      if (targets[i] === this.ignoreIndex) continue;
      this.total++;
      if (preds[i] === targets[i]) this.correct++;
    }
  }
  compute(): number {
    return this.total === 0 ? 0 : this.correct / this.total;
  }
  reset(): void {
    this.correct = 0;
    this.total = 0;
  }
}

/** MLM accuracy over masked tokens only (labels of unmasked tokens are -100). */
export class MaskedAccuracy extends Accuracy {
  constructor(ignoreIndex = -100) {
    super("MaskedAccuracy", ignoreIndex);
  }
}

/**
 * Mean cross-entropy over tokens. `update(lossSums, counts)`: each pair is a
 * batch's summed loss and its number of (masked) tokens, so the mean is
 * weighted by tokens, not by batches.
 */
export class LanguageCrossEntropy implements Metric {
  readonly higherIsBetter = false;
  sum = 0;
  count = 0;
  constructor(readonly name = "LanguageCrossEntropy") {}
  update(lossSums: Values, counts: Values): void {
    checkLengths(this.name, lossSums, counts);
    for (let i = 0; i < lossSums.length; i++) {
      this.sum += lossSums[i]!;
      this.count += counts[i]!;
    }
  }
  compute(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }
  reset(): void {
    this.sum = 0;
    this.count = 0;
  }
}

/** Binary confusion counts, shared by F1 and Matthews. Class 1 is positive. */
abstract class BinaryConfusion implements Metric {
  abstract readonly name: string;
  readonly higherIsBetter = true;
  tp = 0;
  fp = 0;
  tn = 0;
  fn = 0;
  update(preds: Values, targets: Values): void {
    checkLengths(this.name, preds, targets);
    for (let i = 0; i < preds.length; i++) {
      const p = preds[i] === 1;
      const t = targets[i] === 1;
      if (p && t) this.tp++;
      else if (p) this.fp++;
      else if (t) this.fn++;
      else this.tn++;
    }
  }
  abstract compute(): number;
  reset(): void {
    this.tp = this.fp = this.tn = this.fn = 0;
  }
}

/** F1 of the positive class (1): 2TP / (2TP + FP + FN); 0 when undefined. */
export class BinaryF1 extends BinaryConfusion {
  readonly name: string;
  constructor(name = "BinaryF1") {
    super();
    this.name = name;
  }
  compute(): number {
    const d = 2 * this.tp + this.fp + this.fn;
    return d === 0 ? 0 : (2 * this.tp) / d;
  }
}

/**
 * Matthews correlation for any number of classes (Gorodkin's R_K, as
 * scikit-learn computes it); 0 when undefined (a constant predictor).
 */
export class MatthewsCorrelation implements Metric {
  readonly higherIsBetter = true;
  private readonly confusion = new Map<string, number>();
  constructor(readonly name = "MatthewsCorrelation") {}
  update(preds: Values, targets: Values): void {
    checkLengths(this.name, preds, targets);
    for (let i = 0; i < preds.length; i++) {
      const key = `${targets[i]},${preds[i]}`;
      this.confusion.set(key, (this.confusion.get(key) ?? 0) + 1);
    }
  }
  compute(): number {
    const tk = new Map<number, number>(); // true counts per class
    const pk = new Map<number, number>(); // predicted counts per class
    let s = 0;
    let c = 0;
    for (const [key, n] of this.confusion) {
      const [t, p] = key.split(",").map(Number) as [number, number];
      tk.set(t, (tk.get(t) ?? 0) + n);
      pk.set(p, (pk.get(p) ?? 0) + n);
      s += n;
      if (t === p) c += n;
    }
    let pt = 0;
    let pp = 0;
    let tt = 0;
    for (const [k, t] of tk) {
      pt += (pk.get(k) ?? 0) * t;
      tt += t * t;
    }
    for (const p of pk.values()) pp += p * p;
    const denom = Math.sqrt((s * s - pp) * (s * s - tt));
    return denom === 0 ? 0 : (c * s - pt) / denom;
  }
  reset(): void {
    this.confusion.clear();
  }
}

function pearson(x: number[], y: number[]): number {
  const n = x.length;
  if (n < 2) return 0;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  const d = Math.sqrt(sxx * syy);
  return d === 0 ? 0 : sxy / d;
}

/** Ranks with ties sharing their average rank (1-based). */
export function averageRanks(v: number[]): number[] {
  const idx = v.map((_, i) => i).sort((a, b) => v[a]! - v[b]!);
  const ranks = new Array<number>(v.length);
  let i = 0;
  while (i < idx.length) {
    let j = i;
    while (j + 1 < idx.length && v[idx[j + 1]!] === v[idx[i]!]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k]!] = r;
    i = j + 1;
  }
  return ranks;
}

/** Keeps every (prediction, target) pair; correlations need them all. */
abstract class PairMetric implements Metric {
  abstract readonly name: string;
  readonly higherIsBetter = true;
  protected preds: number[] = [];
  protected targets: number[] = [];
  update(preds: Values, targets: Values): void {
    checkLengths(this.name, preds, targets);
    for (let i = 0; i < preds.length; i++) {
      this.preds.push(preds[i]!);
      this.targets.push(targets[i]!);
    }
  }
  abstract compute(): number;
  reset(): void {
    this.preds = [];
    this.targets = [];
  }
}

export class PearsonCorrelation extends PairMetric {
  readonly name: string;
  constructor(name = "PearsonCorrelation") {
    super();
    this.name = name;
  }
  compute(): number {
    return pearson(this.preds, this.targets);
  }
}

/** Pearson correlation of the average ranks. */
export class SpearmanCorrelation extends PairMetric {
  readonly name: string;
  constructor(name = "SpearmanCorrelation") {
    super();
    this.name = name;
  }
  compute(): number {
    return pearson(averageRanks(this.preds), averageRanks(this.targets));
  }
}
