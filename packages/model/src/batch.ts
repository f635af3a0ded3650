// The batches a model consumes, on the host.
//
// The unpadded form is what training uses (and what @mbert/data's MLM collator
// emits): the B sequences of a batch laid end to end, T tokens in all, with
// cuSeqlens marking where each begins. The padded form ([B, S] plus an
// attention mask, as Hugging Face takes it) is a convenience that `unpadBatch`
// turns into the unpadded one.

import { BatchError, TokenIdOutOfRange } from "./errors.js";

export type IntArray = Int32Array | Uint32Array | Uint16Array | Uint8Array | number[];

/** B sequences laid end to end (T tokens). */
export interface UnpaddedBatch {
  /** (T) token ids. */
  inputIds: IntArray;
  /** (T) segment ids (0 for sentence A, 1 for sentence B). */
  tokenTypeIds?: IntArray;
  /** (B+1) prefix sums of the sequence lengths: sequence b is tokens [cu[b], cu[b+1]). */
  cuSeqlens: IntArray;
  /** Longest sequence (for the attention kernel's tiling). */
  maxSeqlen: number;
  /** (M) indices into T of the masked tokens, ascending (MLM only). */
  maskedPositions?: IntArray;
  /** (T) classic BERT only: position ids; default t - cuSeqlens[b] (the index within the sequence). */
  positionIds?: IntArray;
}

/** An unpadded MLM batch, as @mbert/data's collator emits it. */
export interface UnpaddedMlmBatch extends UnpaddedBatch {
  maskedPositions: IntArray;
  /** (M) original token ids at maskedPositions. */
  labels: IntArray;
  numSequences?: number;
  numTokens?: number;
}

/** A classification/regression batch: one label (class id or score) per sequence. */
export interface UnpaddedClassificationBatch extends UnpaddedBatch {
  /** (B) class ids (int) or scores (float, regression). */
  labels?: IntArray | Float32Array | Float64Array;
}

/** Hugging Face style: [B, S] row-major, padded at the right. */
export interface PaddedBatch {
  batchSize: number;
  seqLen: number;
  /** (B*S) token ids. */
  inputIds: IntArray;
  /** (B*S) 1 for real tokens, 0 for padding. */
  attentionMask?: IntArray;
  /** (B*S) segment ids. */
  tokenTypeIds?: IntArray;
  /** (B*S) MLM labels with -100 (or, for MosaicBERT, any value <= 0) where not masked. */
  mlmLabels?: IntArray;
  /** (B) class ids or scores. */
  labels?: IntArray | Float32Array | Float64Array;
}

/** The unpadded batch of a padded one, and where each token came from. */
export interface Unpadded<B extends UnpaddedBatch> {
  batch: B;
  /** (T) index into the flattened [B*S] of each kept token (the reference's `indices`). */
  indices: Int32Array;
  batchSize: number;
  seqLen: number;
}

/** Checks lengths and cuSeqlens; returns T. */
export function validateBatch(b: UnpaddedBatch, vocabSize: number, typeVocabSize: number): number {
  const T = b.inputIds.length;
  const cu = b.cuSeqlens;
  if (cu.length < 2) throw new BatchError(`cuSeqlens has ${cu.length} entries; it needs B+1 >= 2`);
  if (cu[0] !== 0) throw new BatchError(`cuSeqlens[0] is ${cu[0]}; it must be 0`);
  let maxLen = 0;
  for (let i = 1; i < cu.length; i++) {
    const len = cu[i]! - cu[i - 1]!;
    if (len <= 0)
      throw new BatchError(`cuSeqlens is not strictly increasing at ${i} (${cu[i - 1]} -> ${cu[i]})`);
    maxLen = Math.max(maxLen, len);
  }
  if (cu[cu.length - 1] !== T) {
    throw new BatchError(`cuSeqlens ends at ${cu[cu.length - 1]} but inputIds holds ${T} tokens`);
  }
  if (b.maxSeqlen < maxLen)
    throw new BatchError(`maxSeqlen ${b.maxSeqlen} is less than the longest sequence (${maxLen})`);
  checkIds("inputIds", b.inputIds, vocabSize);
  if (b.tokenTypeIds !== undefined) {
    if (b.tokenTypeIds.length !== T) {
      throw new BatchError(`tokenTypeIds holds ${b.tokenTypeIds.length} entries, inputIds ${T}`);
    }
    checkIds("tokenTypeIds", b.tokenTypeIds, typeVocabSize);
  }
  if (b.maskedPositions !== undefined) {
    let prev = -1;
    for (let i = 0; i < b.maskedPositions.length; i++) {
      const p = b.maskedPositions[i]!;
      if (!(p > prev && p < T)) {
        throw new BatchError(`maskedPositions[${i}] = ${p} is not ascending within [0, ${T})`);
      }
      prev = p;
    }
  }
  return T;
}

/** Token ids outside the vocabulary are an error here, before anything reaches a device. */
export function checkIds(what: string, ids: IntArray, size: number): void {
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i]!;
    if (!(v >= 0 && v < size) || !Number.isInteger(v)) throw new TokenIdOutOfRange(what, i, v, size);
  }
}

/** Keeps the tokens where attentionMask is 1 (all when absent), as the reference's unpad_input does. */
export function unpadBatch(
  p: PaddedBatch,
  opts: { mlmRule?: "ignore-index" | "positive" } = {},
): Unpadded<UnpaddedBatch & { labels?: IntArray | Float32Array | Float64Array }> {
  const { batchSize: B, seqLen: S } = p;
  if (p.inputIds.length !== B * S)
    throw new BatchError(`inputIds holds ${p.inputIds.length} entries, not B*S = ${B * S}`);
  const mask = p.attentionMask;
  if (mask !== undefined && mask.length !== B * S)
    throw new BatchError(`attentionMask holds ${mask.length} entries, not B*S = ${B * S}`);
  const indices: number[] = [];
  const cu = [0];
  let maxSeqlen = 0;
  for (let b = 0; b < B; b++) {
    let len = 0;
    for (let s = 0; s < S; s++) {
      if (mask === undefined || mask[b * S + s]) {
        indices.push(b * S + s);
        len++;
      }
    }
    if (len === 0) throw new BatchError(`sequence ${b} has no tokens (attention_mask is all zero)`);
    cu.push(cu[b]! + len);
    maxSeqlen = Math.max(maxSeqlen, len);
  }
  const T = indices.length;
  const inputIds = new Int32Array(T);
  const tokenTypeIds = new Int32Array(T);
  const positionIds = new Int32Array(T);
  for (let t = 0; t < T; t++) {
    inputIds[t] = p.inputIds[indices[t]!]!;
    tokenTypeIds[t] = p.tokenTypeIds ? p.tokenTypeIds[indices[t]!]! : 0;
    positionIds[t] = indices[t]! % S; // HF numbers positions 0..S-1 whatever the mask
  }
  const batch: UnpaddedBatch & { labels?: IntArray | Float32Array | Float64Array } = {
    inputIds,
    tokenTypeIds,
    cuSeqlens: Int32Array.from(cu),
    maxSeqlen,
    positionIds,
  };
  if (p.mlmLabels !== undefined) {
    // HF counts a token as masked when its label is not -100; the MosaicBERT
    // reference when its label is > 0 (label 0 is [PAD], never a target).
    const masked = opts.mlmRule === "positive" ? (l: number) => l > 0 : (l: number) => l !== -100;
    const pos: number[] = [];
    const labels: number[] = [];
    for (let t = 0; t < T; t++) {
      const l = p.mlmLabels[indices[t]!]!;
      if (masked(l)) {
        pos.push(t);
        labels.push(l);
      }
    }
    batch.maskedPositions = Int32Array.from(pos);
    batch.labels = Int32Array.from(labels);
  } else if (p.labels !== undefined) {
    batch.labels = p.labels;
  }
  return { batch, indices: Int32Array.from(indices), batchSize: B, seqLen: S };
}
