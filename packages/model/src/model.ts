// The models users train: an encoder (classic BERT or MosaicBERT, chosen by
// config.family) under Hugging Face's module names, with an MLM head or a
// sequence classification/regression head.
//
//   BertForMaskedLM                 bert.{embeddings, encoder}  cls.predictions.{transform, bias|decoder.bias}
//   BertForSequenceClassification   bert.{embeddings, encoder, pooler}  classifier
//
// State-dict keys are the dotted module paths, equal to the HF names. The MLM
// decoder weight is the word-embedding matrix itself (tied, never stored).

import {
  type DType,
  type Device,
  F,
  type Generator,
  type Tensor,
  defaultGenerator,
  fromArray,
  noGrad,
  nn,
  zeros,
} from "@mbert/tensor";
import {
  type IntArray,
  type PaddedBatch,
  type UnpaddedBatch,
  type UnpaddedClassificationBatch,
  type UnpaddedMlmBatch,
  checkIds,
  unpadBatch,
} from "./batch.js";
import { BertEmbeddings, BertEncoder } from "./bert.js";
import { type BertConfig, type ParamCounts, validateConfig } from "./config.js";
import { BatchError } from "./errors.js";
import { type EncoderInputs, disposeInputs, i32, preparePadded, prepareUnpadded } from "./inputs.js";
import type { ClassificationModel, MlmModel } from "./protocol.js";
import { MosaicBertEmbeddings, MosaicBertEncoder, lastLayerSubset } from "./mosaic_bert.js";

/** pooled = tanh(dense(h[CLS])). */
export class BertPooler extends nn.Module {
  readonly dense: nn.Linear;

  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super();
    this.dense = this.registerModule("dense", new nn.Linear(c.hiddenSize, c.hiddenSize, o));
  }

  // out: (B, C)  cls: (B, C) hidden states of each sequence's first token
  forward(cls: Tensor): Tensor {
    return F.tanh(this.dense.forward(cls));
  }
}

/** The encoder: embeddings + layers (+ pooler for classification). */
export class BertModel extends nn.Module {
  readonly config: BertConfig;
  readonly embeddings: BertEmbeddings | MosaicBertEmbeddings;
  readonly encoder: BertEncoder | MosaicBertEncoder;
  readonly pooler: BertPooler | null;

  constructor(c: BertConfig, opts: { pooler: boolean }, o: nn.LayerOptions = {}) {
    super();
    validateConfig(c);
    this.config = c;
    if (c.family === "mosaic") {
      this.embeddings = this.registerModule("embeddings", new MosaicBertEmbeddings(c, o));
      this.encoder = this.registerModule("encoder", new MosaicBertEncoder(c, o));
    } else {
      this.embeddings = this.registerModule("embeddings", new BertEmbeddings(c, o));
      this.encoder = this.registerModule("encoder", new BertEncoder(c, o));
    }
    this.pooler = opts.pooler ? this.registerModule("pooler", new BertPooler(c, o)) : null;
  }

  /** out: (N, C), or (R, C) for the rows of `subset` (MosaicBERT: only the last layer is cut down). */
  forward(x: EncoderInputs, subset: Tensor | null = null): Tensor {
    const h = this.embeddings.forward(x);
    if (this.encoder instanceof MosaicBertEncoder) return this.encoder.forward(h, x, subset);
    const out = this.encoder.forward(h, x);
    return subset === null ? out : F.indexSelect(out, subset);
  }

  /** The word-embedding matrix (V, C), also the MLM decoder weight. */
  get wordEmbeddings(): nn.Parameter {
    return this.embeddings.word_embeddings.weight;
  }
}

/** What every model's forward returns. */
export interface ModelOutput {
  /** Scalar loss when the batch has labels. */
  loss: Tensor | null;
  /** MLM: (M, V) at masked tokens, or (N, V) at every row without labels. Classification: (B, numLabels). */
  logits: Tensor;
  /** The encoder's last hidden states, (N, C), when asked for with `outputHiddenStates`. */
  hiddenStates?: Tensor;
  /** Targets the loss averages over: masked tokens (MLM) or sequences (classification); 0 without labels. */
  numTargets: number;
}

export interface ForwardOptions {
  /** Also return the encoder's last hidden states (N, C) at every row. */
  outputHiddenStates?: boolean;
}

/** Common to both heads: devices, the input path, parameter counts. */
abstract class BertPreTrainedModel extends nn.Module {
  readonly config: BertConfig;
  abstract readonly bert: BertModel;

  constructor(c: BertConfig) {
    super();
    this.config = c;
  }

  get family(): BertConfig["family"] {
    return this.config.family;
  }

  /**
   * The dtype activations are computed in; null (default) picks bf16 on cuda
   * (fp32 master weights, bf16 copies for the GEMMs, fp32 gradients) and the
   * parameters' own dtype (float32, or float64 for gradient checks) on the cpu.
   */
  computeDType: DType | null = null;

  /** The resolved compute dtype. */
  get activationDType(): DType {
    if (this.computeDType !== null) return this.computeDType;
    const w = this.bert.wordEmbeddings;
    return w.device === "cuda" ? "bfloat16" : w.dtype;
  }

  /** The device the parameters live on. */
  get device(): Device {
    return this.bert.wordEmbeddings.device;
  }

  /**
   * Initialization, in one place, as Hugging Face BERT's `_init_weights`:
   * every Linear and Embedding weight ~ normal(0, initializer_range), biases 0,
   * LayerNorm weight 1 and bias 0, the [PAD] embedding row 0. The MLM decoder
   * weight is the (tied) word embedding; its bias starts at 0.
   */
  override resetParameters(generator: Generator = defaultGenerator): void {
    noGrad(() => {
      for (const [, m] of this.namedModules()) {
        if (m instanceof nn.Linear || m instanceof nn.Embedding) {
          m.initStd = this.config.initializerRange;
          m.resetParameters(generator);
        } else if (m instanceof nn.LayerNorm) {
          m.resetParameters();
        }
      }
      if (this instanceof BertForMaskedLM) {
        const b = this.cls.predictions.decoderBias;
        const z = zeros(b.shape, { dtype: b.dtype, device: b.device });
        nn.copyInto(b, z);
        z.dispose();
      }
      // torch's padding_idx: the [PAD] row starts at zero.
      const emb = this.bert.wordEmbeddings;
      const host = emb.data();
      const C = emb.shape[1]!;
      host.fill(0, this.config.padTokenId * C, (this.config.padTokenId + 1) * C);
      const t = fromArray(host, emb.shape, { dtype: emb.dtype, device: emb.device });
      nn.copyInto(emb, t);
      t.dispose();
    });
  }

  /**
   * Weight-decay groups by rule: matrices and embedding tables decay; biases
   * and LayerNorm weights do not (`param.decay`, set by the layers).
   */
  decayGroups(): { decay: string[]; noDecay: string[] } {
    const decay: string[] = [];
    const noDecay: string[] = [];
    for (const [name, p] of this.namedParameters()) (p.decay ? decay : noDecay).push(name);
    return { decay, noDecay };
  }

  /** Parameters, shared ones once (the tied decoder is the word embedding). */
  numParams(opts: { embeddings?: boolean } = {}): number {
    const c = this.paramCounts();
    return opts.embeddings === false ? c.nonEmbedding : c.total;
  }

  paramCounts(): ParamCounts {
    let total = 0;
    let embedding = 0;
    for (const [name, p] of this.namedParameters()) {
      total += p.size;
      if (name.startsWith("bert.embeddings.") && name.endsWith("_embeddings.weight")) embedding += p.size;
    }
    return { total, embedding, nonEmbedding: total - embedding };
  }

  /**
   * Training FLOPs per token for MFU: 6 x parameters (forward 2, backward 4;
   * the paper's rule), plus, when `seqLen` is given, attention's score and
   * value products, 12 x layers x hidden x seqLen.
   */
  flopsPerToken(opts: { seqLen?: number; embeddings?: boolean } = {}): number {
    const n = this.numParams({ embeddings: opts.embeddings ?? true });
    const attn = opts.seqLen ? 12 * this.config.numHiddenLayers * this.config.hiddenSize * opts.seqLen : 0;
    return 6 * n + attn;
  }

  /** Device inputs for an unpadded batch (checks ids on the host first). */
  protected prepare(batch: UnpaddedBatch): EncoderInputs {
    return prepareUnpadded(batch, this.config, this.device, {
      positions: this.family === "bert",
      alibi: this.family === "mosaic",
      computeDType: this.activationDType,
    });
  }
}

/** Masked language modeling: transform (dense, GELU, LayerNorm) then the tied decoder. */
export class BertPredictionHeadTransform extends nn.Module {
  readonly dense: nn.Linear;
  readonly LayerNorm: nn.LayerNorm;

  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super();
    this.dense = this.registerModule("dense", new nn.Linear(c.hiddenSize, c.hiddenSize, o));
    this.LayerNorm = this.registerModule("LayerNorm", new nn.LayerNorm(c.hiddenSize, c.layerNormEps, o));
  }

  forward(h: Tensor): Tensor {
    return this.LayerNorm.forward(F.gelu(this.dense.forward(h)));
  }
}

/** Holds the MosaicBERT decoder bias under `decoder.bias`. */
class DecoderBias extends nn.Module {
  readonly bias: nn.Parameter;
  constructor(vocabSize: number, o: nn.LayerOptions) {
    super();
    this.bias = this.registerParameter("bias", zeros([vocabSize], o))!;
    this.bias.decay = false;
  }
}

export class BertLMPredictionHead extends nn.Module {
  readonly transform: BertPredictionHeadTransform;
  /** (V) decoder bias: `cls.predictions.bias` (HF BERT) or `cls.predictions.decoder.bias` (MosaicBERT). */
  readonly decoderBias: nn.Parameter;

  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super();
    this.transform = this.registerModule("transform", new BertPredictionHeadTransform(c, o));
    if (c.family === "mosaic") {
      this.decoderBias = this.registerModule("decoder", new DecoderBias(c.vocabSize, o)).bias;
    } else {
      this.decoderBias = this.registerParameter("bias", zeros([c.vocabSize], o))!;
      this.decoderBias.decay = false;
    }
  }

  // out: (R, V)  h: (R, C)  wordEmbeddings: (V, C)
  forward(h: Tensor, wordEmbeddings: Tensor): Tensor {
    return F.linear(this.transform.forward(h), wordEmbeddings, this.decoderBias);
  }
}

export class BertOnlyMLMHead extends nn.Module {
  readonly predictions: BertLMPredictionHead;
  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super();
    this.predictions = this.registerModule("predictions", new BertLMPredictionHead(c, o));
  }
}

export class BertForMaskedLM extends BertPreTrainedModel implements MlmModel {
  readonly bert: BertModel;
  readonly cls: BertOnlyMLMHead;
  readonly head = "mlm" as const;

  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super(c);
    this.bert = this.registerModule("bert", new BertModel(c, { pooler: false }, o));
    this.cls = this.registerModule("cls", new BertOnlyMLMHead(c, o));
  }

  /**
   * MLM on an unpadded batch. With `maskedPositions` and `labels` (training),
   * the head runs only on the masked tokens (MosaicBERT also cuts its last
   * layer down to them and the [CLS] rows) and `loss` is the mean
   * cross-entropy over them. Without, logits cover every token.
   */
  forward(batch: UnpaddedBatch | UnpaddedMlmBatch, opts: ForwardOptions = {}): ModelOutput {
    const x = this.prepare(batch);
    try {
      return this.run(x, "labels" in batch ? i32(batch.labels) : null, opts);
    } finally {
      disposeInputs(x);
    }
  }

  /**
   * Hugging Face style: [B, S] ids, attention mask and labels (-100 = not
   * masked; MosaicBERT, as its reference, counts labels > 0). Classic BERT
   * runs the padded grid (the paper's baseline); MosaicBERT unpads first.
   * Logits rows follow the model's rows: B*S for classic BERT, T real tokens
   * for MosaicBERT (use `padRows` to place them back).
   */
  forwardPadded(p: PaddedBatch, opts: ForwardOptions = {}): ModelOutput {
    // (B*S) MLM labels may come as `mlmLabels` or, as @mbert/data's PaddedMlmBatch has them, `labels`.
    const mlm =
      p.mlmLabels ?? (p.labels?.length === p.batchSize * p.seqLen ? (p.labels as IntArray) : undefined);
    if (this.family === "mosaic") {
      const u = unpadBatch({ ...p, mlmLabels: mlm, labels: undefined }, { mlmRule: "positive" });
      return this.forward(u.batch as UnpaddedMlmBatch, opts);
    }
    let masked: Int32Array | undefined;
    let labels: Int32Array | null = null;
    if (mlm) {
      const pos: number[] = [];
      const lab: number[] = [];
      for (let i = 0; i < mlm.length; i++) {
        if (mlm[i] !== -100) {
          pos.push(i);
          lab.push(mlm[i]!);
        }
      }
      masked = Int32Array.from(pos);
      labels = Int32Array.from(lab);
    }
    const x = preparePadded({ ...p, maskedRows: masked }, this.config, this.device, this.activationDType);
    try {
      return this.run(x, labels, opts);
    } finally {
      disposeInputs(x);
    }
  }

  private run(x: EncoderInputs, labels: Int32Array | null, opts: ForwardOptions): ModelOutput {
    const wte = this.bert.wordEmbeddings;
    const head = this.cls.predictions;
    if (x.maskedRows === null || labels === null) {
      const h = this.bert.forward(x);
      const logits = head.forward(h, wte);
      return { loss: null, logits, numTargets: 0, ...(opts.outputHiddenStates ? { hiddenStates: h } : {}) };
    }
    if (labels.length !== x.maskedRowsHost!.length) {
      throw new BatchError(
        `labels holds ${labels.length} entries, maskedPositions ${x.maskedRowsHost!.length}`,
      );
    }
    checkIds("labels", labels, this.config.vocabSize);
    let hidden: Tensor | undefined;
    let masked: Tensor;
    if (this.family === "mosaic" && !opts.outputHiddenStates) {
      // The reference's subset: the last layer's MLP/LN run on masked + [CLS] rows only.
      const s = lastLayerSubset(x.maskedRowsHost!, x.clsRowsHost, this.device);
      try {
        const rows = this.bert.forward(x, s.subset);
        masked = F.indexSelect(rows, s.maskedInSubset);
      } finally {
        s.subset.dispose();
        s.maskedInSubset.dispose();
      }
    } else {
      hidden = this.bert.forward(x);
      masked = F.indexSelect(hidden, x.maskedRows);
    }
    const logits = head.forward(masked, wte);
    const labelsT = fromArray(labels, [labels.length], { dtype: "int32", device: this.device });
    try {
      // No masked token in the batch: a zero loss (sum over nothing) rather than 0/0.
      const loss =
        labels.length > 0
          ? F.crossEntropy(logits, labelsT, { numKept: labels.length })
          : F.crossEntropy(logits, labelsT, { reduction: "sum" });
      return {
        loss,
        logits,
        numTargets: labels.length,
        ...(hidden && opts.outputHiddenStates ? { hiddenStates: hidden } : {}),
      };
    } finally {
      labelsT.dispose();
    }
  }
}

export class BertForSequenceClassification extends BertPreTrainedModel implements ClassificationModel {
  readonly bert: BertModel;
  readonly dropout: nn.Dropout;
  readonly classifier: nn.Linear;
  readonly head = "classification" as const;

  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super(c);
    this.bert = this.registerModule("bert", new BertModel(c, { pooler: true }, o));
    this.dropout = this.registerModule("dropout", new nn.Dropout(c.classifierDropout ?? c.hiddenDropoutProb));
    this.classifier = this.registerModule("classifier", new nn.Linear(c.hiddenSize, c.numLabels, o));
  }

  /** True when the loss is MSE (num_labels 1 or problem_type "regression"). */
  get isRegression(): boolean {
    return (
      this.config.problemType === "regression" ||
      (this.config.problemType === null && this.config.numLabels === 1)
    );
  }

  /** logits (B, numLabels) from tanh(dense(h[CLS])); loss: cross-entropy, or MSE for regression. */
  forward(batch: UnpaddedClassificationBatch, opts: ForwardOptions = {}): ModelOutput {
    const x = this.prepare(batch);
    try {
      return this.run(x, batch.labels ?? null, opts);
    } finally {
      disposeInputs(x);
    }
  }

  /** Hugging Face style [B, S] input; classic BERT runs the padded grid, MosaicBERT unpads. */
  forwardPadded(p: PaddedBatch, opts: ForwardOptions = {}): ModelOutput {
    if (this.family === "mosaic") return this.forward(unpadBatch(p).batch, opts);
    const x = preparePadded(p, this.config, this.device, this.activationDType);
    try {
      return this.run(x, p.labels ?? null, opts);
    } finally {
      disposeInputs(x);
    }
  }

  private run(x: EncoderInputs, labels: ArrayLike<number> | null, opts: ForwardOptions): ModelOutput {
    const B = x.numSequences;
    const h = this.bert.forward(x);
    const pooled = this.bert.pooler!.forward(F.indexSelect(h, x.clsRows));
    const logits = this.classifier.forward(this.dropout.forward(pooled)); // (B, numLabels)
    const hs = opts.outputHiddenStates ? { hiddenStates: h } : {};
    if (labels === null) return { loss: null, logits, numTargets: 0, ...hs };
    if (labels.length !== B) throw new BatchError(`labels holds ${labels.length} entries for ${B} sequences`);
    if (this.isRegression) {
      const target = fromArray(
        Float32Array.from(labels),
        [B, this.config.numLabels === 1 ? 1 : labels.length / B],
        {
          dtype: logits.dtype,
          device: this.device,
        },
      );
      try {
        return { loss: F.mseLoss(logits, target), logits, numTargets: B, ...hs };
      } finally {
        target.dispose();
      }
    }
    const ids = new Int32Array(B);
    for (let i = 0; i < B; i++) {
      const l = labels[i]!;
      if (!Number.isInteger(l) || l < 0 || l >= this.config.numLabels) {
        throw new BatchError(`labels[${i}] = ${l} is not a class id in [0, ${this.config.numLabels})`);
      }
      ids[i] = l;
    }
    const target = fromArray(ids, [B], { dtype: "int32", device: this.device });
    try {
      return { loss: F.crossEntropy(logits, target, { numKept: B }), logits, numTargets: B, ...hs };
    } finally {
      target.dispose();
    }
  }
}

export type AnyBertModel = BertForMaskedLM | BertForSequenceClassification;

/** A model of the given head, freshly initialized. */
export function createModel(
  config: BertConfig,
  head: "mlm" | "classification",
  opts: { device?: Device; dtype?: "float32" | "float64"; generator?: Generator; init?: boolean } = {},
): AnyBertModel {
  // Parameters are created where they will live (no copy through the CPU).
  const o: nn.LayerOptions = { device: opts.device ?? "cpu", dtype: opts.dtype ?? "float32" };
  const m = head === "mlm" ? new BertForMaskedLM(config, o) : new BertForSequenceClassification(config, o);
  if (opts.init !== false) m.resetParameters(opts.generator);
  return m;
}
