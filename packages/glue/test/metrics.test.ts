import { describe, expect, it } from "vitest";
import {
  GLUE_TASKS,
  type TaskResult,
  computeTaskMetrics,
  formatReportTable,
  glueReport,
  taskScore,
  writeReport,
} from "../src/index.js";
import { tmpDir } from "./helpers.js";
import * as fs from "node:fs";

describe("task metrics", () => {
  it("CoLA: Matthews correlation, by hand", () => {
    // tp 3, tn 2, fp 1, fn 2: (3*2 - 1*2) / sqrt(4 * 5 * 3 * 4) = 4 / sqrt(240)
    const preds = [1, 1, 1, 1, 0, 0, 0, 0];
    const gold = [1, 1, 1, 0, 1, 1, 0, 0];
    const m = computeTaskMetrics(GLUE_TASKS.cola, preds, gold);
    expect(Object.keys(m)).toEqual(["matthews"]);
    expect(m.matthews).toBeCloseTo(4 / Math.sqrt(240), 12);
  });

  it("MRPC: accuracy and F1 of class 1, by hand", () => {
    const preds = [1, 1, 0, 0, 1];
    const gold = [1, 0, 1, 0, 1];
    const m = computeTaskMetrics(GLUE_TASKS.mrpc, preds, gold);
    expect(m.accuracy).toBeCloseTo(3 / 5, 12);
    expect(m.f1).toBeCloseTo((2 * 2) / (2 * 2 + 1 + 1), 12); // tp 2, fp 1, fn 1
    expect(Object.keys(computeTaskMetrics(GLUE_TASKS.qqp, preds, gold))).toEqual(["accuracy", "f1"]);
  });

  it("MNLI: three-class accuracy", () => {
    expect(computeTaskMetrics(GLUE_TASKS.mnli, [0, 1, 2, 2], [0, 1, 1, 2]).accuracy).toBe(0.75);
  });

  it("STS-B: Pearson and Spearman, by hand", () => {
    const preds = [1, 2, 3, 4];
    const gold = [1, 3, 2, 4];
    const m = computeTaskMetrics(GLUE_TASKS.stsb, preds, gold);
    // Both are rank-like here: means 2.5, sxy = 2.25+(-0.5)(0.5)+(0.5)(-0.5)+2.25 = 4, sxx = syy = 5
    expect(m.pearson).toBeCloseTo(0.8, 12);
    expect(m.spearman).toBeCloseTo(0.8, 12);
    // Spearman sees only the order: a monotone but non-linear prediction scores 1.
    const m2 = computeTaskMetrics(GLUE_TASKS.stsb, [1, 10, 100, 1000], [0, 1, 2, 3]);
    expect(m2.spearman).toBeCloseTo(1, 12);
    expect(m2.pearson).toBeLessThan(0.9);
  });
});

function result(task: TaskResult["task"], metrics: TaskResult["metrics"], seed = 19): TaskResult {
  return { task, seed, metrics, trainExamples: 10, steps: 3, trainSeconds: 1, evalSeconds: 0.1, hparams: {} };
}

describe("GLUE score", () => {
  it("a task's score is the mean of its parts", () => {
    expect(taskScore("mrpc", { dev: { accuracy: 0.8, f1: 0.9 } })).toBeCloseTo(0.85, 12);
    expect(
      taskScore("mnli", { dev_matched: { accuracy: 0.84 }, dev_mismatched: { accuracy: 0.86 } }),
    ).toBeCloseTo(0.85, 12);
    expect(taskScore("stsb", { dev: { pearson: 0.5, spearman: 0.9 } })).toBeCloseTo(0.9, 12);
    expect(taskScore("mnli", { dev_matched: { accuracy: 0.84 } })).toBeUndefined();
  });

  it("averages seeds per task, then the eight tasks", () => {
    const all = [
      result("cola", { dev: { matthews: 0.6 } }),
      result("sst2", { dev: { accuracy: 0.9 } }),
      result("mrpc", { dev: { accuracy: 0.8, f1: 0.9 } }),
      result("stsb", { dev: { pearson: 0.88, spearman: 0.9 } }),
      result("qqp", { dev: { accuracy: 0.9, f1: 0.86 } }),
      result("mnli", { dev_matched: { accuracy: 0.84 }, dev_mismatched: { accuracy: 0.86 } }),
      result("qnli", { dev: { accuracy: 0.9 } }),
      result("rte", { dev: { accuracy: 0.7 } }),
      result("rte", { dev: { accuracy: 0.8 } }, 8364),
    ];
    const r = glueReport(all);
    expect(r.taskScores.rte).toBeCloseTo(75, 10);
    expect(r.taskScores.mrpc).toBeCloseTo(85, 10);
    const expected = (60 + 90 + 85 + 90 + 88 + 85 + 90 + 75) / 8;
    expect(r.glue).toBeCloseTo(expected, 10);
    expect(r.missingTasks).toEqual([]);
    const table = formatReportTable(r);
    expect(table).toContain(`GLUE   ${expected.toFixed(2)}`);
    expect(table).toMatch(/RTE\s+8364\s+dev\s+accuracy 80\.00/);
  });

  it("without all eight tasks there is no GLUE score, only a partial average; JSON is written", () => {
    const r = glueReport([
      result("rte", { dev: { accuracy: 0.6 } }),
      result("mrpc", { dev: { accuracy: 0.7, f1: 0.8 } }),
    ]);
    expect(r.glue).toBeNull();
    expect(r.partialAverage).toBeCloseTo(67.5, 10);
    expect(r.missingTasks).toEqual(["cola", "sst2", "stsb", "qqp", "mnli", "qnli"]);
    expect(formatReportTable(r)).toContain("no GLUE score without CoLA, SST-2, STS-B, QQP, MNLI, QNLI");
    const file = writeReport(r, tmpDir());
    const back = JSON.parse(fs.readFileSync(file, "utf8"));
    expect(back.format).toBe("mbert-glue-report");
    expect(back.taskScores.rte).toBeCloseTo(60, 10);
  });
});
