// Results across tasks: a table for people, JSON for machines, and the GLUE
// score (see GLUE_SCORE_PARTS for exactly what it averages).

import * as path from "node:path";
import { writeFileAtomic } from "@mbert/model";
import { GLUE_SCORE_PARTS, taskScore } from "./metrics.js";
import { GLUE_TASK_NAMES, GLUE_TASKS, type GlueTaskName } from "./tasks.js";

/** The outcome of finetuning (or evaluating) one task with one seed. */
export interface TaskResult {
  task: GlueTaskName;
  seed: number;
  /** Metric values (0-1) by evaluation set ("dev", "dev_matched", ...) and metric name. */
  metrics: Record<string, Record<string, number>>;
  /** Training examples used and optimizer steps taken (0 for evaluation only). */
  trainExamples: number;
  steps: number;
  trainSeconds: number;
  evalSeconds: number;
  /** Hyperparameters the run used. */
  hparams: Record<string, number | string>;
}

export interface GlueReport {
  format: "mbert-glue-report";
  version: 1;
  results: TaskResult[];
  /** Per task: the mean over seeds of its score (0-100). */
  taskScores: Partial<Record<GlueTaskName, number>>;
  /** Mean of the eight task scores (0-100), or null unless all eight are present. */
  glue: number | null;
  /** Mean of the task scores that are present (0-100), or null when none is. */
  partialAverage: number | null;
  /** The tasks the GLUE score still needs. */
  missingTasks: GlueTaskName[];
  /** In words: which scores the averages take. */
  averaging: string;
}

export const GLUE_AVERAGING =
  "GLUE = mean over CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE of each task's score (mean over seeds); " +
  "a task's score is the mean of: CoLA Matthews; SST-2 acc; MRPC acc and F1; STS-B Spearman; " +
  "QQP acc and F1; MNLI matched and mismatched acc; QNLI acc; RTE acc (as mosaicml/examples glue.py)";

/** Builds the report: per-task scores averaged over seeds, then the GLUE score. */
export function glueReport(results: readonly TaskResult[]): GlueReport {
  const byTask = new Map<GlueTaskName, number[]>();
  for (const r of results) {
    const s = taskScore(r.task, r.metrics);
    if (s === undefined) continue;
    const list = byTask.get(r.task) ?? [];
    list.push(s * 100);
    byTask.set(r.task, list);
  }
  const taskScores: Partial<Record<GlueTaskName, number>> = {};
  for (const name of GLUE_TASK_NAMES) {
    const list = byTask.get(name);
    if (list) taskScores[name] = list.reduce((a, b) => a + b, 0) / list.length;
  }
  const present = Object.values(taskScores) as number[];
  const missingTasks = GLUE_TASK_NAMES.filter((n) => taskScores[n] === undefined);
  const partialAverage = present.length ? present.reduce((a, b) => a + b, 0) / present.length : null;
  return {
    format: "mbert-glue-report",
    version: 1,
    results: [...results],
    taskScores,
    glue: missingTasks.length === 0 ? partialAverage : null,
    partialAverage,
    missingTasks,
    averaging: GLUE_AVERAGING,
  };
}

const pct = (v: number | undefined) => (v === undefined ? "-" : (v * 100).toFixed(2));

/** A fixed-width table: one row per task, seed and evaluation set; then the task scores and the GLUE score. */
export function formatReportTable(report: GlueReport): string {
  const rows: string[][] = [["task", "seed", "eval", "metrics", "steps", "train s"]];
  for (const r of report.results) {
    const t = GLUE_TASKS[r.task];
    for (const [split, values] of Object.entries(r.metrics)) {
      const m = t.metrics.map((name) => `${name} ${pct(values[name])}`).join("  ");
      rows.push([t.displayName, String(r.seed), split, m, String(r.steps), r.trainSeconds.toFixed(1)]);
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) =>
    r
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join("  ")
      .trimEnd();
  const out = [line(rows[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)];
  out.push("");
  for (const name of GLUE_TASK_NAMES) {
    const s = report.taskScores[name];
    if (s === undefined) continue;
    const parts = GLUE_SCORE_PARTS[name]
      .map(([split, m]) => (split === "dev" ? m : `${m}(${split})`))
      .join("+");
    out.push(`${GLUE_TASKS[name].displayName.padEnd(6)} score ${s.toFixed(2)}  (${parts})`);
  }
  if (report.glue !== null) out.push(`GLUE   ${report.glue.toFixed(2)}  (mean of 8 task scores)`);
  else if (report.partialAverage !== null) {
    out.push(
      `average of ${8 - report.missingTasks.length} task(s) ${report.partialAverage.toFixed(2)}; ` +
        `no GLUE score without ${report.missingTasks.map((n) => GLUE_TASKS[n].displayName).join(", ")}`,
    );
  }
  return out.join("\n");
}

/** Writes `glue-report.json` into `dir` (created); returns its path. */
export function writeReport(report: GlueReport, dir: string): string {
  const file = path.join(dir, "glue-report.json");
  writeFileAtomic(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
