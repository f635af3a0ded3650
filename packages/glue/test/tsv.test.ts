import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  GLUE_TASKS,
  GlueFileError,
  GlueRowError,
  getTask,
  parseGlueTsv,
  parseTaskList,
  readGlueSplit,
  splitSpec,
} from "../src/index.js";
import { GLUE_DIR, HAVE_SHARED, tmpDir } from "./helpers.js";

// The files in the shared data folder and their official row counts (data README).
const REAL: [string, string, number][] = [
  ["cola", "dev", 1043],
  ["cola", "train", 8551],
  ["sst2", "dev", 872],
  ["sst2", "train", 67349],
  ["mrpc", "dev", 408],
  ["mrpc", "train", 3668],
  ["rte", "dev", 277],
  ["rte", "train", 2490],
  ["stsb", "dev", 1500],
  ["stsb", "train", 5749],
  ["qnli", "dev", 5463],
];

describe.skipIf(!HAVE_SHARED)("real GLUE files", () => {
  it.each(REAL)("%s %s parses every row (%i)", async (name, split, rows) => {
    const task = getTask(name);
    const data = await readGlueSplit(GLUE_DIR, task, split);
    expect(data.examples.length).toBe(rows);
    expect(splitSpec(task, split).officialRows).toBe(rows);
    expect(data.badRows).toEqual([]);
    const wrong = data.examples.filter(
      (ex) =>
        typeof ex.textA !== "string" ||
        (ex.textB === null) !== (task.textB === null) ||
        (task.kind === "regression"
          ? !(ex.label >= 0 && ex.label <= 5)
          : !(Number.isInteger(ex.label) && ex.label >= 0 && ex.label < task.numLabels)),
    );
    expect(wrong).toEqual([]);
  });

  it("reads the columns each format names", async () => {
    // First data rows, as in the files.
    const mrpc = await readGlueSplit(GLUE_DIR, GLUE_TASKS.mrpc, "dev", { limit: 1 });
    expect(mrpc.examples[0]!.line).toBe(2);
    expect(mrpc.examples[0]!.textA.startsWith("He said the foodservice pie business")).toBe(true);
    expect(mrpc.examples[0]!.label).toBe(1);
    const cola = await readGlueSplit(GLUE_DIR, GLUE_TASKS.cola, "dev", { limit: 1 });
    expect(cola.examples[0]).toEqual({
      line: 1,
      textA: "The sailors rode the breeze clear of the rocks.",
      textB: null,
      label: 1,
    });
    const stsb = await readGlueSplit(GLUE_DIR, GLUE_TASKS.stsb, "dev", { limit: 1 });
    expect(stsb.examples[0]!.label).toBe(5);
    expect(stsb.examples[0]!.textB).toBe("A man wearing a hard hat is dancing.");
    const qnli = await readGlueSplit(GLUE_DIR, GLUE_TASKS.qnli, "dev");
    const entail = qnli.examples.filter((e) => e.label === 0).length;
    expect(entail).toBe(2702); // "entailment" is class 0
  });

  it("the last CoLA dev row, which has no newline after it, is read", async () => {
    const data = await readGlueSplit(GLUE_DIR, GLUE_TASKS.cola, "dev");
    const last = data.examples[data.examples.length - 1]!;
    expect(last.line).toBe(1043);
    expect(last.textA.length).toBeGreaterThan(0);
  });
});

describe("bad rows", () => {
  const sst2 = GLUE_TASKS.sst2;
  const stsb = GLUE_TASKS.stsb;

  it("a row with the wrong number of fields names file and line", () => {
    const text = "sentence\tlabel\ngood movie\t1\nbad\tmovie\t0\nfine\t1\n";
    const err = (() => {
      try {
        parseGlueTsv(text, sst2, sst2.train, "x/SST-2/train.tsv");
      } catch (e) {
        return e;
      }
    })() as GlueRowError;
    expect(err).toBeInstanceOf(GlueRowError);
    expect(err.code).toBe("GLUE_BAD_ROW_COLUMNS");
    expect(err.file).toBe("x/SST-2/train.tsv");
    expect(err.line).toBe(3);
    expect(err.message).toContain("x/SST-2/train.tsv:3:");
    expect(err.message).toContain("3 tab-separated fields");
  });

  it("a label outside the label set, and a blank line, are errors", () => {
    const text = "sentence\tlabel\ngood\t1\nmeh\t2\n\nok\t0\n";
    expect(() => parseGlueTsv(text, sst2, sst2.eval[0]!, "dev.tsv")).toThrowError(
      /dev\.tsv:3: label "2" is not one of "0", "1".*and 1 more bad row/,
    );
    try {
      parseGlueTsv(text, sst2, sst2.eval[0]!, "dev.tsv");
    } catch (e) {
      const err = e as GlueRowError;
      expect(err.rows.map((r) => [r.line, r.kind])).toEqual([
        [3, "LABEL"],
        [4, "COLUMNS"],
      ]);
      expect(err.total).toBe(2);
    }
  });

  it("an STS-B score that is not a number in [0, 5] is an error", () => {
    const header = stsb.train.header!.join("\t");
    const row = (score: string) => `0\tg\tf\t2012\t0\ts\ts\tA man.\tA woman.\t${score}`;
    const file = "STS-B/train.tsv";
    expect(() =>
      parseGlueTsv(`${header}\n${row("2.5")}\n${row("abc")}\n`, stsb, stsb.train, file),
    ).toThrowError(/STS-B\/train\.tsv:3: score "abc"/);
    expect(() => parseGlueTsv(`${header}\n${row("5.5")}\n`, stsb, stsb.train, file)).toThrowError(
      /:2: score "5.5"/,
    );
    expect(() => parseGlueTsv(`${header}\n${row("")}\n`, stsb, stsb.train, file)).toThrowError(GlueRowError);
    const ok = parseGlueTsv(`${header}\n${row("3.800")}\n`, stsb, stsb.train, file);
    expect(ok.examples[0]!.label).toBeCloseTo(3.8);
  });

  it('with badRows: "report", bad rows are left out and listed, not skipped silently', () => {
    const text = "sentence\tlabel\ngood\t1\nmeh\tx\nok\t0\n";
    const data = parseGlueTsv(text, sst2, sst2.train, "t.tsv", { badRows: "report" });
    expect(data.examples.map((e) => e.line)).toEqual([2, 4]);
    expect(data.badRows).toEqual([
      { file: "t.tsv", line: 3, kind: "LABEL", detail: expect.stringContaining('"x"') },
    ]);
  });

  it("a wrong header is a GlueFileError; the MRPC BOM is accepted", () => {
    expect(() => parseGlueTsv("text\tlabel\nhi\t1\n", sst2, sst2.train, "t.tsv")).toThrowError(GlueFileError);
    const mrpc = GLUE_TASKS.mrpc;
    const text = `\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t1\t2\tA.\tB.\r\n`;
    const data = parseGlueTsv(text, mrpc, mrpc.eval[0]!, "MRPC/dev.tsv");
    expect(data.examples).toEqual([{ line: 2, textA: "A.", textB: "B.", label: 0 }]);
  });

  it("a missing file says where it looked", async () => {
    const dir = tmpDir();
    await expect(readGlueSplit(dir, GLUE_TASKS.rte, "train")).rejects.toMatchObject({
      code: "GLUE_FILE_MISSING",
      message: expect.stringContaining(path.join(dir, "RTE", "train.tsv")),
    });
  });
});

describe("formats of the tasks not in the shared folder (generated files)", () => {
  it("MNLI: 12-column train, 16-column dev sets, text labels in the HF order", async () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, "MNLI"));
    const mnli = GLUE_TASKS.mnli;
    const row = (n: number, gold: string, extra: number) =>
      [
        String(n),
        "1",
        "1e",
        "fiction",
        "( a )",
        "( b )",
        "(ROOT a)",
        "(ROOT b)",
        `premise ${n}`,
        `hypothesis ${n}`,
      ]
        .concat(Array(extra).fill("neutral"))
        .concat([gold])
        .join("\t");
    fs.writeFileSync(
      path.join(dir, "MNLI", "train.tsv"),
      `${mnli.train.header!.join("\t")}\n${row(0, "entailment", 1)}\n${row(1, "contradiction", 1)}\n`,
    );
    for (const spec of mnli.eval) {
      fs.writeFileSync(
        path.join(dir, "MNLI", spec.file),
        `${spec.header!.join("\t")}\n${row(0, "neutral", 5)}\n${row(1, "entailment", 5)}\n${row(2, "contradiction", 5)}\n`,
      );
    }
    const train = await readGlueSplit(dir, mnli, "train");
    expect(train.examples.map((e) => e.label)).toEqual([0, 2]);
    expect(train.examples[1]!.textB).toBe("hypothesis 1");
    const mm = await readGlueSplit(dir, mnli, "dev_mismatched");
    expect(mm.examples.map((e) => e.label)).toEqual([1, 0, 2]);
    expect(mm.examples[0]!.textA).toBe("premise 0");
    // A dev row in the train layout (12 fields) is refused.
    fs.writeFileSync(
      path.join(dir, "MNLI", "dev_matched.tsv"),
      `${mnli.eval[0]!.header!.join("\t")}\n${row(0, "neutral", 1)}\n`,
    );
    await expect(readGlueSplit(dir, mnli, "dev_matched")).rejects.toMatchObject({ line: 2, kind: "COLUMNS" });
  });

  it("QQP: questions and is_duplicate", () => {
    const qqp = GLUE_TASKS.qqp;
    const text = `${qqp.train.header!.join("\t")}\n7\t15\t16\tHow do I cook rice?\tWhat is the way to cook rice?\t1\n`;
    const data = parseGlueTsv(text, qqp, qqp.train, "QQP/train.tsv");
    expect(data.examples).toEqual([
      { line: 2, textA: "How do I cook rice?", textB: "What is the way to cook rice?", label: 1 },
    ]);
  });
});

describe("tasks", () => {
  it("names, labels and metrics of the eight tasks", () => {
    expect(Object.keys(GLUE_TASKS).sort()).toEqual([
      "cola",
      "mnli",
      "mrpc",
      "qnli",
      "qqp",
      "rte",
      "sst2",
      "stsb",
    ]);
    expect(getTask("SST-2")).toBe(GLUE_TASKS.sst2);
    expect(getTask("STS-B").kind).toBe("regression");
    expect(GLUE_TASKS.stsb.numLabels).toBe(1);
    expect(GLUE_TASKS.mnli.numLabels).toBe(3);
    expect(GLUE_TASKS.cola.metrics).toEqual(["matthews"]);
    expect(GLUE_TASKS.mrpc.metrics).toEqual(["accuracy", "f1"]);
    expect(GLUE_TASKS.qqp.metrics).toEqual(["accuracy", "f1"]);
    expect(GLUE_TASKS.stsb.metrics).toEqual(["pearson", "spearman"]);
    for (const t of ["sst2", "qnli", "rte", "mnli"] as const)
      expect(GLUE_TASKS[t].metrics).toEqual(["accuracy"]);
    expect(parseTaskList("rte, MRPC,rte").map((t) => t.name)).toEqual(["rte", "mrpc"]);
    expect(parseTaskList("all")).toHaveLength(8);
    expect(() => getTask("wnli")).toThrowError(/unknown GLUE task "wnli"/);
  });
});
