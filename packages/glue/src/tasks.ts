// The eight GLUE tasks: where their files are, how the official TSVs are laid
// out (as the GLUE download script writes them), their labels and metrics,
// and the MosaicBERT finetuning recipe for each (mosaicml/examples,
// benchmarks/bert/src/glue/finetuning_jobs.py).

import { GlueConfigError } from "./errors.js";

export type GlueTaskName = "cola" | "sst2" | "mrpc" | "qqp" | "stsb" | "mnli" | "qnli" | "rte";

/** Every task, in the order the GLUE paper's tables list them. */
export const GLUE_TASK_NAMES: readonly GlueTaskName[] = [
  "cola",
  "sst2",
  "mrpc",
  "stsb",
  "qqp",
  "mnli",
  "qnli",
  "rte",
];

export type GlueMetricName = "accuracy" | "f1" | "matthews" | "pearson" | "spearman";

/** A column by header name (headered files) or by 0-based index (CoLA, which has no header). */
export type ColumnRef = string | number;

/** One file of labelled examples. */
export interface GlueSplitSpec {
  /** "train", "dev", or for MNLI "dev_matched" / "dev_mismatched". */
  split: string;
  /** File name inside the task folder. */
  file: string;
  /** Header fields (a BOM is stripped first); null for a header-less file. */
  header: readonly string[] | null;
  /** Fields per row (the header's length when there is one). */
  numColumns: number;
  /** Rows in the official file (header excluded), for checks and docs. */
  officialRows?: number;
}

/** The finetuning hyperparameters of the MosaicBERT GLUE recipe for a task. */
export interface GlueRecipe {
  lr: number;
  /** DecoupledAdamW weight decay (the recipe uses lr / 10). */
  weightDecay: number;
  /** Training length in epochs. */
  epochs: number;
  batchSize: number;
}

export interface GlueTask {
  name: GlueTaskName;
  /** As written in papers and the GLUE folder names. */
  displayName: string;
  /** Folder of the task in a GLUE data directory. */
  dir: string;
  kind: "classification" | "regression";
  /** Class names as they appear in the label column, in class-id order; empty for regression. */
  labels: readonly string[];
  /** Classifier outputs: labels.length, or 1 for regression. */
  numLabels: number;
  /** The first text; the second for pair tasks (null for single-sentence tasks). */
  textA: ColumnRef;
  textB: ColumnRef | null;
  /** The label (or score) column. */
  label: ColumnRef;
  /** Regression only: the inclusive range of a valid score. */
  scoreRange?: [number, number];
  train: GlueSplitSpec;
  /** The evaluation sets, each reported under its own name (MNLI has two). */
  eval: readonly GlueSplitSpec[];
  /** Metrics reported on each evaluation set. */
  metrics: readonly GlueMetricName[];
  recipe: GlueRecipe;
}

const MNLI_TRAIN_HEADER = [
  "index",
  "promptID",
  "pairID",
  "genre",
  "sentence1_binary_parse",
  "sentence2_binary_parse",
  "sentence1_parse",
  "sentence2_parse",
  "sentence1",
  "sentence2",
  "label1",
  "gold_label",
] as const;

// The dev sets keep all five annotator labels before the gold one.
const MNLI_DEV_HEADER = [
  ...MNLI_TRAIN_HEADER.slice(0, 11),
  "label2",
  "label3",
  "label4",
  "label5",
  "gold_label",
] as const;

function headered(
  split: string,
  file: string,
  header: readonly string[],
  officialRows?: number,
): GlueSplitSpec {
  return { split, file, header, numColumns: header.length, officialRows };
}

const SST2_HEADER = ["sentence", "label"];
const MRPC_HEADER = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"];
const QQP_HEADER = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"];
const STSB_HEADER = [
  "index",
  "genre",
  "filename",
  "year",
  "old_index",
  "source1",
  "source2",
  "sentence1",
  "sentence2",
  "score",
];
const QNLI_HEADER = ["index", "question", "sentence", "label"];
const RTE_HEADER = ["index", "sentence1", "sentence2", "label"];

// Label orders follow the Hugging Face `glue` dataset, so class ids agree with
// checkpoints finetuned there (MNLI: entailment 0, neutral 1, contradiction 2).
export const GLUE_TASKS: Readonly<Record<GlueTaskName, GlueTask>> = {
  cola: {
    name: "cola",
    displayName: "CoLA",
    dir: "CoLA",
    kind: "classification",
    labels: ["0", "1"], // 1 = acceptable
    numLabels: 2,
    // No header: source code, label, the original author's mark ("*" or empty), sentence.
    textA: 3,
    textB: null,
    label: 1,
    train: { split: "train", file: "train.tsv", header: null, numColumns: 4, officialRows: 8551 },
    eval: [{ split: "dev", file: "dev.tsv", header: null, numColumns: 4, officialRows: 1043 }],
    metrics: ["matthews"],
    recipe: { lr: 5e-5, weightDecay: 5e-6, epochs: 10, batchSize: 32 },
  },
  sst2: {
    name: "sst2",
    displayName: "SST-2",
    dir: "SST-2",
    kind: "classification",
    labels: ["0", "1"], // 1 = positive
    numLabels: 2,
    textA: "sentence",
    textB: null,
    label: "label",
    train: headered("train", "train.tsv", SST2_HEADER, 67349),
    eval: [headered("dev", "dev.tsv", SST2_HEADER, 872)],
    metrics: ["accuracy"],
    recipe: { lr: 3e-5, weightDecay: 3e-6, epochs: 3, batchSize: 16 },
  },
  mrpc: {
    name: "mrpc",
    displayName: "MRPC",
    dir: "MRPC",
    kind: "classification",
    labels: ["0", "1"], // 1 = paraphrase
    numLabels: 2,
    textA: "#1 String",
    textB: "#2 String",
    label: "Quality",
    train: headered("train", "train.tsv", MRPC_HEADER, 3668),
    eval: [headered("dev", "dev.tsv", MRPC_HEADER, 408)],
    metrics: ["accuracy", "f1"],
    recipe: { lr: 8e-5, weightDecay: 8e-6, epochs: 10, batchSize: 32 },
  },
  stsb: {
    name: "stsb",
    displayName: "STS-B",
    dir: "STS-B",
    kind: "regression",
    labels: [],
    numLabels: 1,
    textA: "sentence1",
    textB: "sentence2",
    label: "score",
    scoreRange: [0, 5],
    train: headered("train", "train.tsv", STSB_HEADER, 5749),
    eval: [headered("dev", "dev.tsv", STSB_HEADER, 1500)],
    metrics: ["pearson", "spearman"],
    recipe: { lr: 3e-5, weightDecay: 3e-6, epochs: 10, batchSize: 32 },
  },
  qqp: {
    name: "qqp",
    displayName: "QQP",
    dir: "QQP",
    kind: "classification",
    labels: ["0", "1"], // 1 = duplicate
    numLabels: 2,
    textA: "question1",
    textB: "question2",
    label: "is_duplicate",
    train: headered("train", "train.tsv", QQP_HEADER, 363846),
    eval: [headered("dev", "dev.tsv", QQP_HEADER, 40430)],
    metrics: ["accuracy", "f1"],
    recipe: { lr: 3e-5, weightDecay: 3e-6, epochs: 5, batchSize: 16 },
  },
  mnli: {
    name: "mnli",
    displayName: "MNLI",
    dir: "MNLI",
    kind: "classification",
    labels: ["entailment", "neutral", "contradiction"],
    numLabels: 3,
    textA: "sentence1",
    textB: "sentence2",
    label: "gold_label",
    train: headered("train", "train.tsv", MNLI_TRAIN_HEADER, 392702),
    eval: [
      headered("dev_matched", "dev_matched.tsv", MNLI_DEV_HEADER, 9815),
      headered("dev_mismatched", "dev_mismatched.tsv", MNLI_DEV_HEADER, 9832),
    ],
    metrics: ["accuracy"],
    recipe: { lr: 5e-5, weightDecay: 5e-6, epochs: 3, batchSize: 48 },
  },
  qnli: {
    name: "qnli",
    displayName: "QNLI",
    dir: "QNLI",
    kind: "classification",
    labels: ["entailment", "not_entailment"],
    numLabels: 2,
    textA: "question",
    textB: "sentence",
    label: "label",
    train: headered("train", "train.tsv", QNLI_HEADER, 104743),
    eval: [headered("dev", "dev.tsv", QNLI_HEADER, 5463)],
    metrics: ["accuracy"],
    recipe: { lr: 1e-5, weightDecay: 1e-6, epochs: 10, batchSize: 16 },
  },
  rte: {
    name: "rte",
    displayName: "RTE",
    dir: "RTE",
    kind: "classification",
    labels: ["entailment", "not_entailment"],
    numLabels: 2,
    textA: "sentence1",
    textB: "sentence2",
    label: "label",
    train: headered("train", "train.tsv", RTE_HEADER, 2490),
    eval: [headered("dev", "dev.tsv", RTE_HEADER, 277)],
    metrics: ["accuracy"],
    recipe: { lr: 1e-5, weightDecay: 1e-5, epochs: 3, batchSize: 16 },
  },
};

/** Accepts "sst2", "SST-2", "sst-2", "STS-B", "mnli" ... */
export function getTask(name: string): GlueTask {
  const key = name.toLowerCase().replace(/[-_\s]/g, "");
  const task = (GLUE_TASKS as Record<string, GlueTask>)[key];
  if (task === undefined) {
    throw new GlueConfigError(`unknown GLUE task "${name}"; expected one of ${GLUE_TASK_NAMES.join(", ")}`);
  }
  return task;
}

/** Parses "rte,mrpc" (or "all") into tasks, each once, in the given order. */
export function parseTaskList(list: string): GlueTask[] {
  const names = list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new GlueConfigError(`no task named in "${list}"`);
  if (names.length === 1 && names[0]!.toLowerCase() === "all")
    return GLUE_TASK_NAMES.map((n) => GLUE_TASKS[n]);
  const out: GlueTask[] = [];
  for (const n of names) {
    const t = getTask(n);
    if (!out.includes(t)) out.push(t);
  }
  return out;
}

/** A task's split by name ("train", "dev", "dev_matched", ...). */
export function splitSpec(task: GlueTask, split: string): GlueSplitSpec {
  if (split === task.train.split) return task.train;
  const s = task.eval.find((e) => e.split === split);
  if (s === undefined) {
    const all = [task.train, ...task.eval].map((x) => x.split).join(", ");
    throw new GlueConfigError(`${task.displayName} has no split "${split}"; it has ${all}`);
  }
  return s;
}
