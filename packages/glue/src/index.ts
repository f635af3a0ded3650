// @mbert/glue: the GLUE tasks, their TSV files, finetuning and evaluation jobs,
// metrics, the GLUE score, and the `mbert glue` command.

export {
  type BadRow,
  type BadRowKind,
  GlueConfigError,
  GlueError,
  GlueFileError,
  GlueRowError,
  GlueUsageError,
} from "./errors.js";
export {
  type ColumnRef,
  GLUE_TASKS,
  GLUE_TASK_NAMES,
  type GlueMetricName,
  type GlueRecipe,
  type GlueSplitSpec,
  type GlueTask,
  type GlueTaskName,
  getTask,
  parseTaskList,
  splitSpec,
} from "./tasks.js";
export {
  type GlueExample,
  type GlueSplitData,
  type ReadGlueOptions,
  glueFilePath,
  parseGlueTsv,
  readGlueSplit,
} from "./tsv.js";
export {
  ClassificationCollator,
  type ClassificationCollatorOptions,
  type EncodedExample,
  type GlueBatch,
  type PairTokenizer,
  padGlueBatch,
  splitGlueBatch,
} from "./collator.js";
export { GLUE_SCORE_PARTS, computeTaskMetrics, taskMetrics, taskScore } from "./metrics.js";
export { type BatchLayout, GlueModel } from "./glue-model.js";
export {
  type ClassifierLoadReport,
  GlueCheckpointError,
  type LoadClassifierOptions,
  loadClassifierFromPretrained,
  loadFinetunedClassifier,
} from "./load.js";
export {
  type EvaluateOptions,
  type FinetuneOptions,
  type FinetuneResult,
  type ModelSource,
  evaluate,
  evaluateExamples,
  finetune,
} from "./finetune.js";
export {
  GLUE_AVERAGING,
  type GlueReport,
  type TaskResult,
  formatReportTable,
  glueReport,
  writeReport,
} from "./report.js";
export { GLUE_USAGE, glueCommand } from "./command.js";
