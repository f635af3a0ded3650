// The MLM collator: masks tokens of a batch of samples and emits the unpadded
// batch MosaicBERT consumes (all tokens of the batch end to end, with
// cumulative sequence starts), or a classic padded batch via toPadded().
//
// Every masking decision is a pure function of (seed, epoch, sample key,
// token position), so a resumed run masks a sample exactly as an
// uninterrupted run would, whatever batch it lands in.

import { DataUsageError } from "./errors.js";
import { fmix32, hash4 } from "./rng.js";
import type { SampleRef } from "./streaming.js";
import type { SpecialIds } from "./tokenizer.js";

export interface UnpaddedMlmBatch {
  /** (T) all real tokens of the batch, sequences concatenated. */
  inputIds: Int32Array;
  /** (T) */
  tokenTypeIds: Int32Array;
  /** (B+1) cumulative sequence starts; cuSeqlens[0] = 0, cuSeqlens[B] = T. */
  cuSeqlens: Int32Array;
  maxSeqlen: number;
  /** (M) indices into T of masked tokens, ascending. May be empty (M = 0). */
  maskedPositions: Int32Array;
  /** (M) original ids at those positions. */
  labels: Int32Array;
  /** B */
  numSequences: number;
  /** T */
  numTokens: number;
}

export interface PaddedMlmBatch {
  /** (B*S) row-major, padded with the pad id. */
  inputIds: Int32Array;
  tokenTypeIds: Int32Array;
  /** (B*S) 1 for real tokens, 0 for padding. */
  attentionMask: Int32Array;
  /** (B*S) original id at masked positions, -100 elsewhere. */
  labels: Int32Array;
  batchSize: number;
  seqLen: number;
}

export interface MlmCollatorOptions {
  /** Fraction of non-special tokens masked (default 0.3, as MosaicBERT; 0.15 for classic BERT eval). */
  mlmProbability?: number;
  /** Of the masked: fraction replaced by [MASK] (default 0.8) and by a random token (default 0.1); the rest stay. */
  maskReplaceProbability?: number;
  randomReplaceProbability?: number;
  /** Seed of the masking RNG (default 0). */
  seed?: number;
  /** Vocabulary size; random replacements are drawn from [0, vocabSize) minus special ids. */
  vocabSize: number;
  /** Special token ids; [MASK] is used, all listed ids are never masked nor drawn. */
  specialIds: SpecialIds;
  /** More ids that are never masked nor drawn (e.g. all added special tokens of the tokenizer). */
  extraSpecialIds?: ArrayLike<number>;
  /** Pad id used by toPadded (default specialIds.pad). */
  padId?: number;
}

const TWO32 = 4294967296;

export class MlmCollator {
  readonly mlmProbability: number;
  readonly seed: number;
  readonly vocabSize: number;
  readonly maskId: number;
  readonly padId: number;
  private readonly threshold: number;
  private readonly maskThreshold: number;
  private readonly randomThreshold: number;
  /** 1 for ids that are special (never masked, never drawn). */
  private readonly isSpecial: Uint8Array;
  /** Ids random replacement draws from. */
  private readonly drawable: Int32Array;

  constructor(options: MlmCollatorOptions) {
    const p = options.mlmProbability ?? 0.3;
    const pm = options.maskReplaceProbability ?? 0.8;
    const pr = options.randomReplaceProbability ?? 0.1;
    if (!(p >= 0 && p <= 1)) throw new DataUsageError(`mlmProbability must be in [0, 1], got ${p}`);
    if (!(pm >= 0 && pr >= 0 && pm + pr <= 1))
      throw new DataUsageError(
        `maskReplaceProbability + randomReplaceProbability must be in [0, 1], got ${pm} + ${pr}`,
      );
    if (!Number.isInteger(options.vocabSize) || options.vocabSize < 1)
      throw new DataUsageError(`vocabSize must be a positive integer, got ${options.vocabSize}`);
    this.mlmProbability = p;
    this.seed = (options.seed ?? 0) >>> 0;
    this.vocabSize = options.vocabSize;
    this.maskId = options.specialIds.mask;
    this.padId = options.padId ?? options.specialIds.pad;
    // Thresholds: a 16-bit draw u masks when u < threshold (u / 2^16 < p);
    // uint32 draws pick [MASK] / random / unchanged.
    this.threshold = Math.round(p * 65536);
    this.maskThreshold = Math.floor(pm * TWO32);
    this.randomThreshold = Math.floor((pm + pr) * TWO32);
    this.isSpecial = new Uint8Array(this.vocabSize);
    const s = options.specialIds;
    for (const id of [s.pad, s.unk, s.cls, s.sep, s.mask, ...Array.from(options.extraSpecialIds ?? [])])
      if (id >= 0 && id < this.vocabSize) this.isSpecial[id] = 1;
    const drawable: number[] = [];
    for (let i = 0; i < this.vocabSize; i++) if (!this.isSpecial[i]) drawable.push(i);
    this.drawable = Int32Array.from(drawable);
  }

  /** Mask and concatenate samples into an unpadded batch. */
  collate(samples: readonly SampleRef[]): UnpaddedMlmBatch {
    const B = samples.length;
    const cu = new Int32Array(B + 1);
    let T = 0;
    let maxSeqlen = 0;
    for (let i = 0; i < B; i++) {
      const n = samples[i]!.inputIds.length;
      T += n;
      cu[i + 1] = T;
      if (n > maxSeqlen) maxSeqlen = n;
    }
    const inputIds = new Int32Array(T);
    const tokenTypeIds = new Int32Array(T);
    // Upper bound on masked count for preallocation; trimmed with subarray (no copy).
    const positions = new Int32Array(T);
    const labels = new Int32Array(T);
    let M = 0;
    const isSpecial = this.isSpecial;
    const V = this.vocabSize;
    const threshold = this.threshold;
    for (let i = 0; i < B; i++) {
      const s = samples[i]!;
      const ids = s.inputIds;
      const base = cu[i]!;
      inputIds.set(ids, base);
      if (s.tokenTypeIds) tokenTypeIds.set(s.tokenTypeIds, base);
      if (threshold === 0) continue;
      // Per-sample stream: one hash of (seed, epoch, key); then one mix per two
      // tokens, whose 16-bit halves decide "masked?" for token t (resolution 2^-16).
      const keyLo = s.key % TWO32;
      const keyHi = Math.floor(s.key / TWO32);
      const stream = hash4(this.seed, s.epoch >>> 0, keyLo >>> 0, keyHi >>> 0);
      let h = 0;
      for (let t = 0; t < ids.length; t++) {
        if ((t & 1) === 0) h = fmix32((stream + Math.imul((t >>> 1) + 1, 0x9e3779b1)) >>> 0);
        const u = (t & 1) === 0 ? h & 0xffff : h >>> 16;
        if (u >= threshold) continue;
        const id = ids[t]!;
        if (id >= 0 && id < V && isSpecial[id]) continue;
        const pos = base + t;
        positions[M] = pos;
        labels[M] = id;
        M++;
        const v = fmix32((stream ^ Math.imul(t + 1, 0x85ebca77) ^ 0x2545f491) >>> 0);
        if (v < this.maskThreshold) inputIds[pos] = this.maskId;
        else if (v < this.randomThreshold) {
          const w = fmix32((v ^ 0x68e31da4) >>> 0);
          inputIds[pos] = this.drawable[Math.floor((w / TWO32) * this.drawable.length)]!;
        }
      }
    }
    return {
      inputIds,
      tokenTypeIds,
      cuSeqlens: cu,
      maxSeqlen,
      maskedPositions: positions.subarray(0, M),
      labels: labels.subarray(0, M),
      numSequences: B,
      numTokens: T,
    };
  }
}

/**
 * Pad an unpadded batch to (B, S) rows, S = padTo ?? maxSeqlen. For classic
 * BERT or debugging; the model's fast path uses the unpadded batch directly.
 */
export function toPadded(batch: UnpaddedMlmBatch, padTo?: number, padId = 0): PaddedMlmBatch {
  const B = batch.numSequences;
  const S = padTo ?? batch.maxSeqlen;
  if (S < batch.maxSeqlen)
    throw new DataUsageError(
      `toPadded: padTo ${S} is shorter than the longest sequence (${batch.maxSeqlen})`,
    );
  const inputIds = new Int32Array(B * S).fill(padId);
  const tokenTypeIds = new Int32Array(B * S);
  const attentionMask = new Int32Array(B * S);
  const labels = new Int32Array(B * S).fill(-100);
  const rowOf = new Int32Array(batch.numTokens);
  for (let b = 0; b < B; b++) {
    const a = batch.cuSeqlens[b]!;
    const e = batch.cuSeqlens[b + 1]!;
    inputIds.set(batch.inputIds.subarray(a, e), b * S);
    tokenTypeIds.set(batch.tokenTypeIds.subarray(a, e), b * S);
    attentionMask.fill(1, b * S, b * S + (e - a));
    for (let t = a; t < e; t++) rowOf[t] = b * S + (t - a);
  }
  for (let m = 0; m < batch.maskedPositions.length; m++)
    labels[rowOf[batch.maskedPositions[m]!]!] = batch.labels[m]!;
  return { inputIds, tokenTypeIds, attentionMask, labels, batchSize: B, seqLen: S };
}
