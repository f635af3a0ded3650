// Hugging Face checkpoint folders: config.json + model.safetensors (or a
// sharded model.safetensors.index.json), for both families. No pickle is ever
// loaded: a folder with only pytorch_model.bin is refused with how to convert it.

import * as fs from "node:fs";
import * as path from "node:path";
import { type DType, type Device, type Tensor, fromArray, noGrad } from "@mbert/tensor";
import { type BertConfig, type ModelFamily, readConfig, writeConfig } from "./config.js";
import { CheckpointError, StateDictMismatch, type StateDictReport } from "./errors.js";
import { type AnyBertModel, BertForSequenceClassification, createModel } from "./model.js";
import {
  TIED_DECODER_WEIGHT,
  decoderBiasName,
  detectFamily,
  detectHead,
  stripComposerPrefix,
} from "./names.js";
import { type SafetensorsEntry, readSafetensors, toFloat32, writeSafetensors } from "./safetensors.js";

/** Host weights by name (from safetensors) or device tensors. */
export type StateDictSource = Map<string, SafetensorsEntry | Tensor>;

/** Buffers some HF checkpoints store that our modules compute instead. */
const IGNORED_KEYS = new Set([
  "bert.embeddings.position_ids",
  "bert.embeddings.token_type_ids",
  TIED_DECODER_WEIGHT,
]);

/**
 * Maps checkpoint names onto ours: strips Composer's `model.` prefix, renames
 * TF-era LayerNorm `gamma`/`beta`, moves the decoder bias to the family's
 * name, drops tied and derived entries.
 */
export function normalizeStateDict<T>(sd: Map<string, T>, family: ModelFamily): Map<string, T> {
  const out = new Map<string, T>();
  for (const [k0, v] of stripComposerPrefix(sd)) {
    let k = k0;
    if (k.endsWith(".gamma")) k = `${k.slice(0, -6)}.weight`;
    else if (k.endsWith(".beta")) k = `${k.slice(0, -5)}.bias`;
    if (IGNORED_KEYS.has(k)) continue;
    out.set(k, v);
  }
  const want = decoderBiasName(family);
  const other = decoderBiasName(family === "mosaic" ? "bert" : "mosaic");
  if (out.has(other)) {
    if (!out.has(want)) out.set(want, out.get(other)!);
    out.delete(other);
  }
  return out;
}

function isEntry(v: SafetensorsEntry | Tensor): v is SafetensorsEntry {
  return (v as SafetensorsEntry).data !== undefined && !(typeof (v as Tensor).ptr === "number");
}

/**
 * Copies a state dict into a model key by key. Returns what was missing,
 * unexpected or mis-shaped, each by name; with `strict` (default) any of them
 * throws StateDictMismatch and nothing is loaded.
 */
export function loadStateDict(
  model: AnyBertModel,
  sd: StateDictSource,
  opts: { strict?: boolean; file?: string } = {},
): StateDictReport {
  const strict = opts.strict ?? true;
  const entries = normalizeStateDict(sd, model.family);
  const own = new Map(model.namedParameters());
  const report: StateDictReport = { missing: [], unexpected: [], mismatched: [] };
  for (const k of own.keys()) if (!entries.has(k)) report.missing.push(k);
  for (const [k, v] of entries) {
    const p = own.get(k);
    if (p === undefined) {
      report.unexpected.push(k);
      continue;
    }
    const shape = v.shape;
    if (shape.length !== p.shape.length || shape.some((d, i) => d !== p.shape[i])) {
      report.mismatched.push(`${k}: checkpoint [${shape.join(", ")}] vs model [${p.shape.join(", ")}]`);
    }
  }
  if (strict && (report.missing.length || report.unexpected.length || report.mismatched.length)) {
    throw new StateDictMismatch(report, opts.file);
  }
  const bad = new Set(report.mismatched.map((m) => m.slice(0, m.indexOf(":"))));
  noGrad(() => {
    const tensors = new Map<string, Tensor>();
    for (const [k, v] of entries) {
      const p = own.get(k);
      if (p === undefined || bad.has(k)) continue;
      if (isEntry(v)) {
        // F64 keeps its precision for float64 models; everything else goes through float32.
        const values = v.data instanceof Float64Array ? v.data : toFloat32(v);
        tensors.set(k, fromArray(values, v.shape, { dtype: p.dtype, device: p.device }));
      } else tensors.set(k, v);
    }
    try {
      model.loadStateDict(tensors, { strict: false });
    } finally {
      for (const [k, t] of tensors) if (isEntry(entries.get(k)!)) t.dispose();
    }
  });
  return report;
}

/** Reads the weights of a checkpoint folder (single or sharded safetensors). */
export function readCheckpointWeights(dir: string): Map<string, SafetensorsEntry> {
  const single = path.join(dir, "model.safetensors");
  if (fs.existsSync(single)) return readSafetensors(single).tensors;
  const index = path.join(dir, "model.safetensors.index.json");
  if (fs.existsSync(index)) {
    let map: Record<string, string>;
    try {
      map = (JSON.parse(fs.readFileSync(index, "utf8")) as { weight_map: Record<string, string> }).weight_map;
      if (map === null || typeof map !== "object") throw new Error("no weight_map");
    } catch (e) {
      throw new CheckpointError(
        "CHECKPOINT_INDEX",
        index,
        `not a safetensors index (${(e as Error).message})`,
      );
    }
    const out = new Map<string, SafetensorsEntry>();
    for (const shard of new Set(Object.values(map))) {
      for (const [k, v] of readSafetensors(path.join(dir, shard)).tensors) out.set(k, v);
    }
    return out;
  }
  for (const pickle of ["pytorch_model.bin", "model.pt", "checkpoint.pt"]) {
    if (fs.existsSync(path.join(dir, pickle))) {
      throw new CheckpointError(
        "PICKLE_CHECKPOINT",
        path.join(dir, pickle),
        `only a pickled PyTorch checkpoint is here, and pickles are never loaded (they can run code). Convert it once with Python: ` +
          `\`from transformers import AutoModelForMaskedLM; m = AutoModelForMaskedLM.from_pretrained("${dir}", trust_remote_code=True); m.save_pretrained("${dir}", safe_serialization=True)\` ` +
          `or \`import torch; from safetensors.torch import save_file; sd = torch.load(p, map_location="cpu"); save_file({k: v.contiguous() for k, v in sd.items() if k != "${TIED_DECODER_WEIGHT}"}, "${path.join(dir, "model.safetensors")}")\``,
      );
    }
  }
  throw new CheckpointError(
    "NO_WEIGHTS",
    dir,
    "holds no model.safetensors (nor model.safetensors.index.json)",
  );
}

export interface LoadPretrainedOptions {
  /** Which head to build; default: what the weights carry (classification if `classifier.*`, else MLM). */
  head?: "mlm" | "classification";
  /** For a classification head on an MLM checkpoint (GLUE finetuning). */
  numLabels?: number;
  /** "regression" for an MSE head. */
  problemType?: string | null;
  device?: Device;
  dtype?: Extract<DType, "float32" | "float64">;
  /**
   * true: any missing, unexpected or mis-shaped key throws. Default: only
   * mis-shaped keys and missing encoder keys throw; a missing head (pooler,
   * classifier, MLM head) is freshly initialized and unexpected keys (e.g. the
   * MLM head when finetuning) are ignored; both are in `model.loadReport`.
   */
  strict?: boolean;
  /** Overrides applied to config.json (e.g. dropout for finetuning). */
  config?: Partial<BertConfig>;
}

/** A model loaded from a checkpoint folder, with its load report. */
export type PretrainedModel = AnyBertModel & { loadReport: StateDictReport };

/**
 * Loads a Hugging Face checkpoint folder (config.json + model.safetensors),
 * telling classic BERT from MosaicBERT by the weight names.
 */
export function loadPretrained(dir: string, opts: LoadPretrainedOptions = {}): PretrainedModel {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new CheckpointError(
      "NO_CHECKPOINT",
      dir,
      "is not a folder; expected config.json and model.safetensors in it",
    );
  }
  const weights = stripComposerPrefix(readCheckpointWeights(dir));
  const family = detectFamily(weights.keys());
  if (family === undefined) {
    throw new CheckpointError(
      "UNKNOWN_FAMILY",
      dir,
      "the weights hold neither BERT (attention.self.query) nor MosaicBERT (attention.self.Wqkv, mlp.gated_layers) encoder layers",
    );
  }
  const configFile = path.join(dir, "config.json");
  if (!fs.existsSync(configFile))
    throw new CheckpointError("NO_CONFIG", configFile, "missing; a checkpoint folder needs its config.json");
  const config = { ...readConfig(configFile, { family }), ...opts.config, family };
  if (opts.numLabels !== undefined) config.numLabels = opts.numLabels;
  if (opts.problemType !== undefined) config.problemType = opts.problemType;
  const found = detectHead(weights.keys());
  const head = opts.head ?? (found === "classification" ? "classification" : "mlm");
  const model = createModel(config, head, { device: opts.device, dtype: opts.dtype }) as PretrainedModel;
  try {
    const report = loadStateDict(model, weights, { strict: opts.strict ?? false, file: dir });
    const missingEncoder = report.missing.filter(
      (k) => k.startsWith("bert.embeddings.") || k.startsWith("bert.encoder."),
    );
    if (!opts.strict && (report.mismatched.length > 0 || missingEncoder.length > 0)) {
      throw new StateDictMismatch(
        { missing: missingEncoder, unexpected: [], mismatched: report.mismatched },
        dir,
      );
    }
    model.loadReport = report;
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** The HF architecture name of a model. */
function architecture(model: AnyBertModel): string {
  return model instanceof BertForSequenceClassification ? "BertForSequenceClassification" : "BertForMaskedLM";
}

/**
 * Writes config.json and model.safetensors (float32, HF names, the tied
 * decoder weight not stored) into `dir`, each atomically.
 */
export function savePretrained(model: AnyBertModel, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const tensors = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const [name, p] of model.namedParameters()) {
    const host = p.data();
    const data = host instanceof Float32Array ? host : Float32Array.from(host as Float64Array);
    tensors.set(name, { data, shape: [...p.shape] });
  }
  writeSafetensors(path.join(dir, "model.safetensors"), tensors, { format: "pt" });
  const config: BertConfig = {
    ...model.config,
    extra: { ...model.config.extra, architectures: [architecture(model)] },
  };
  writeConfig(path.join(dir, "config.json"), config);
}
