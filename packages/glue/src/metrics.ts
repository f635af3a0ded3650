// Which metric each GLUE task reports, built from @mbert/train's metrics, and
// the GLUE score: one number per task, then their mean.

import {
  Accuracy,
  BinaryF1,
  MatthewsCorrelation,
  type Metric,
  PearsonCorrelation,
  SpearmanCorrelation,
} from "@mbert/train";
import type { GlueMetricName, GlueTask, GlueTaskName } from "./tasks.js";

const FACTORIES: Record<GlueMetricName, () => Metric> = {
  accuracy: () => new Accuracy("accuracy"),
  // F1 of class 1 (paraphrase / duplicate), as GLUE reports for MRPC and QQP.
  f1: () => new BinaryF1("f1"),
  matthews: () => new MatthewsCorrelation("matthews"),
  pearson: () => new PearsonCorrelation("pearson"),
  spearman: () => new SpearmanCorrelation("spearman"),
};

/** Fresh metric objects for a task, keyed by metric name. */
export function taskMetrics(task: GlueTask): Record<string, Metric> {
  const out: Record<string, Metric> = {};
  for (const m of task.metrics) out[m] = FACTORIES[m]();
  return out;
}

/** A task's metrics over host predictions (class ids, or scores for regression) and targets. */
export function computeTaskMetrics(
  task: GlueTask,
  preds: ArrayLike<number>,
  targets: ArrayLike<number>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, m] of Object.entries(taskMetrics(task))) {
    m.update(preds, targets);
    out[name] = m.compute();
  }
  return out;
}

/**
 * The scores the GLUE average takes from each task, as (evaluation set,
 * metric) pairs. A task's score is the mean of its pairs; the GLUE score is
 * the mean of the eight task scores. This is the rule of the MosaicBERT
 * reference (mosaicml/examples benchmarks/bert/glue.py, which averages every
 * metric a task's evaluators report): MNLI is the mean of matched and
 * mismatched accuracy, MRPC and QQP the mean of accuracy and F1, and STS-B
 * Spearman alone (the reference evaluates STS-B on Spearman only; we also
 * report Pearson, but it does not enter the average).
 */
export const GLUE_SCORE_PARTS: Readonly<Record<GlueTaskName, readonly [string, GlueMetricName][]>> = {
  cola: [["dev", "matthews"]],
  sst2: [["dev", "accuracy"]],
  mrpc: [
    ["dev", "accuracy"],
    ["dev", "f1"],
  ],
  stsb: [["dev", "spearman"]],
  qqp: [
    ["dev", "accuracy"],
    ["dev", "f1"],
  ],
  mnli: [
    ["dev_matched", "accuracy"],
    ["dev_mismatched", "accuracy"],
  ],
  qnli: [["dev", "accuracy"]],
  rte: [["dev", "accuracy"]],
};

/** A task's GLUE score (0-1) from its metrics by evaluation set; undefined when a part is missing. */
export function taskScore(
  task: GlueTaskName,
  metrics: Readonly<Record<string, Readonly<Record<string, number>>>>,
): number | undefined {
  const parts = GLUE_SCORE_PARTS[task];
  let sum = 0;
  for (const [split, metric] of parts) {
    const v = metrics[split]?.[metric];
    if (v === undefined || !Number.isFinite(v)) return undefined;
    sum += v;
  }
  return sum / parts.length;
}
