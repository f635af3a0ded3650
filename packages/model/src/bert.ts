// Classic BERT (Devlin et al. 2019), the paper's baseline, as Hugging Face
// transformers' BertModel computes it: learned position embeddings, separate
// q/k/v projections, GELU MLP, post-LayerNorm, dropout 0.1.
//
//   embeddings = LN(word[ids] + position[pos] + type[tt]) -> dropout
//   per layer:  a = LN(h + dropout(dense(attention(q(h), k(h), v(h)))))
//               h = LN(a + dropout(out(gelu(intermediate(a)))))
//
// Rows are either the padded B*S grid (attention masks padded keys with an
// additive -10000, the paper's setup) or the packed T real tokens (varlen
// attention over cuSeqlens). Every op but attention is row-wise, so both give
// the same values at real tokens.
//
// Shapes: N rows (B*S padded or T packed), C hidden, NH heads, I intermediate.

import { F, type Tensor, nn } from "@mbert/tensor";
import { explicitAttention, fusedAttentionSupported } from "./attention.js";
import type { BertConfig } from "./config.js";
import type { EncoderInputs } from "./inputs.js";

/**
 * word + position + token-type embeddings -> LayerNorm -> dropout. MosaicBERT
 * has no position embeddings (ALiBi carries position): `positions: false`.
 */
export class BertEmbeddings extends nn.Module {
  readonly word_embeddings: nn.Embedding;
  readonly position_embeddings: nn.Embedding | null;
  readonly token_type_embeddings: nn.Embedding;
  readonly LayerNorm: nn.LayerNorm;
  readonly dropout: nn.Dropout;

  constructor(c: BertConfig, o: nn.LayerOptions = {}, opts: { positions?: boolean } = {}) {
    super();
    const embedding = (name: string, rows: number) =>
      this.registerModule(name, new nn.Embedding(rows, c.hiddenSize, o));
    this.word_embeddings = embedding("word_embeddings", c.vocabSize);
    this.position_embeddings =
      opts.positions === false ? null : embedding("position_embeddings", c.maxPositionEmbeddings);
    this.token_type_embeddings = embedding("token_type_embeddings", c.typeVocabSize);
    this.LayerNorm = this.registerModule("LayerNorm", new nn.LayerNorm(c.hiddenSize, c.layerNormEps, o));
    this.dropout = this.registerModule("dropout", new nn.Dropout(c.hiddenDropoutProb));
  }

  // out: (N, C)  inputIds, tokenTypeIds, positionIds: (N) int32
  forward(x: EncoderInputs): Tensor {
    let sum = F.add(
      F.embedding(x.inputIds, this.word_embeddings.weight, x.computeDType),
      F.embedding(x.tokenTypeIds, this.token_type_embeddings.weight, x.computeDType),
    );
    if (this.position_embeddings) {
      sum = F.add(sum, F.embedding(x.positionIds!, this.position_embeddings.weight, x.computeDType));
    }
    return this.dropout.forward(this.LayerNorm.forward(sum));
  }
}

/**
 * Multi-head self-attention with separate q, k, v projections (HF names).
 * The fused kernel has no dropout on the attention probabilities; when
 * training with attention_probs_dropout_prob > 0 (BERT's 0.1) the scores are
 * computed explicitly instead: softmax(q.kᵀ/sqrt(HS) + mask) -> dropout -> .v.
 */
export class BertSelfAttention extends nn.Module {
  readonly query: nn.Linear;
  readonly key: nn.Linear;
  readonly value: nn.Linear;
  readonly dropout: nn.Dropout;
  readonly numHeads: number;

  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super();
    this.query = this.registerModule("query", new nn.Linear(c.hiddenSize, c.hiddenSize, o));
    this.key = this.registerModule("key", new nn.Linear(c.hiddenSize, c.hiddenSize, o));
    this.value = this.registerModule("value", new nn.Linear(c.hiddenSize, c.hiddenSize, o));
    this.dropout = this.registerModule("dropout", new nn.Dropout(c.attentionProbsDropoutProb));
    this.numHeads = c.numAttentionHeads;
  }

  // out: (N, C)  h: (N, C)
  forward(h: Tensor, x: EncoderInputs): Tensor {
    const layout = x.layout;
    const dropProbs = this.training && this.dropout.p > 0;
    const C = h.shape[1]!;
    if (dropProbs || !fusedAttentionSupported(h.device, C / this.numHeads)) {
      const q = this.query.forward(h);
      const k = this.key.forward(h);
      const v = this.value.forward(h);
      return explicitAttention(q, k, v, x, {
        numHeads: this.numHeads,
        dropout: dropProbs ? this.dropout : null,
      });
    }
    if (layout.kind === "varlen") {
      // One GEMM for q, k and v: the three weights stacked as the fused kernel wants (T, 3C),
      // cast to the activations' dtype (the stack is not a Parameter, so has no bf16 copy).
      const w = F.concat([this.query.weight, this.key.weight, this.value.weight], 0).cast(h.dtype);
      const b = F.concat([this.query.bias!, this.key.bias!, this.value.bias!], 0).cast(h.dtype);
      const qkv = F.linear(h, w, b);
      return F.varlenAttention(qkv, {
        cuSeqlens: layout.cuSeqlens,
        cuSeqlensHost: x.cuSeqlensHost, // validated on the host: no read back from the GPU
        maxSeqlen: layout.maxSeqlen,
        numHeads: this.numHeads,
      });
    }
    const { batchSize: B, seqLen: S } = layout;
    const q = this.query.forward(h).reshape([B, S, C]);
    const k = this.key.forward(h).reshape([B, S, C]);
    const v = this.value.forward(h).reshape([B, S, C]);
    const out = F.paddedAttention(q, k, v, { keyMask: layout.keyMask, numHeads: this.numHeads });
    return out.reshape([B * S, C]);
  }
}

/**
 * dense -> dropout -> LayerNorm(. + residual): the step that closes both
 * halves of a post-LN layer (after attention, C -> C; after the MLP, I -> C).
 */
export class DenseResidualNorm extends nn.Module {
  readonly dense: nn.Linear;
  readonly LayerNorm: nn.LayerNorm;
  readonly dropout: nn.Dropout;

  constructor(inFeatures: number, c: BertConfig, o: nn.LayerOptions = {}) {
    super();
    this.dense = this.registerModule("dense", new nn.Linear(inFeatures, c.hiddenSize, o));
    this.LayerNorm = this.registerModule("LayerNorm", new nn.LayerNorm(c.hiddenSize, c.layerNormEps, o));
    this.dropout = this.registerModule("dropout", new nn.Dropout(c.hiddenDropoutProb));
  }

  // out: (N, C)  h: (N, inFeatures)  residual: (N, C)
  // The dropout runs inside the LayerNorm kernel (same mask and generator draw).
  forward(h: Tensor, residual: Tensor): Tensor {
    const d = this.dropout;
    return this.LayerNorm.forward(this.dense.forward(h), residual, {
      dropout: d.p,
      training: d.training,
      generator: d.generator,
    });
  }
}

/** After attention: C -> C (`attention.output`). */
export class BertSelfOutput extends DenseResidualNorm {
  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super(c.hiddenSize, c, o);
  }
}

export class BertAttention extends nn.Module {
  readonly self: BertSelfAttention;
  readonly output: BertSelfOutput;

  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super();
    this.self = this.registerModule("self", new BertSelfAttention(c, o));
    this.output = this.registerModule("output", new BertSelfOutput(c, o));
  }

  forward(h: Tensor, x: EncoderInputs): Tensor {
    return this.output.forward(this.self.forward(h, x), h);
  }
}

/** The first MLP projection, C -> I, with GELU. */
export class BertIntermediate extends nn.Module {
  readonly dense: nn.Linear;

  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super();
    this.dense = this.registerModule("dense", new nn.Linear(c.hiddenSize, c.intermediateSize, o));
  }

  // out: (N, I)  h: (N, C)
  forward(h: Tensor): Tensor {
    return F.gelu(this.dense.forward(h));
  }
}

/** The second MLP projection, I -> C, dropout, LayerNorm(. + residual) (`output`). */
export class BertOutput extends DenseResidualNorm {
  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super(c.intermediateSize, c, o);
  }
}

export class BertLayer extends nn.Module {
  readonly attention: BertAttention;
  readonly intermediate: BertIntermediate;
  readonly output: BertOutput;

  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super();
    this.attention = this.registerModule("attention", new BertAttention(c, o));
    this.intermediate = this.registerModule("intermediate", new BertIntermediate(c, o));
    this.output = this.registerModule("output", new BertOutput(c, o));
  }

  forward(h: Tensor, x: EncoderInputs): Tensor {
    const a = this.attention.forward(h, x);
    return this.output.forward(this.intermediate.forward(a), a);
  }
}

export class BertEncoder extends nn.Module {
  readonly layer: nn.ModuleList<BertLayer>;

  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super();
    const layers: BertLayer[] = [];
    for (let i = 0; i < c.numHiddenLayers; i++) layers.push(new BertLayer(c, o));
    this.layer = this.registerModule("layer", new nn.ModuleList(layers));
  }

  // out: (N, C)  h: (N, C)
  forward(h: Tensor, x: EncoderInputs): Tensor {
    for (const l of this.layer) h = l.forward(h, x);
    return h;
  }
}
