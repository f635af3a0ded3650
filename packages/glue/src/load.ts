// Building the classifier to finetune: the encoder's weights from a pretrained
// checkpoint, a freshly initialized head. As the MosaicBERT recipe loads
// (weights only, the checkpoint's classifier ignored), the MLM head keys
// (`cls.*`) and any earlier classifier (`classifier.*`) are dropped and
// listed in the report; the pooler is taken when the checkpoint has one
// (Hugging Face BERT) and initialized otherwise (MosaicBERT MLM checkpoints).

import * as fs from "node:fs";
import * as path from "node:path";
import {
  type BertConfig,
  type BertForSequenceClassification,
  type ModelFamily,
  type SafetensorsEntry,
  type StateDictReport,
  createModel,
  detectFamily,
  loadStateDict,
  readCheckpointWeights,
  readConfig,
  stripComposerPrefix,
} from "@mbert/model";
import { type Generator, defaultGenerator } from "@mbert/tensor";
import { GlueError } from "./errors.js";
import type { GlueTask } from "./tasks.js";

/** What happened to each key when a checkpoint became a classifier. */
export interface ClassifierLoadReport extends StateDictReport {
  /** Head keys of the checkpoint deliberately not loaded (MLM head, an earlier classifier). */
  ignored: string[];
  /** Parameters freshly initialized because the checkpoint has no value for them (classifier, maybe pooler). */
  initialized: string[];
}

/** A checkpoint that cannot become a classifier (its encoder is incomplete or mis-shaped). */
export class GlueCheckpointError extends GlueError {
  readonly file: string;
  constructor(file: string, detail: string) {
    super("GLUE_CHECKPOINT", `${file}: ${detail}`);
    this.file = file;
  }
}

export interface LoadClassifierOptions {
  numLabels: number;
  /** "regression" for an MSE head (STS-B). */
  problemType?: "regression" | "single_label_classification";
  device?: "cpu" | "cuda";
  /** config.json overrides (e.g. classifierDropout). */
  config?: Partial<BertConfig>;
  /** Draws the fresh head's initial weights (default: the global generator, seeded by manualSeed). */
  generator?: Generator;
}

function isHeadKey(k: string): boolean {
  return k.startsWith("cls.") || k.startsWith("classifier.");
}

/** The weights of checkpoint folder `dir` (Composer prefix stripped) and the family they are of. */
function readWeights(dir: string): { weights: Map<string, SafetensorsEntry>; family: ModelFamily } {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new GlueCheckpointError(dir, "is not a folder; expected config.json and model.safetensors in it");
  }
  const weights = stripComposerPrefix(readCheckpointWeights(dir));
  const family = detectFamily(weights.keys());
  if (family === undefined) {
    throw new GlueCheckpointError(dir, "holds neither BERT nor MosaicBERT encoder weights");
  }
  return { weights, family };
}

/**
 * A BertForSequenceClassification with the encoder (and pooler, when present)
 * of the checkpoint folder `dir` (config.json + model.safetensors, either
 * family) and a new head of `numLabels` outputs.
 */
export function loadClassifierFromPretrained(
  dir: string,
  opts: LoadClassifierOptions,
): { model: BertForSequenceClassification; report: ClassifierLoadReport } {
  const { weights, family } = readWeights(dir);
  const ignored: string[] = [];
  for (const k of [...weights.keys()]) {
    if (isHeadKey(k)) {
      ignored.push(k);
      weights.delete(k);
    }
  }
  const config: BertConfig = {
    ...readConfig(path.join(dir, "config.json"), { family }),
    ...opts.config,
    family,
    numLabels: opts.numLabels,
    problemType: opts.problemType ?? (opts.numLabels === 1 ? "regression" : "single_label_classification"),
  };
  const model = createModel(config, "classification", {
    device: opts.device ?? "cpu",
    generator: opts.generator ?? defaultGenerator,
  }) as BertForSequenceClassification;
  try {
    const r = loadStateDict(model, weights, { strict: false, file: dir });
    const encoderMissing = r.missing.filter(
      (k) => k.startsWith("bert.embeddings.") || k.startsWith("bert.encoder."),
    );
    if (encoderMissing.length > 0 || r.mismatched.length > 0) {
      const parts = [];
      if (encoderMissing.length > 0)
        parts.push(`missing encoder weights ${encoderMissing.slice(0, 5).join(", ")}`);
      if (r.mismatched.length > 0) parts.push(`mis-shaped ${r.mismatched.slice(0, 5).join("; ")}`);
      throw new GlueCheckpointError(
        dir,
        `${parts.join("; ")}; check that config.json matches the weights (sizes, family)`,
      );
    }
    return { model, report: { ...r, ignored: ignored.sort(), initialized: [...r.missing] } };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * A finetuned classifier as saved by `finetune({ saveDir })` or Hugging Face:
 * every weight, the head included, must be there (an MLM head, if any, is ignored).
 */
export function loadFinetunedClassifier(
  dir: string,
  task: GlueTask,
  opts: { device?: "cpu" | "cuda" } = {},
): BertForSequenceClassification {
  const { weights, family } = readWeights(dir);
  if (![...weights.keys()].some((k) => k.startsWith("classifier."))) {
    throw new GlueCheckpointError(
      dir,
      `has no classifier.* weights, so it is not finetuned for ${task.displayName}; finetune it first`,
    );
  }
  for (const k of [...weights.keys()]) if (k.startsWith("cls.")) weights.delete(k);
  const config: BertConfig = {
    ...readConfig(path.join(dir, "config.json"), { family }),
    family,
    numLabels: task.numLabels,
    problemType: task.kind === "regression" ? "regression" : "single_label_classification",
  };
  const model = createModel(config, "classification", {
    device: opts.device ?? "cpu",
    init: false,
  }) as BertForSequenceClassification;
  try {
    const r = loadStateDict(model, weights, { strict: false, file: dir });
    if (r.mismatched.length > 0 || r.missing.length > 0) {
      throw new GlueCheckpointError(
        dir,
        `does not fit a ${task.displayName} classifier (${task.numLabels} labels): ${[...r.missing, ...r.mismatched].slice(0, 5).join("; ")}`,
      );
    }
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}
