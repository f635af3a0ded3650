// BertConfig: the typed form of a Hugging Face BERT `config.json`, for both
// families (classic BERT and MosaicBERT). Keys we do not model are kept in
// `extra` and written back unchanged, so a config survives a round trip.

import * as fs from "node:fs";
import { ConfigError } from "./errors.js";
import { writeFileAtomic } from "./safetensors.js";

/** Which architecture the weights describe. */
export type ModelFamily = "bert" | "mosaic";

export interface BertConfig {
  /** "bert": learned positions, GELU MLP, separate q/k/v. "mosaic": ALiBi, GeGLU, fused Wqkv, unpadded. */
  family: ModelFamily;
  /** Rows of the word-embedding table and columns of the MLM decoder. */
  vocabSize: number;
  /** C: width of every hidden state. */
  hiddenSize: number;
  /** L: encoder layers. */
  numHiddenLayers: number;
  /** NH: attention heads; head size is hiddenSize / numAttentionHeads. */
  numAttentionHeads: number;
  /** I: MLP width (MosaicBERT's gated_layers produce 2I: gate and value). */
  intermediateSize: number;
  /** Activation of the MLP and the MLM transform; only exact-erf "gelu" is supported. */
  hiddenAct: string;
  /** Dropout after embeddings, attention output and MLP (0.1 in BERT pretraining). */
  hiddenDropoutProb: number;
  /** Dropout on attention probabilities; MosaicBERT uses 0 so the fused kernel applies. */
  attentionProbsDropoutProb: number;
  /** Rows of the learned position table (classic BERT); MosaicBERT keeps it only for HF compatibility. */
  maxPositionEmbeddings: number;
  /** Segment (sentence A/B) embedding rows. */
  typeVocabSize: number;
  /** Std of the normal init of weights (HF BERT: 0.02). */
  initializerRange: number;
  /** LayerNorm epsilon (1e-12 as in the original TensorFlow BERT). */
  layerNormEps: number;
  /** Token id of [PAD]; its embedding row receives no gradient (torch padding_idx). */
  padTokenId: number;
  /**
   * MosaicBERT only: the sequence length the reference pre-builds its ALiBi
   * table for. We add the bias inside the attention kernel, so longer
   * sequences need no rebuild; the value is kept for round trips.
   */
  alibiStartingSize: number;
  /** Dropout before the classifier; null means hiddenDropoutProb (HF rule). */
  classifierDropout: number | null;
  /** Outputs of the sequence classifier (1 = regression with MSE). */
  numLabels: number;
  /** "regression" | "single_label_classification" | ..., or null to infer from numLabels. */
  problemType: string | null;
  /** Every other config.json key, written back unchanged. */
  extra: Record<string, unknown>;
}

/** config.json keys read into typed fields (everything else goes to `extra`). */
const KNOWN_KEYS = new Set([
  "vocab_size",
  "hidden_size",
  "num_hidden_layers",
  "num_attention_heads",
  "intermediate_size",
  "hidden_act",
  "hidden_dropout_prob",
  "attention_probs_dropout_prob",
  "max_position_embeddings",
  "type_vocab_size",
  "initializer_range",
  "layer_norm_eps",
  "pad_token_id",
  "alibi_starting_size",
  "classifier_dropout",
  "num_labels",
  "problem_type",
]);

const BASE: Omit<
  BertConfig,
  "family" | "vocabSize" | "hiddenSize" | "numHiddenLayers" | "numAttentionHeads" | "intermediateSize"
> = {
  hiddenAct: "gelu",
  hiddenDropoutProb: 0.1,
  attentionProbsDropoutProb: 0.1,
  maxPositionEmbeddings: 512,
  typeVocabSize: 2,
  initializerRange: 0.02,
  layerNormEps: 1e-12,
  padTokenId: 0,
  alibiStartingSize: 512,
  classifierDropout: null,
  numLabels: 2,
  problemType: null,
  extra: {},
};

export type PresetName =
  | "bert-base"
  | "bert-large"
  | "bert-tiny"
  | "mosaic-bert-base"
  | "mosaic-bert-large"
  | "mosaic-bert-tiny";

type Sizes = Pick<BertConfig, "hiddenSize" | "numHiddenLayers" | "numAttentionHeads" | "intermediateSize">;

// intermediateSize is 4 x hidden (MosaicBERT's gated_layers are [2 x intermediate, hidden]: GeGLU gate and value).
const BASE_SIZES: Sizes = {
  hiddenSize: 768,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  intermediateSize: 3072,
};
const LARGE_SIZES: Sizes = {
  hiddenSize: 1024,
  numHiddenLayers: 24,
  numAttentionHeads: 16,
  intermediateSize: 4096,
};
const TINY: Sizes & Pick<BertConfig, "vocabSize" | "maxPositionEmbeddings"> = {
  vocabSize: 512,
  hiddenSize: 64,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  intermediateSize: 128,
  maxPositionEmbeddings: 64,
};

const BERT_VOCAB = 30522; // WordPiece vocabulary of bert-base-uncased
const MOSAIC_VOCAB = 30528; // 30522 rounded up to a multiple of 64 for GEMM speed
// The fused attention kernel has no dropout.
const MOSAIC = { family: "mosaic", attentionProbsDropoutProb: 0 } as const;

/** Named configurations. Tiny ones match the parity fixtures' sizes. */
export const PRESETS: Record<PresetName, BertConfig> = {
  // The paper's baseline: bert-base-uncased (110M parameters).
  "bert-base": { ...BASE, family: "bert", vocabSize: BERT_VOCAB, ...BASE_SIZES },
  "bert-large": { ...BASE, family: "bert", vocabSize: BERT_VOCAB, ...LARGE_SIZES },
  "bert-tiny": { ...BASE, family: "bert", ...TINY },
  // MosaicBERT-Base (137M parameters with the MLM head).
  "mosaic-bert-base": { ...BASE, ...MOSAIC, vocabSize: MOSAIC_VOCAB, ...BASE_SIZES },
  "mosaic-bert-large": { ...BASE, ...MOSAIC, vocabSize: MOSAIC_VOCAB, ...LARGE_SIZES },
  "mosaic-bert-tiny": { ...BASE, ...MOSAIC, ...TINY },
};

/** A preset by name, with fields overridden. */
export function presetConfig(name: PresetName | string, overrides: Partial<BertConfig> = {}): BertConfig {
  const p = PRESETS[name as PresetName];
  if (p === undefined) {
    throw new ConfigError(
      undefined,
      `unknown preset "${name}"; use one of ${Object.keys(PRESETS).join(", ")}`,
    );
  }
  return { ...p, extra: { ...p.extra }, ...overrides };
}

function num(json: Record<string, unknown>, key: string, fallback: number, file?: string): number {
  const v = json[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new ConfigError(file, `"${key}" must be a number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function int(json: Record<string, unknown>, key: string, fallback: number, file?: string): number {
  const v = num(json, key, fallback, file);
  if (!Number.isInteger(v) || v < 0)
    throw new ConfigError(file, `"${key}" must be a non-negative integer, got ${v}`);
  return v;
}

/**
 * Reads a Hugging Face config object. `family` is a hint: HF configs of both
 * families say model_type "bert"; without a hint, `alibi_starting_size` marks
 * MosaicBERT. `loadPretrained` decides from the weight names instead.
 */
export function configFromHf(json: unknown, opts: { family?: ModelFamily; file?: string } = {}): BertConfig {
  const file = opts.file;
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new ConfigError(file, "config is not a JSON object");
  }
  const j = json as Record<string, unknown>;
  const family: ModelFamily = opts.family ?? ("alibi_starting_size" in j ? "mosaic" : "bert");
  const need = (key: string): number => {
    if (j[key] === undefined) throw new ConfigError(file, `"${key}" is missing; a BERT config.json needs it`);
    return int(j, key, 0, file);
  };
  const id2label = j.id2label as Record<string, unknown> | undefined;
  const numLabelsDefault = id2label && typeof id2label === "object" ? Object.keys(id2label).length : 2;
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(j)) if (!KNOWN_KEYS.has(k)) extra[k] = v;
  const hiddenAct = j.hidden_act ?? "gelu";
  if (typeof hiddenAct !== "string") throw new ConfigError(file, `"hidden_act" must be a string`);
  const cd = j.classifier_dropout;
  if (cd !== undefined && cd !== null && typeof cd !== "number") {
    throw new ConfigError(file, `"classifier_dropout" must be a number or null`);
  }
  const pt = j.problem_type;
  if (pt !== undefined && pt !== null && typeof pt !== "string") {
    throw new ConfigError(file, `"problem_type" must be a string or null`);
  }
  const c: BertConfig = {
    family,
    vocabSize: need("vocab_size"),
    hiddenSize: need("hidden_size"),
    numHiddenLayers: need("num_hidden_layers"),
    numAttentionHeads: need("num_attention_heads"),
    intermediateSize: need("intermediate_size"),
    hiddenAct,
    hiddenDropoutProb: num(j, "hidden_dropout_prob", 0.1, file),
    attentionProbsDropoutProb: num(j, "attention_probs_dropout_prob", family === "mosaic" ? 0 : 0.1, file),
    maxPositionEmbeddings: int(j, "max_position_embeddings", 512, file),
    typeVocabSize: int(j, "type_vocab_size", 2, file),
    initializerRange: num(j, "initializer_range", 0.02, file),
    layerNormEps: num(j, "layer_norm_eps", 1e-12, file),
    padTokenId: int(j, "pad_token_id", 0, file),
    alibiStartingSize: int(j, "alibi_starting_size", 512, file),
    classifierDropout: (cd as number | null | undefined) ?? null,
    numLabels: int(j, "num_labels", numLabelsDefault, file),
    problemType: (pt as string | null | undefined) ?? null,
    extra,
  };
  validateConfig(c, file);
  return c;
}

/** Checks the invariants the models rely on. */
export function validateConfig(c: BertConfig, file?: string): void {
  if (c.hiddenSize % c.numAttentionHeads !== 0) {
    throw new ConfigError(
      file,
      `hidden_size ${c.hiddenSize} is not a multiple of num_attention_heads ${c.numAttentionHeads}`,
    );
  }
  if (c.hiddenAct !== "gelu") {
    throw new ConfigError(file, `hidden_act "${c.hiddenAct}" is not supported; only exact "gelu" is`);
  }
  if (c.padTokenId >= c.vocabSize)
    throw new ConfigError(file, `pad_token_id ${c.padTokenId} >= vocab_size ${c.vocabSize}`);
  if (c.numLabels < 1) throw new ConfigError(file, `num_labels must be at least 1`);
}

/** The Hugging Face config.json object of a config (extra keys first, ours over them). */
export function configToHf(c: BertConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...c.extra };
  out.model_type ??= "bert";
  Object.assign(out, {
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    intermediate_size: c.intermediateSize,
    hidden_act: c.hiddenAct,
    hidden_dropout_prob: c.hiddenDropoutProb,
    attention_probs_dropout_prob: c.attentionProbsDropoutProb,
    max_position_embeddings: c.maxPositionEmbeddings,
    type_vocab_size: c.typeVocabSize,
    initializer_range: c.initializerRange,
    layer_norm_eps: c.layerNormEps,
    pad_token_id: c.padTokenId,
    classifier_dropout: c.classifierDropout,
  });
  if (c.family === "mosaic") out.alibi_starting_size = c.alibiStartingSize;
  // HF derives num_labels from id2label; write it only when id2label does not say it.
  // (2 is HF's default when neither is present.)
  const id2label = out.id2label as Record<string, unknown> | undefined;
  if (id2label ? Object.keys(id2label).length !== c.numLabels : c.numLabels !== 2) {
    delete out.id2label;
    delete out.label2id;
    out.num_labels = c.numLabels;
  }
  if (c.problemType !== null) out.problem_type = c.problemType;
  // Sorted keys, as transformers writes them.
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

export function readConfig(file: string, opts: { family?: ModelFamily } = {}): BertConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(file, `cannot read (${(e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(file, `not well-formed JSON (${(e as Error).message})`);
  }
  return configFromHf(json, { ...opts, file });
}

export function writeConfig(file: string, c: BertConfig): void {
  writeFileAtomic(file, `${JSON.stringify(configToHf(c), null, 2)}\n`);
}

/** Parameter counts: `embedding` counts word, position and token-type tables. */
export interface ParamCounts {
  total: number;
  embedding: number;
  nonEmbedding: number;
}

/**
 * Parameters of a model of `config` with `head`, computed from the sizes (no
 * allocation): the tied decoder weight counts once, as the word embeddings.
 */
export function countParameters(c: BertConfig, head: "mlm" | "classification" | "encoder"): ParamCounts {
  const C = c.hiddenSize;
  const I = c.intermediateSize;
  const embedding =
    c.vocabSize * C + c.typeVocabSize * C + (c.family === "bert" ? c.maxPositionEmbeddings * C : 0);
  const attention = 3 * C * C + 3 * C + C * C + C + 2 * C; // q,k,v (or Wqkv) + output dense + LayerNorm
  const mlp =
    c.family === "mosaic"
      ? C * 2 * I + I * C + C + 2 * C // gated_layers (no bias) + wo + layernorm
      : C * I + I + I * C + C + 2 * C; // intermediate + output + LayerNorm
  let total = embedding + 2 * C + c.numHiddenLayers * (attention + mlp);
  if (head === "mlm") total += C * C + C + 2 * C + c.vocabSize; // transform + decoder bias
  if (head === "classification") total += C * C + C + C * c.numLabels + c.numLabels; // pooler + classifier
  return { total, embedding, nonEmbedding: total - embedding };
}
