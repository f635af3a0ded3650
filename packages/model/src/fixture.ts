// A parity case folder (see ../shared/fixtures/README.md): config.json,
// model.safetensors (HF names), io.safetensors (inputs, outputs, gradients)
// and meta.json (the case, and the losses of 8 AdamW steps).

import * as fs from "node:fs";
import * as path from "node:path";
import { type BertConfig, readConfig } from "./config.js";
import { CheckpointError } from "./errors.js";
import { detectFamily, detectHead } from "./names.js";
import { readSafetensors, type SafetensorsEntry, toFloat32, toInt32 } from "./safetensors.js";

export interface AdamWSettings {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  steps: number;
}

export interface ParityCase {
  name: string;
  dir: string;
  config: BertConfig;
  head: "mlm" | "classification";
  weights: Map<string, SafetensorsEntry>;
  batchSize: number;
  seqLen: number;
  /** (B*S) int32 each. */
  inputIds: Int32Array;
  attentionMask: Int32Array;
  tokenTypeIds: Int32Array;
  /** MLM: (B*S) int32 with -100; classification: (B) int32; regression: (B) float32. */
  labels: Int32Array | Float32Array;
  /** MLM: (B, S, V); classification: (B, numLabels). */
  logits: Float32Array;
  logitsShape: number[];
  /** (B, S, C), zero at padded positions. */
  lastHiddenState: Float32Array;
  loss: number;
  /** Parameter name -> gradient. */
  grads: Map<string, Float32Array>;
  adamwLosses: number[];
  adamw: AdamWSettings;
}

function need(io: Map<string, SafetensorsEntry>, key: string, file: string): SafetensorsEntry {
  const e = io.get(key);
  if (e === undefined) throw new CheckpointError("FIXTURE_INVALID", file, `has no tensor "${key}"`);
  return e;
}

/** Reads a parity case folder. */
export function loadParityCase(dir: string): ParityCase {
  const ioFile = path.join(dir, "io.safetensors");
  const modelFile = path.join(dir, "model.safetensors");
  for (const f of ["config.json", "model.safetensors", "io.safetensors", "meta.json"]) {
    if (!fs.existsSync(path.join(dir, f))) {
      throw new CheckpointError(
        "FIXTURE_INVALID",
        path.join(dir, f),
        "missing; a parity case folder holds config.json, model.safetensors, io.safetensors and meta.json",
      );
    }
  }
  const weights = readSafetensors(modelFile).tensors;
  const family = detectFamily(weights.keys());
  if (family === undefined)
    throw new CheckpointError(
      "UNKNOWN_FAMILY",
      modelFile,
      "holds neither BERT nor MosaicBERT encoder weights",
    );
  const config = readConfig(path.join(dir, "config.json"), { family });
  const head = detectHead(weights.keys());
  if (head === "encoder")
    throw new CheckpointError("FIXTURE_INVALID", modelFile, "has no MLM or classification head");
  const meta = JSON.parse(fs.readFileSync(path.join(dir, "meta.json"), "utf8")) as {
    case?: { name?: string };
    adamw_losses?: number[];
    adamw?: { lr: number; betas: [number, number]; eps: number; weight_decay: number; steps: number };
  };
  const io = readSafetensors(ioFile).tensors;
  const ids = need(io, "input_ids", ioFile);
  const [B, S] = ids.shape as [number, number];
  if (head === "classification") {
    config.numLabels = need(io, "logits", ioFile).shape[1] ?? config.numLabels;
  }
  const grads = new Map<string, Float32Array>();
  for (const [k, v] of io) if (k.startsWith("grad.")) grads.set(k.slice(5), toFloat32(v));
  const labelsEntry = need(io, "labels", ioFile);
  const logits = need(io, "logits", ioFile);
  const a = meta.adamw;
  return {
    name: meta.case?.name ?? path.basename(dir),
    dir,
    config,
    head,
    weights,
    batchSize: B,
    seqLen: S,
    inputIds: toInt32(ids, "input_ids"),
    attentionMask: toInt32(need(io, "attention_mask", ioFile), "attention_mask"),
    tokenTypeIds: io.has("token_type_ids")
      ? toInt32(io.get("token_type_ids")!, "token_type_ids")
      : new Int32Array(B * S),
    labels:
      labelsEntry.dtype === "F32" || labelsEntry.dtype === "F64"
        ? toFloat32(labelsEntry)
        : toInt32(labelsEntry, "labels"),
    logits: toFloat32(logits),
    logitsShape: logits.shape,
    lastHiddenState: toFloat32(need(io, "last_hidden_state", ioFile)),
    loss: toFloat32(need(io, "loss", ioFile))[0]!,
    grads,
    adamwLosses: meta.adamw_losses ?? [],
    adamw: {
      lr: a?.lr ?? 1e-3,
      betas: a?.betas ?? [0.9, 0.98],
      eps: a?.eps ?? 1e-6,
      weightDecay: a?.weight_decay ?? 0.01,
      steps: a?.steps ?? meta.adamw_losses?.length ?? 0,
    },
  };
}
