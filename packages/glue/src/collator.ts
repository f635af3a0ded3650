// Turns GLUE examples into the batches BertForSequenceClassification takes:
// each example is tokenized once ([CLS] A [SEP] (B [SEP]), token types 0/1,
// truncated to maxSeqLen), then batches are the unpadded form (sequences laid
// end to end, cuSeqlens) or, for classic BERT's padded path, [B, S] plus an
// attention mask.

import type { PaddedBatch, UnpaddedClassificationBatch } from "@mbert/model";
import { GlueConfigError } from "./errors.js";

/** What the collator needs of a tokenizer (@mbert/data's TextTokenizer has it). */
export interface PairTokenizer {
  encode(
    text: string,
    pair?: string | null,
    options?: { maxLength?: number; truncation?: "longest_first" | "only_first" | "only_second" },
  ): { ids: number[]; tokenTypeIds: number[] };
}

/** An example after tokenization. */
export interface EncodedExample {
  /** (n) token ids with [CLS]/[SEP]. */
  ids: Int32Array;
  /** (n) 0 for the first text and its specials, 1 for the second. */
  typeIds: Int32Array;
  /** Class id or score. */
  label: number;
}

/** An unpadded classification batch of B sequences, T tokens. */
export interface GlueBatch extends UnpaddedClassificationBatch {
  /** (T) */
  inputIds: Int32Array;
  /** (T) */
  tokenTypeIds: Int32Array;
  /** (B+1) */
  cuSeqlens: Int32Array;
  maxSeqlen: number;
  /** (B) class ids (Int32Array) or scores (Float32Array). */
  labels: Int32Array | Float32Array;
  /** B */
  numSequences: number;
  /** T */
  numTokens: number;
}

export interface ClassificationCollatorOptions {
  tokenizer: PairTokenizer;
  /** Tokens per sequence, specials included (GLUE default 128). */
  maxSeqLen?: number;
  /** "regression" keeps labels as float scores. */
  kind?: "classification" | "regression";
  /** How a pair is shortened (default "longest_first", as Hugging Face does). */
  truncation?: "longest_first" | "only_first" | "only_second";
}

export class ClassificationCollator {
  readonly maxSeqLen: number;
  readonly kind: "classification" | "regression";
  private readonly tokenizer: PairTokenizer;
  private readonly truncation: "longest_first" | "only_first" | "only_second";

  constructor(opts: ClassificationCollatorOptions) {
    this.tokenizer = opts.tokenizer;
    this.maxSeqLen = opts.maxSeqLen ?? 128;
    if (!Number.isInteger(this.maxSeqLen) || this.maxSeqLen < 4) {
      throw new GlueConfigError(`maxSeqLen must be an integer >= 4, got ${opts.maxSeqLen}`);
    }
    this.kind = opts.kind ?? "classification";
    this.truncation = opts.truncation ?? "longest_first";
  }

  /** Tokenizes one example (a pair when textB is not null). */
  encode(ex: { textA: string; textB: string | null; label: number }): EncodedExample {
    const e = this.tokenizer.encode(ex.textA, ex.textB, {
      maxLength: this.maxSeqLen,
      truncation: this.truncation,
    });
    return { ids: Int32Array.from(e.ids), typeIds: Int32Array.from(e.tokenTypeIds), label: ex.label };
  }

  encodeAll(examples: readonly { textA: string; textB: string | null; label: number }[]): EncodedExample[] {
    return examples.map((ex) => this.encode(ex));
  }

  /** Lays the sequences end to end: the unpadded batch. */
  collate(items: readonly EncodedExample[]): GlueBatch {
    const B = items.length;
    if (B === 0) throw new GlueConfigError("collate: empty batch");
    const cu = new Int32Array(B + 1);
    let maxSeqlen = 0;
    for (let b = 0; b < B; b++) {
      const n = items[b]!.ids.length;
      cu[b + 1] = cu[b]! + n;
      if (n > maxSeqlen) maxSeqlen = n;
    }
    const T = cu[B]!;
    const inputIds = new Int32Array(T);
    const tokenTypeIds = new Int32Array(T);
    const labels = this.kind === "regression" ? new Float32Array(B) : new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const it = items[b]!;
      inputIds.set(it.ids, cu[b]!);
      tokenTypeIds.set(it.typeIds, cu[b]!);
      labels[b] = it.label;
    }
    return { inputIds, tokenTypeIds, cuSeqlens: cu, maxSeqlen, labels, numSequences: B, numTokens: T };
  }
}

/** Splits a batch into microbatches of at most `size` sequences. */
export function splitGlueBatch(b: GlueBatch, size: number): GlueBatch[] {
  const out: GlueBatch[] = [];
  for (let s0 = 0; s0 < b.numSequences; s0 += size) {
    const s1 = Math.min(b.numSequences, s0 + size);
    const t0 = b.cuSeqlens[s0]!;
    const t1 = b.cuSeqlens[s1]!;
    const cu = new Int32Array(s1 - s0 + 1);
    let maxSeqlen = 0;
    for (let i = 0; i <= s1 - s0; i++) cu[i] = b.cuSeqlens[s0 + i]! - t0;
    for (let i = 0; i < s1 - s0; i++) maxSeqlen = Math.max(maxSeqlen, cu[i + 1]! - cu[i]!);
    out.push({
      inputIds: b.inputIds.slice(t0, t1),
      tokenTypeIds: b.tokenTypeIds.slice(t0, t1),
      cuSeqlens: cu,
      maxSeqlen,
      labels: b.labels.slice(s0, s1),
      numSequences: s1 - s0,
      numTokens: t1 - t0,
    });
  }
  return out;
}

/**
 * The padded form of a batch, as classic BERT (and Hugging Face) takes it:
 * [B, S] ids padded at the right with `padId`, an attention mask of 1 for real
 * tokens, token types, and the labels. S is the longest sequence unless given.
 */
export function padGlueBatch(b: GlueBatch, opts: { padId?: number; seqLen?: number } = {}): PaddedBatch {
  const B = b.numSequences;
  const S = opts.seqLen ?? b.maxSeqlen;
  if (S < b.maxSeqlen) {
    throw new GlueConfigError(
      `padGlueBatch: seqLen ${S} is shorter than the longest sequence (${b.maxSeqlen})`,
    );
  }
  const inputIds = new Int32Array(B * S).fill(opts.padId ?? 0);
  const tokenTypeIds = new Int32Array(B * S);
  const attentionMask = new Int32Array(B * S);
  for (let s = 0; s < B; s++) {
    const t0 = b.cuSeqlens[s]!;
    const t1 = b.cuSeqlens[s + 1]!;
    inputIds.set(b.inputIds.subarray(t0, t1), s * S);
    tokenTypeIds.set(b.tokenTypeIds.subarray(t0, t1), s * S);
    attentionMask.fill(1, s * S, s * S + (t1 - t0));
  }
  return { batchSize: B, seqLen: S, inputIds, tokenTypeIds, attentionMask, labels: b.labels };
}
