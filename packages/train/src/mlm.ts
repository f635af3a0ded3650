/**
 * Masked-language-model pretraining glue: the trainer's view of a
 * @mbert/model `BertForMaskedLM` (loss, MLM accuracy and cross-entropy over
 * masked tokens, Hugging Face save/load), and the data spec of unpadded
 * MLM batches (split into microbatches by whole sequences).
 */
import {
  type BertForMaskedLM,
  type ModelOutput,
  StateDictMismatch,
  loadStateDict,
  readCheckpointWeights,
  savePretrained,
} from "@mbert/model";
import type { UnpaddedMlmBatch } from "@mbert/data";
import type { Tensor } from "@mbert/tensor";
import { LanguageCrossEntropy, MaskedAccuracy, type Metric } from "./metrics.js";
import type { DataLoaderLike, DataSpec, LossLike, TrainableModel, WeightsReport } from "./types.js";

/** An unpadded MLM batch as @mbert/data's collator emits it. */
export type MlmBatch = UnpaddedMlmBatch;

/** Splits a batch into microbatches of at most `size` sequences (token ranges and masks re-based). */
export function splitMlmBatch(b: MlmBatch, size: number): MlmBatch[] {
  const B = b.numSequences;
  const out: MlmBatch[] = [];
  let m = 0; // next masked position index
  for (let s0 = 0; s0 < B; s0 += size) {
    const s1 = Math.min(B, s0 + size);
    const t0 = b.cuSeqlens[s0]!;
    const t1 = b.cuSeqlens[s1]!;
    const cu = new Int32Array(s1 - s0 + 1);
    let maxSeqlen = 0;
    for (let i = 0; i <= s1 - s0; i++) cu[i] = b.cuSeqlens[s0 + i]! - t0;
    for (let i = 0; i < s1 - s0; i++) maxSeqlen = Math.max(maxSeqlen, cu[i + 1]! - cu[i]!);
    const mStart = m;
    while (m < b.maskedPositions.length && b.maskedPositions[m]! < t1) m++;
    const pos = b.maskedPositions.slice(mStart, m);
    for (let i = 0; i < pos.length; i++) pos[i] = pos[i]! - t0;
    out.push({
      inputIds: b.inputIds.slice(t0, t1),
      tokenTypeIds: b.tokenTypeIds.slice(t0, t1),
      cuSeqlens: cu,
      maxSeqlen,
      maskedPositions: pos,
      labels: b.labels.slice(mStart, m),
      numSequences: s1 - s0,
      numTokens: t1 - t0,
    });
  }
  return out;
}

/** A DataSpec over any loader of MLM batches (e.g. @mbert/data's MlmDataLoader). */
export function mlmDataSpec(
  loader: DataLoaderLike<MlmBatch> | (AsyncIterable<MlmBatch> & { batchesPerEpoch?: number }),
): DataSpec<MlmBatch> {
  const l = loader as DataLoaderLike<MlmBatch> & { batchesPerEpoch?: number };
  return {
    dataloader: l,
    length: l.batchesPerEpoch ?? l.length,
    numSamples: (b) => b.numSequences,
    numTokens: (b) => b.numTokens,
    splitBatch: splitMlmBatch,
  };
}

/** The trainer's view of a BertForMaskedLM (MosaicBERT or classic BERT). */
export class MlmTask implements TrainableModel<MlmBatch, ModelOutput> {
  constructor(readonly module: BertForMaskedLM) {}

  forward(batch: MlmBatch): ModelOutput {
    return this.module.forward(batch);
  }

  loss(out: ModelOutput): LossLike {
    if (!out.loss) throw new Error("MlmTask: the batch has no masked labels, so the model returned no loss");
    return out.loss as unknown as LossLike;
  }

  getMetrics(): Record<string, Metric> {
    return { MaskedAccuracy: new MaskedAccuracy(), LanguageCrossEntropy: new LanguageCrossEntropy() };
  }

  updateMetric(batch: MlmBatch, out: ModelOutput, metric: Metric): void {
    const M = batch.labels.length;
    if (M === 0) return;
    if (metric instanceof LanguageCrossEntropy) {
      metric.update([(out.loss as Tensor).item() * M], [M]);
      return;
    }
    const preds = out.logits.argmax(-1);
    metric.update(preds.data() as Int32Array, batch.labels);
    preds.dispose();
  }

  disposeOutputs(out: ModelOutput): void {
    out.loss?.dispose();
    out.logits.dispose();
    out.hiddenStates?.dispose();
  }

  /** Training FLOPs (forward + backward) per batch, from the model's own per-token count. */
  flopsPerBatch(batch: MlmBatch): number {
    return this.module.flopsPerToken({ seqLen: batch.maxSeqlen }) * batch.numTokens;
  }

  savePretrained(dir: string): void {
    savePretrained(this.module, dir);
  }

  loadPretrained(dir: string, opts: { strict: boolean; ignore?: (key: string) => boolean }): WeightsReport {
    const ignore = opts.ignore ?? (() => false);
    const weights = readCheckpointWeights(dir);
    const ignored = new Set<string>();
    for (const k of [...weights.keys()]) {
      if (!ignore(k)) continue;
      weights.delete(k);
      ignored.add(k);
    }
    // Checked here rather than by loadStateDict, so that ignored parameters do not count as missing.
    const r = loadStateDict(this.module, weights, { strict: false, file: dir });
    const missing: string[] = [];
    for (const k of r.missing) {
      if (ignore(k)) ignored.add(k);
      else missing.push(k);
    }
    if (opts.strict && (missing.length > 0 || r.unexpected.length > 0 || r.mismatched.length > 0)) {
      throw new StateDictMismatch({ missing, unexpected: r.unexpected, mismatched: r.mismatched }, dir);
    }
    const notLoaded = new Set([...r.missing, ...r.mismatched.map((m) => m.slice(0, m.indexOf(":")))]);
    return {
      loaded: [...this.module.namedParameters()].map(([k]) => k).filter((k) => !notLoaded.has(k)),
      ignored: [...ignored].sort(),
      missing,
      unexpected: r.unexpected,
      mismatched: r.mismatched,
    };
  }
}
