// Host batch -> device tensors, in one place. Everything a forward needs about
// the layout of the batch (rows, sequence starts, masked rows) is computed here
// on the host, checked, and uploaded once.

import { type DType, type Device, type Tensor, fromArray } from "@mbert/tensor";
import { alibiSlopes } from "./alibi.js";
import { type IntArray, type UnpaddedBatch, validateBatch } from "./batch.js";
import type { BertConfig } from "./config.js";
import { BatchError } from "./errors.js";

/** How attention sees the rows of the hidden states. */
export type AttentionLayout =
  /** N = T packed tokens; sequences delimited by cuSeqlens. */
  | { kind: "varlen"; cuSeqlens: Tensor; maxSeqlen: number }
  /** N = B*S rows, padded at the right; keyMask (B, S) additive (0 keep, -10000 pad). */
  | { kind: "padded"; batchSize: number; seqLen: number; keyMask: Tensor };

/** A batch on the device, as the encoders consume it. */
export interface EncoderInputs {
  /** (N) int32 token ids, N rows of hidden states. */
  inputIds: Tensor;
  /** (N) int32 segment ids. */
  tokenTypeIds: Tensor;
  /** (N) int32 position ids (classic BERT only). */
  positionIds: Tensor | null;
  layout: AttentionLayout;
  /** Rows. */
  numRows: number;
  /** B sequences. */
  numSequences: number;
  /** (B) int32 row of each sequence's first token ([CLS]). */
  clsRows: Tensor;
  /** (B+1) host copy of the sequence starts (the padded layout: 0, S, 2S, ...). */
  cuSeqlensHost: Int32Array;
  /** (B) host copy of clsRows. */
  clsRowsHost: Int32Array;
  /** (M) int32 rows of the masked tokens, when the batch has them. */
  maskedRows: Tensor | null;
  maskedRowsHost: Int32Array | null;
  /** The dtype activations are computed in (bf16 on cuda; the parameters' dtype on the cpu). */
  computeDType: DType;
  /** (NH) float32 ALiBi slopes (MosaicBERT), or null. */
  alibiSlopes: Tensor | null;
  /** Tensors to dispose with the inputs. */
  owned: Tensor[];
}

/** The ids as an Int32Array (the array itself when it already is one). */
export function i32(a: IntArray): Int32Array {
  return a instanceof Int32Array ? a : Int32Array.from(a as ArrayLike<number>);
}

/** An int32 or float32 tensor of `a` on `device`, disposed with the inputs. */
function upload(
  a: Int32Array | Float32Array,
  device: Device,
  owned: Tensor[],
  shape: number[] = [a.length],
): Tensor {
  const t = fromArray(a, shape, { dtype: a instanceof Float32Array ? "float32" : "int32", device });
  owned.push(t);
  return t;
}

/** Unpadded (varlen) inputs: N = T tokens. */
export function prepareUnpadded(
  batch: UnpaddedBatch,
  config: BertConfig,
  device: Device,
  opts: { positions: boolean; alibi: boolean; computeDType: DType },
): EncoderInputs {
  const T = validateBatch(batch, config.vocabSize, config.typeVocabSize);
  const cu = i32(batch.cuSeqlens);
  const B = cu.length - 1;
  const owned: Tensor[] = [];
  const clsRowsHost = cu.subarray(0, B).slice();
  let positionIds: Tensor | null = null;
  if (opts.positions) {
    let pos: Int32Array;
    if (batch.positionIds !== undefined) {
      pos = i32(batch.positionIds);
      if (pos.length !== T) throw new BatchError(`positionIds holds ${pos.length} entries, inputIds ${T}`);
    } else {
      pos = new Int32Array(T);
      for (let b = 0; b < B; b++) for (let t = cu[b]!; t < cu[b + 1]!; t++) pos[t] = t - cu[b]!;
    }
    for (let t = 0; t < T; t++) {
      if (pos[t]! >= config.maxPositionEmbeddings) {
        throw new BatchError(
          `position ${pos[t]} of token ${t} is beyond max_position_embeddings ${config.maxPositionEmbeddings}; classic BERT cannot take sequences longer than its position table`,
        );
      }
    }
    positionIds = upload(pos, device, owned);
  }
  const maskedRowsHost = batch.maskedPositions !== undefined ? i32(batch.maskedPositions) : null;
  return {
    inputIds: upload(i32(batch.inputIds), device, owned),
    tokenTypeIds: upload(batch.tokenTypeIds ? i32(batch.tokenTypeIds) : new Int32Array(T), device, owned),
    positionIds,
    layout: { kind: "varlen", cuSeqlens: upload(cu, device, owned), maxSeqlen: batch.maxSeqlen },
    numRows: T,
    numSequences: B,
    clsRows: upload(clsRowsHost, device, owned),
    cuSeqlensHost: cu,
    clsRowsHost,
    maskedRows: maskedRowsHost ? upload(maskedRowsHost, device, owned) : null,
    maskedRowsHost,
    computeDType: opts.computeDType,
    alibiSlopes: opts.alibi ? upload(alibiSlopes(config.numAttentionHeads), device, owned) : null,
    owned,
  };
}

/** Padded inputs for classic BERT: N = B*S rows, padding masked out of the keys. */
export function preparePadded(
  p: {
    batchSize: number;
    seqLen: number;
    inputIds: IntArray;
    attentionMask?: IntArray;
    tokenTypeIds?: IntArray;
    maskedRows?: Int32Array;
  },
  config: BertConfig,
  device: Device,
  computeDType: DType,
): EncoderInputs {
  const { batchSize: B, seqLen: S } = p;
  const N = B * S;
  if (p.inputIds.length !== N)
    throw new BatchError(`inputIds holds ${p.inputIds.length} entries, not B*S = ${N}`);
  if (S > config.maxPositionEmbeddings) {
    throw new BatchError(
      `sequence length ${S} is beyond max_position_embeddings ${config.maxPositionEmbeddings}`,
    );
  }
  const ids = i32(p.inputIds);
  const tt = p.tokenTypeIds ? i32(p.tokenTypeIds) : new Int32Array(N);
  // validateBatch checks ids against the vocabulary; treat the padded grid as one sequence for that.
  validateBatch(
    { inputIds: ids, tokenTypeIds: tt, cuSeqlens: [0, N], maxSeqlen: N },
    config.vocabSize,
    config.typeVocabSize,
  );
  const mask = new Float32Array(N);
  if (p.attentionMask) for (let i = 0; i < N; i++) mask[i] = p.attentionMask[i] ? 0 : -10000;
  const pos = new Int32Array(N);
  for (let i = 0; i < N; i++) pos[i] = i % S;
  const clsRowsHost = new Int32Array(B);
  for (let b = 0; b < B; b++) clsRowsHost[b] = b * S;
  const owned: Tensor[] = [];
  const keyMask = upload(mask, device, owned, [B, S]);
  return {
    inputIds: upload(ids, device, owned),
    tokenTypeIds: upload(tt, device, owned),
    positionIds: upload(pos, device, owned),
    layout: { kind: "padded", batchSize: B, seqLen: S, keyMask },
    numRows: N,
    numSequences: B,
    clsRows: upload(clsRowsHost, device, owned),
    cuSeqlensHost: Int32Array.from({ length: B + 1 }, (_, b) => b * S),
    clsRowsHost,
    maskedRows: p.maskedRows ? upload(p.maskedRows, device, owned) : null,
    maskedRowsHost: p.maskedRows ?? null,
    computeDType,
    alibiSlopes: null,
    owned,
  };
}

export function disposeInputs(x: EncoderInputs): void {
  for (const t of x.owned) t.dispose();
}
