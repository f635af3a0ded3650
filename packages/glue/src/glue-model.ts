// The trainer's view of a sequence classifier on a GLUE task: forward on
// unpadded batches (or padded ones for classic BERT's baseline path), the
// model's own loss (cross-entropy, or MSE for STS-B), and the task's metrics.

import { type BertForSequenceClassification, type ModelOutput, savePretrained } from "@mbert/model";
import type { LossLike, Metric, TrainableModel } from "@mbert/train";
import { type GlueBatch, padGlueBatch } from "./collator.js";
import { GlueError } from "./errors.js";
import { taskMetrics } from "./metrics.js";
import type { GlueTask } from "./tasks.js";

/** "unpadded": sequences end to end (MosaicBERT). "padded": [B, S] with a mask (classic BERT, as HF runs it). */
export type BatchLayout = "unpadded" | "padded";

export class GlueModel implements TrainableModel<GlueBatch, ModelOutput> {
  readonly layout: BatchLayout;
  /** Host predictions per output, so several metrics read one argmax. */
  private readonly predictions = new WeakMap<ModelOutput, Float32Array | Int32Array>();

  constructor(
    readonly module: BertForSequenceClassification,
    readonly task: GlueTask,
    opts: { layout?: BatchLayout } = {},
  ) {
    this.layout = opts.layout ?? (module.config.family === "bert" ? "padded" : "unpadded");
    if (module.config.numLabels !== task.numLabels) {
      throw new GlueError(
        "GLUE_NUM_LABELS",
        `${task.displayName} needs a head of ${task.numLabels} output${task.numLabels === 1 ? "" : "s"}, the model has ${module.config.numLabels}`,
      );
    }
  }

  forward(batch: GlueBatch): ModelOutput {
    if (this.layout === "padded") {
      return this.module.forwardPadded(padGlueBatch(batch, { padId: this.module.config.padTokenId }));
    }
    return this.module.forward(batch);
  }

  loss(out: ModelOutput): LossLike {
    if (!out.loss)
      throw new GlueError("GLUE_NO_LOSS", "the batch has no labels, so the model returned no loss");
    return out.loss as unknown as LossLike;
  }

  getMetrics(): Record<string, Metric> {
    return taskMetrics(this.task);
  }

  /** Class ids (argmax of the logits) or, for regression, the predicted scores. */
  predict(out: ModelOutput): Float32Array | Int32Array {
    let p = this.predictions.get(out);
    if (p === undefined) {
      if (this.task.kind === "regression") {
        p = Float32Array.from(out.logits.data() as ArrayLike<number>);
      } else {
        const am = out.logits.argmax(-1);
        p = Int32Array.from(am.data() as ArrayLike<number>);
        am.dispose();
      }
      this.predictions.set(out, p);
    }
    return p;
  }

  updateMetric(batch: GlueBatch, out: ModelOutput, metric: Metric): void {
    metric.update(this.predict(out), batch.labels);
  }

  disposeOutputs(out: ModelOutput): void {
    out.loss?.dispose();
    out.logits.dispose();
    out.hiddenStates?.dispose();
  }

  /** Training FLOPs per batch, for the speed monitor's MFU. */
  flopsPerBatch(batch: GlueBatch): number {
    return this.module.flopsPerToken({ seqLen: batch.maxSeqlen }) * batch.numTokens;
  }

  savePretrained(dir: string): void {
    savePretrained(this.module, dir);
  }
}
