/**
 * Checkpoints: one folder per save, written whole or not at all.
 *
 *   <saveFolder>/ep0-ba100/
 *     manifest.json          format name + version, timestamp, every file with its size and sha256
 *     model/config.json      a Hugging Face folder (when the model can save one) ...
 *     model/model.safetensors  ... holding the weights
 *     optimizers/0.safetensors  moments (exp_avg, exp_avg_sq) keyed `<param>.<buffer>`
 *     state.json             optimizer scalars, schedulers, RNG, dataloader position, timestamp,
 *                            callback and algorithm state
 *   <saveFolder>/latest      the name of the newest complete checkpoint
 *
 * The folder is written as `<name>.tmp-<pid>`, every file and the folder are
 * fsynced, then it is renamed into place; `latest` is replaced by rename
 * too. A crash at any point leaves the previous checkpoint and `latest`
 * intact. Loading validates the manifest first and names the checkpoint
 * and the file at fault.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { readSafetensors, serializeSafetensors, toFloat32 } from "@mbert/model";
import { type Generator, type Tensor, backend, defaultGenerator, dtypeCode, noGrad } from "@mbert/tensor";
import { CheckpointError } from "./errors.js";
import type { State } from "./state.js";
import { Timestamp, type TimestampState } from "./time.js";
import type { OptimizerState, ParamLike, WeightsReport } from "./types.js";

export const CHECKPOINT_FORMAT = "mbert-checkpoint";
export const CHECKPOINT_VERSION = 1;

export interface CheckpointManifest {
  format: string;
  version: number;
  runName: string;
  createdAt: string;
  timestamp: TimestampState;
  /** Relative path -> size in bytes and sha256 (hex). */
  files: Record<string, { bytes: number; sha256: string }>;
}

/** Hooks between writing files and publishing, for tests of crash safety. */
export interface SaveHooks {
  /** Called after every file is written and synced, before the rename that publishes it. */
  beforePublish?(tmpDir: string): void;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function fsyncPath(p: string): void {
  const fd = fs.openSync(p, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function writeSynced(file: string, bytes: Uint8Array | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, "w");
  try {
    fs.writeFileSync(fd, bytes);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function listFiles(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(path.join(dir, e.name), rel));
    else out.push(rel);
  }
  return out.sort();
}

/** The checkpoint name Composer uses (`ep{epoch}-ba{batch}`), as a folder. */
export function checkpointName(ts: Timestamp): string {
  return `ep${ts.epoch}-ba${ts.batch}`;
}

/** Host copies of every parameter, for the safetensors writer. */
function hostWeights(
  params: Iterable<[string, ParamLike]>,
): Record<string, { data: Float32Array | Float64Array; shape: number[] }> {
  const out: Record<string, { data: Float32Array | Float64Array; shape: number[] }> = {};
  for (const [name, p] of params) {
    const t = p as unknown as { data(): Float32Array | Float64Array };
    out[name] = { data: t.data(), shape: [...p.shape] };
  }
  return out;
}

export interface SaveOptions extends SaveHooks {
  /** Extra RNG generators to save besides the tensor library's default one. */
  generators?: Record<string, Generator>;
  /** Replace a checkpoint of the same name (default true: a resumed run re-reaching a step). */
  overwrite?: boolean;
}

/** Writes a checkpoint of `state` to `<folder>/<name>` atomically; returns its path. */
export function saveCheckpoint(folder: string, state: State, opts: SaveOptions = {}): string {
  const name = checkpointName(state.timestamp);
  const final = path.join(folder, name);
  if (fs.existsSync(final) && opts.overwrite === false) {
    throw new CheckpointError(final, "exists; pass saveOverwrite: true to replace it");
  }
  fs.mkdirSync(folder, { recursive: true });
  const tmp = path.join(folder, `${name}.tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    // Weights: a Hugging Face folder when the model can write one.
    const modelDir = path.join(tmp, "model");
    if (state.model.savePretrained) state.model.savePretrained(modelDir);
    else {
      writeSynced(
        path.join(modelDir, "model.safetensors"),
        serializeSafetensors(hostWeights(state.model.module.namedParameters())),
      );
    }
    const optimizerMeta: { name: string; meta: Record<string, unknown> }[] = [];
    state.optimizers.forEach((opt, i) => {
      const s = opt.stateDict();
      optimizerMeta.push({ name: s.name, meta: s.meta });
      writeSynced(path.join(tmp, "optimizers", `${i}.safetensors`), serializeSafetensors(s.tensors));
    });
    const gens: Record<string, { seed: number; offset: number }> = { default: defaultGenerator.getState() };
    for (const [k, g] of Object.entries(opts.generators ?? {})) gens[k] = g.getState();
    const callbacks: Record<string, unknown> = {};
    state.callbacks.forEach((cb, i) => {
      const sd = cb.stateDict();
      if (Object.keys(sd).length > 0) callbacks[`${i}:${cb.constructor.name}`] = sd;
    });
    const algorithms: Record<string, unknown> = {};
    state.algorithms.forEach((a, i) => {
      if (a.stateDict) algorithms[`${i}:${a.name ?? a.constructor.name}`] = a.stateDict();
    });
    const stateJson = {
      timestamp: state.timestamp.toJSON(),
      seed: state.seed,
      rank: state.rank,
      worldSize: state.worldSize,
      deviceTrainMicrobatchSize: state.deviceTrainMicrobatchSize,
      optimizers: optimizerMeta,
      schedulers: state.schedulers.map((s) => s.toJSON()),
      rng: gens,
      dataloader: state.trainData?.dataloader.stateDict?.() ?? null,
      callbacks,
      algorithms,
    };
    writeSynced(path.join(tmp, "state.json"), JSON.stringify(stateJson, null, 1));
    // Sync any file the model writer did not, then record sizes and hashes.
    const files: CheckpointManifest["files"] = {};
    for (const rel of listFiles(tmp)) {
      const bytes = fs.readFileSync(path.join(tmp, rel));
      fsyncPath(path.join(tmp, rel));
      files[rel] = { bytes: bytes.byteLength, sha256: sha256(bytes) };
    }
    const manifest: CheckpointManifest = {
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      runName: state.runName,
      createdAt: new Date().toISOString(),
      timestamp: state.timestamp.toJSON(),
      files,
    };
    writeSynced(path.join(tmp, "manifest.json"), JSON.stringify(manifest, null, 1));
    for (const d of ["model", "optimizers", ""])
      if (fs.existsSync(path.join(tmp, d))) fsyncPath(path.join(tmp, d));
    opts.beforePublish?.(tmp);
    // Publish: replace a same-named old folder only after the new one is complete.
    if (fs.existsSync(final)) {
      const old = `${final}.old-${process.pid}`;
      fs.renameSync(final, old);
      fs.renameSync(tmp, final);
      fs.rmSync(old, { recursive: true, force: true });
    } else fs.renameSync(tmp, final);
    fsyncPath(folder);
    const latestTmp = path.join(folder, `latest.tmp-${process.pid}`);
    writeSynced(latestTmp, name);
    fs.renameSync(latestTmp, path.join(folder, "latest"));
    fsyncPath(folder);
    return final;
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Checks a checkpoint folder against its manifest; returns the manifest. */
export function validateCheckpoint(dir: string, opts: { hashes?: boolean } = {}): CheckpointManifest {
  const mf = path.join(dir, "manifest.json");
  if (!fs.existsSync(dir)) throw new CheckpointError(dir, "does not exist");
  if (!fs.existsSync(mf)) {
    throw new CheckpointError(dir, "has no manifest.json (an interrupted save, or not an mbert checkpoint)");
  }
  let m: CheckpointManifest;
  try {
    m = JSON.parse(fs.readFileSync(mf, "utf8")) as CheckpointManifest;
  } catch (e) {
    throw new CheckpointError(dir, `manifest.json is not valid JSON (${(e as Error).message})`);
  }
  if (m.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(dir, `format is '${m.format}', expected '${CHECKPOINT_FORMAT}'`);
  }
  if (m.version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(
      dir,
      `format version ${m.version} is not supported (this build reads ${CHECKPOINT_VERSION})`,
    );
  }
  for (const [rel, info] of Object.entries(m.files ?? {})) {
    const f = path.join(dir, rel);
    if (!fs.existsSync(f)) throw new CheckpointError(dir, `${rel} is missing`);
    const size = fs.statSync(f).size;
    if (size !== info.bytes)
      throw new CheckpointError(dir, `${rel} has ${size} bytes, the manifest says ${info.bytes}`);
    if (opts.hashes !== false && sha256(fs.readFileSync(f)) !== info.sha256) {
      throw new CheckpointError(dir, `${rel}: sha256 differs from manifest.json (the file is corrupt)`);
    }
  }
  return m;
}

/** The checkpoint `latest` points to in `folder`, or undefined when there is none. */
export function latestCheckpoint(folder: string): string | undefined {
  const p = path.join(folder, "latest");
  if (!fs.existsSync(p)) return undefined;
  const name = fs.readFileSync(p, "utf8").trim();
  return path.join(folder, name);
}

/** Completed checkpoints in `folder`, oldest first (by batch). */
export function listCheckpoints(folder: string): string[] {
  if (!fs.existsSync(folder)) return [];
  return fs
    .readdirSync(folder)
    .filter((n) => /^ep\d+-ba\d+$/.test(n) && fs.existsSync(path.join(folder, n, "manifest.json")))
    .sort((a, b) => Number(a.split("-ba")[1]) - Number(b.split("-ba")[1]))
    .map((n) => path.join(folder, n));
}

/** Keeps the newest `keep` checkpoints (keep < 0 keeps all); never removes the one `latest` names. */
export function pruneCheckpoints(folder: string, keep: number): string[] {
  if (keep < 0) return [];
  const all = listCheckpoints(folder);
  const latest = latestCheckpoint(folder);
  const removed: string[] = [];
  for (const dir of all.slice(0, Math.max(0, all.length - keep))) {
    if (dir === latest) continue;
    fs.rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

/** Glob match for loadIgnoreKeys: `*` matches within a dotted segment run, `**` anything. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") {
      if (glob[i + 1] === "*") {
        re += ".*";
        i++;
      } else re += "[^/]*";
    } else if (c === "?") re += ".";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

export interface LoadOptions {
  /** Weights only (finetuning): skip optimizer, schedulers, RNG, dataloader and timestamp. */
  weightsOnly?: boolean;
  /**
   * Globs over state paths to skip: `state.optimizers`, `state.rng`, `state.dataloader`,
   * `state.timestamp`, `state.callbacks`, or weight names `model.<param>` (e.g. `model.cls.*`).
   */
  ignoreKeys?: string[];
  /** Fail on missing, unexpected or mis-shaped weights that ignoreKeys does not match (default true). */
  strict?: boolean;
  generators?: Record<string, Generator>;
}

/** A loaded checkpoint: its manifest and what happened to each model weight. */
export interface LoadedCheckpoint {
  manifest: CheckpointManifest;
  weights: WeightsReport;
}

/**
 * Restores `state` from a checkpoint folder (validated first). Weights
 * matched by `ignoreKeys` (`model.<name>` globs) are skipped on both sides;
 * with `strict` (default true) any other missing, unexpected or mis-shaped
 * weight throws before training. Returns the manifest and the weights report.
 */
export function loadCheckpoint(dir: string, state: State, opts: LoadOptions = {}): LoadedCheckpoint {
  const manifest = validateCheckpoint(dir);
  const ignore = (opts.ignoreKeys ?? []).map(globToRegExp);
  const ignored = (key: string) => ignore.some((r) => r.test(key));
  const strict = opts.strict ?? true;
  const modelDir = path.join(dir, "model");
  let weights: WeightsReport | undefined;
  if (state.model.loadPretrained && fs.existsSync(path.join(modelDir, "config.json"))) {
    weights = state.model.loadPretrained(modelDir, { strict, ignore: (k) => ignored(`model.${k}`) });
  }
  weights ??= loadRawWeights(dir, state, ignored, strict);
  const result = { manifest, weights };
  if (opts.weightsOnly) return result;

  const s = JSON.parse(fs.readFileSync(path.join(dir, "state.json"), "utf8")) as {
    timestamp: TimestampState;
    deviceTrainMicrobatchSize?: number;
    optimizers: { name: string; meta: Record<string, unknown> }[];
    rng: Record<string, { seed: number; offset: number }>;
    dataloader: unknown;
    callbacks: Record<string, Record<string, unknown>>;
    algorithms: Record<string, Record<string, unknown>>;
  };
  if (!ignored("state.optimizers")) {
    if (s.optimizers.length !== state.optimizers.length) {
      throw new CheckpointError(
        dir,
        `holds ${s.optimizers.length} optimizers, the trainer has ${state.optimizers.length}`,
      );
    }
    state.optimizers.forEach((opt, i) => {
      const meta = s.optimizers[i]!;
      const contents = readSafetensors(path.join(dir, "optimizers", `${i}.safetensors`));
      const tensors: OptimizerState["tensors"] = {};
      for (const [k, e] of contents.tensors) tensors[k] = { shape: e.shape, data: e.data as Float32Array };
      opt.loadStateDict({ name: meta.name, meta: meta.meta, tensors });
    });
  }
  if (!ignored("state.rng")) {
    const d = s.rng.default;
    if (d) defaultGenerator.setState(d);
    for (const [k, g] of Object.entries(opts.generators ?? {})) {
      const saved = s.rng[k];
      if (saved) g.setState(saved);
    }
  }
  if (!ignored("state.dataloader") && s.dataloader !== null && state.trainData?.dataloader.loadStateDict) {
    state.trainData.dataloader.loadStateDict(s.dataloader);
  }
  if (!ignored("state.timestamp")) {
    state.timestamp = new Timestamp(s.timestamp);
    if (s.deviceTrainMicrobatchSize !== undefined)
      state.deviceTrainMicrobatchSize = s.deviceTrainMicrobatchSize;
  }
  if (!ignored("state.callbacks")) {
    state.callbacks.forEach((cb, i) => {
      const saved = s.callbacks[`${i}:${cb.constructor.name}`];
      if (saved) cb.loadStateDict(saved);
    });
    state.algorithms.forEach((a, i) => {
      const saved = s.algorithms[`${i}:${a.name ?? a.constructor.name}`];
      if (saved && a.loadStateDict) a.loadStateDict(saved);
    });
  }
  return result;
}

/** Copies `model/model.safetensors` into the module's parameters by name (models without loadPretrained). */
function loadRawWeights(
  dir: string,
  state: State,
  ignored: (key: string) => boolean,
  strict: boolean,
): WeightsReport {
  const contents = readSafetensors(path.join(dir, "model", "model.safetensors"));
  const report: WeightsReport = { loaded: [], ignored: [], missing: [], unexpected: [], mismatched: [] };
  const own = new Map(state.model.module.namedParameters());
  for (const name of contents.tensors.keys()) {
    if (ignored(`model.${name}`)) report.ignored.push(name);
    else if (!own.has(name)) report.unexpected.push(name);
  }
  const copies: [ParamLike, Float32Array][] = [];
  for (const [name, p] of own) {
    if (ignored(`model.${name}`)) {
      if (!contents.tensors.has(name)) report.ignored.push(name);
      continue;
    }
    const e = contents.tensors.get(name);
    if (!e) report.missing.push(name);
    else if (e.shape.join(",") !== p.shape.join(","))
      report.mismatched.push(`${name}: checkpoint [${e.shape.join(", ")}] vs model [${p.shape.join(", ")}]`);
    else {
      copies.push([p, toFloat32(e)]);
      report.loaded.push(name);
    }
  }
  if (strict && (report.missing.length || report.unexpected.length || report.mismatched.length)) {
    const parts: string[] = [];
    if (report.missing.length) parts.push(`model weights missing: ${report.missing.join(", ")}`);
    if (report.unexpected.length) parts.push(`unexpected weights: ${report.unexpected.join(", ")}`);
    if (report.mismatched.length) parts.push(`mis-shaped weights: ${report.mismatched.join("; ")}`);
    throw new CheckpointError(dir, `${parts.join("; ")} (use loadIgnoreKeys to skip them)`);
  }
  noGrad(() => {
    for (const [p, data] of copies) uploadInto(p as unknown as Tensor, data);
  });
  report.ignored.sort();
  return report;
}

/** Writes host values into a parameter's buffer, and into its bf16 copy when it has one. */
function uploadInto(p: Tensor, data: Float32Array): void {
  const k = backend(p.device);
  k.upload(p.ptr, 0, p.dtype === "float64" ? Float64Array.from(data) : data);
  const lowp = (p as Tensor & { lowp?: Tensor | null }).lowp;
  if (lowp) k.cast(dtypeCode(lowp.dtype), lowp.ptr, dtypeCode(p.dtype), p.ptr, p.size);
}
