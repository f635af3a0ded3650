// Hugging Face weight names: family detection, Composer prefixes, tied weights.

import type { ModelFamily } from "./config.js";

/** Composer checkpoints wrap the HF module in `model.`; strip it when every key has it. */
export function stripComposerPrefix<T>(sd: Map<string, T>): Map<string, T> {
  const keys = [...sd.keys()];
  if (keys.length === 0 || !keys.every((k) => k.startsWith("model."))) return sd;
  return new Map([...sd].map(([k, v]) => [k.slice("model.".length), v]));
}

/** MosaicBERT has a fused `attention.self.Wqkv` and a GeGLU `mlp.gated_layers`; classic BERT has neither. */
export function detectFamily(names: Iterable<string>): ModelFamily | undefined {
  let mosaic = false;
  let bert = false;
  for (const n of names) {
    if (n.includes(".attention.self.Wqkv.") || n.includes(".mlp.gated_layers.")) mosaic = true;
    if (n.includes(".attention.self.query.") || n.includes(".intermediate.dense.")) bert = true;
  }
  if (mosaic) return "mosaic";
  if (bert) return "bert";
  return undefined;
}

/** Which head the weights carry. */
export function detectHead(names: Iterable<string>): "mlm" | "classification" | "encoder" {
  let head: "mlm" | "classification" | "encoder" = "encoder";
  for (const n of names) {
    if (n.startsWith("cls.predictions.")) return "mlm";
    if (n.startsWith("classifier.")) head = "classification";
  }
  return head;
}

/** The MLM decoder weight is tied to the word embeddings and is never stored separately. */
export const TIED_DECODER_WEIGHT = "cls.predictions.decoder.weight";

/**
 * The MLM decoder bias: HF BERT names it `cls.predictions.bias` (the decoder's
 * bias is an alias of it), MosaicBERT `cls.predictions.decoder.bias`.
 */
export function decoderBiasName(family: ModelFamily): string {
  return family === "mosaic" ? "cls.predictions.decoder.bias" : "cls.predictions.bias";
}
