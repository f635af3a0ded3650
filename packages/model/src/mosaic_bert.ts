// MosaicBERT (Portes et al., NeurIPS 2023), as mosaicml/examples
// benchmarks/bert/src/bert_layers.py computes it:
//
//   embeddings = LN(word[ids] + type[tt]) -> dropout      (no position table)
//   per layer:  qkv = Wqkv(h)                              (one fused GEMM, (T, 3C))
//               attn = softmax(q.k/sqrt(HS) - slope_h|i-j|) v  over each sequence
//               a = LN(h + dropout(dense(attn)))
//               h = LN(a + dropout(wo(gelu(g) * u)))       [g | u] = gated_layers(a)
//
// Hidden states stay unpadded, (T, C), from the embeddings to the last layer.
// ALiBi is added inside the attention kernel from the per-head slopes, so any
// sequence length works without rebuilding a table. In MLM training the last
// layer computes attention for every token (keys and values need them) but its
// attention output projection, LayerNorms and MLP only for the rows the loss
// reads: the masked tokens and each sequence's [CLS] (the reference's
// `subset_idx`).
//
// Shapes: T tokens, C hidden, NH heads, HS head size, I intermediate, R subset rows.

import { F, type Tensor, fromArray, nn } from "@mbert/tensor";
import { BertEmbeddings, BertSelfOutput } from "./bert.js";
import { alibiSlopes } from "./alibi.js";
import { explicitAttention, fusedAttentionSupported } from "./attention.js";
import type { BertConfig } from "./config.js";
import type { EncoderInputs } from "./inputs.js";

/** Word + token-type embeddings (no position embeddings: ALiBi carries position). */
export class MosaicBertEmbeddings extends BertEmbeddings {
  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super(c, o, { positions: false });
  }
}

/** Self-attention over packed sequences with ALiBi; q, k, v from one fused `Wqkv`. */
export class MosaicBertSelfAttention extends nn.Module {
  readonly Wqkv: nn.Linear;
  readonly numHeads: number;
  /** (NH) ALiBi slopes, for the explicit path (the fused one takes them from the inputs). */
  readonly slopes: Float32Array;

  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super();
    this.Wqkv = this.registerModule("Wqkv", new nn.Linear(c.hiddenSize, 3 * c.hiddenSize, o));
    this.numHeads = c.numAttentionHeads;
    this.slopes = alibiSlopes(c.numAttentionHeads);
  }

  // out: (T, C)  h: (T, C)
  forward(h: Tensor, x: EncoderInputs): Tensor {
    if (x.layout.kind !== "varlen") throw new Error("MosaicBERT attention takes unpadded (varlen) inputs");
    const qkv = this.Wqkv.forward(h); // (T, 3C): [q | k | v], heads contiguous within each
    const C = h.shape[1]!;
    if (!fusedAttentionSupported(h.device, C / this.numHeads)) {
      const [q, k, v] = [0, 1, 2].map((i) => F.slice(qkv, 1, i * C, (i + 1) * C)) as [Tensor, Tensor, Tensor];
      return explicitAttention(q, k, v, x, { numHeads: this.numHeads, slopes: this.slopes });
    }
    return F.varlenAttention(qkv, {
      cuSeqlens: x.layout.cuSeqlens,
      cuSeqlensHost: x.cuSeqlensHost, // validated on the host: no read back from the GPU
      maxSeqlen: x.layout.maxSeqlen,
      numHeads: this.numHeads,
      alibiSlopes: x.alibiSlopes, // (NH) float32, uploaded with the batch
    });
  }
}

export class MosaicBertAttention extends nn.Module {
  readonly self: MosaicBertSelfAttention;
  readonly output: BertSelfOutput;

  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super();
    this.self = this.registerModule("self", new MosaicBertSelfAttention(c, o));
    this.output = this.registerModule("output", new BertSelfOutput(c, o));
  }

  // out: (R, C) for subset rows (all T when subset is null)  h: (T, C)  subset: (R) int32
  forward(h: Tensor, x: EncoderInputs, subset: Tensor | null = null): Tensor {
    const attn = this.self.forward(h, x);
    if (subset === null) return this.output.forward(attn, h);
    return this.output.forward(F.indexSelect(attn, subset), F.indexSelect(h, subset));
  }
}

/** GeGLU MLP: gated_layers (C -> 2I, no bias), gelu(gate) * value, wo (I -> C), LN(. + residual). */
export class BertGatedLinearUnitMLP extends nn.Module {
  readonly gated_layers: nn.Linear;
  readonly wo: nn.Linear;
  readonly layernorm: nn.LayerNorm;
  readonly dropout: nn.Dropout;

  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super();
    this.gated_layers = this.registerModule(
      "gated_layers",
      new nn.Linear(c.hiddenSize, 2 * c.intermediateSize, { ...o, bias: false }),
    );
    this.wo = this.registerModule("wo", new nn.Linear(c.intermediateSize, c.hiddenSize, o));
    this.layernorm = this.registerModule("layernorm", new nn.LayerNorm(c.hiddenSize, c.layerNormEps, o));
    this.dropout = this.registerModule("dropout", new nn.Dropout(c.hiddenDropoutProb));
  }

  // out: (R, C)  h: (R, C)
  forward(h: Tensor): Tensor {
    // (R, I) = dropout(gelu(x[:, :I]) * x[:, I:]), the dropout fused into the GeGLU kernel
    const d = this.dropout;
    const gated = F.geglu(this.gated_layers.forward(h), {
      dropout: d.p,
      training: d.training,
      generator: d.generator,
    });
    return this.layernorm.forward(this.wo.forward(gated), h);
  }
}

export class MosaicBertLayer extends nn.Module {
  readonly attention: MosaicBertAttention;
  readonly mlp: BertGatedLinearUnitMLP;

  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super();
    this.attention = this.registerModule("attention", new MosaicBertAttention(c, o));
    this.mlp = this.registerModule("mlp", new BertGatedLinearUnitMLP(c, o));
  }

  forward(h: Tensor, x: EncoderInputs, subset: Tensor | null = null): Tensor {
    return this.mlp.forward(this.attention.forward(h, x, subset));
  }
}

export class MosaicBertEncoder extends nn.Module {
  readonly layer: nn.ModuleList<MosaicBertLayer>;

  constructor(c: BertConfig, o: nn.LayerOptions = {}) {
    super();
    const layers: MosaicBertLayer[] = [];
    for (let i = 0; i < c.numHiddenLayers; i++) layers.push(new MosaicBertLayer(c, o));
    this.layer = this.registerModule("layer", new nn.ModuleList(layers));
  }

  /**
   * out: (T, C), or (R, C) when `subset` (R rows, ascending) is given: then
   * the last layer computes only those rows after its attention.
   */
  forward(h: Tensor, x: EncoderInputs, subset: Tensor | null = null): Tensor {
    const n = this.layer.length;
    for (let i = 0; i < n; i++) h = this.layer.at(i).forward(h, x, i === n - 1 ? subset : null);
    return h;
  }
}

/**
 * The reference's subset for the last layer: masked tokens and each
 * sequence's first token, ascending; and where, within it, the masked rows sit.
 */
export function lastLayerSubset(
  maskedRows: Int32Array,
  clsRows: Int32Array,
  device: "cpu" | "cuda",
): { subset: Tensor; maskedInSubset: Tensor } {
  const rows = [...new Set([...maskedRows, ...clsRows])].sort((a, b) => a - b);
  const where = new Map(rows.map((r, i) => [r, i]));
  const masked = Int32Array.from(maskedRows, (r) => where.get(r)!);
  return {
    subset: fromArray(Int32Array.from(rows), [rows.length], { dtype: "int32", device }),
    maskedInSubset: fromArray(masked, [masked.length], { dtype: "int32", device }),
  };
}
