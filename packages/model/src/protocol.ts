// The model protocol: what a trainer needs from a model, and nothing more.
//
//   const out = tidy(() => model.forward(batch));   // host batch in, device tensors out
//   out.loss.backward();                             // gradients into the fp32 parameters
//   optimizer.step(model.namedParameters());         // param.decay says which groups decay
//
// `forward` checks the batch on the host (ids in the vocabulary, cuSeqlens
// consistent), uploads it, and returns the loss and logits; everything it
// allocates besides its outputs is freed by the caller's tidy().

import type { Parameter, Tensor } from "@mbert/tensor";
import type { UnpaddedClassificationBatch, UnpaddedMlmBatch } from "./batch.js";
import type { BertConfig, ParamCounts } from "./config.js";
import type { ForwardOptions, ModelOutput } from "./model.js";

export interface TrainableModel<Batch> {
  readonly config: BertConfig;
  /** "mlm" or "classification". */
  readonly head: "mlm" | "classification";
  /** Loss (when the batch has labels), logits, and the number of targets the loss averages over. */
  forward(batch: Batch, opts?: ForwardOptions): ModelOutput;
  /** HF-named parameters, shared ones once (the tied decoder is the word embedding). */
  namedParameters(): Iterable<[string, Parameter]>;
  parameters(): Parameter[];
  /** Names of the parameters that take weight decay and of those that do not (biases, LayerNorm). */
  decayGroups(): { decay: string[]; noDecay: string[] };
  /** Parameter count; `{ embeddings: false }` leaves out the word/position/type tables. */
  numParams(opts?: { embeddings?: boolean }): number;
  paramCounts(): ParamCounts;
  /** 6 x parameters (+ attention's 12 x L x C x seqLen when given): training FLOPs per token, for MFU. */
  flopsPerToken(opts?: { seqLen?: number; embeddings?: boolean }): number;
  train(mode?: boolean): unknown;
  eval(): unknown;
  zeroGrad(): void;
  /** Parameters by HF name (the model's own tensors). */
  stateDict(): Map<string, Tensor>;
  /** Frees every parameter. */
  dispose(): void;
}

/** The pretraining model: MLM on @mbert/data's unpadded batches. */
export type MlmModel = TrainableModel<UnpaddedMlmBatch>;

/** The finetuning model: one label (class id or score) per sequence. */
export type ClassificationModel = TrainableModel<UnpaddedClassificationBatch>;
