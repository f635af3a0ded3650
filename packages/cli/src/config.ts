/**
 * The `mbert pretrain` config: the keys of mosaicml/examples'
 * `benchmarks/bert/yamls/main/mosaic-bert-base-uncased.yaml`, plus our
 * loggers and checkpoint keys. `${key}` references are resolved (as
 * OmegaConf does), `--set a.b=value` overrides are applied, then every
 * key is validated at once and cross-checked before any work starts.
 */
import * as fs from "node:fs";
import { Time } from "@mbert/train";
import { YAMLParseError, parse as parseYaml } from "yaml";
import { ConfigError } from "./errors.js";
import { type Issue, type Spec, describe, validate } from "./schema.js";

const str = (o: Partial<Extract<Spec, { kind: "string" }>> = {}): Spec => ({ kind: "string", ...o });
const optStr: Spec = { kind: "string", optional: true, nullable: true };
const num = (o: Partial<Extract<Spec, { kind: "number" }>> = {}): Spec => ({ kind: "number", ...o });
const int = (min = 0, optionalField = false): Spec => ({
  kind: "number",
  integer: true,
  min,
  optional: optionalField,
});
const bool: Spec = { kind: "boolean", optional: true };
const time = (units?: string[], optionalField = false): Spec => ({
  kind: "time",
  units,
  optional: optionalField,
  integerAs: "ba",
});
const prob = (optionalField = false): Spec => ({ kind: "number", min: 0, max: 1, optional: optionalField });

const MODEL_CONFIG: Spec = {
  kind: "object",
  optional: true,
  fields: {
    vocab_size: int(1, true),
    hidden_size: int(1, true),
    num_hidden_layers: int(1, true),
    num_attention_heads: int(1, true),
    intermediate_size: int(1, true),
    hidden_act: { kind: "string", enum: ["gelu"], optional: true },
    hidden_dropout_prob: prob(true),
    attention_probs_dropout_prob: prob(true),
    max_position_embeddings: int(1, true),
    // Spelled this way in the published hf-bert-base-uncased.yaml; read as max_position_embeddings.
    max_position_embedding: int(1, true),
    type_vocab_size: int(1, true),
    initializer_range: num({ min: 0, optional: true }),
    layer_norm_eps: num({ min: 0, exclusiveMin: true, optional: true }),
    alibi_starting_size: int(1, true),
    pad_token_id: int(0, true),
  },
};

const DATASET: Spec = {
  kind: "object",
  fields: {
    local: str(),
    remote: optStr,
    split: str(),
    tokenizer_name: str({ optional: true }),
    max_seq_len: int(1, true),
    shuffle: bool,
    shuffle_seed: int(0, true),
    mlm_probability: num({ min: 0, max: 1, exclusiveMin: true, optional: true }),
  },
};

const LOADER: Spec = {
  kind: "object",
  fields: {
    name: str({ enum: ["text"] }),
    dataset: DATASET,
    drop_last: bool,
    num_workers: int(0, true),
  },
};

export const PRETRAIN_SCHEMA: Spec = {
  kind: "object",
  fields: {
    data_local: optStr,
    data_remote: optStr,
    max_seq_len: int(1),
    tokenizer_name: str(),
    mlm_probability: num({ min: 0, max: 1, exclusiveMin: true }),
    run_name: str({ optional: true }),
    model: {
      kind: "object",
      fields: {
        name: str({ enum: ["mosaic_bert", "hf_bert"] }),
        pretrained_model_name: optStr,
        tokenizer_name: optStr,
        use_pretrained: bool,
        pretrained_checkpoint: optStr,
        model_config: MODEL_CONFIG,
      },
    },
    train_loader: LOADER,
    eval_loader: { ...LOADER, optional: true },
    scheduler: {
      kind: "object",
      fields: {
        name: str({ enum: ["linear_decay_with_warmup", "cosine_with_warmup", "constant_with_warmup"] }),
        t_warmup: time(["ep", "ba", "sp", "tok", "dur"]),
        alpha_f: num({ min: 0, optional: true }),
        alpha_i: num({ min: 0, optional: true }),
        alpha: num({ min: 0, optional: true }),
        t_max: time(undefined, true),
      },
    },
    optimizer: {
      kind: "object",
      fields: {
        name: str({ enum: ["decoupled_adamw", "adamw", "sgd"] }),
        lr: num({ min: 0, exclusiveMin: true }),
        betas: { kind: "array", items: num({ min: 0, max: 1 }), length: 2, optional: true },
        eps: num({ min: 0, optional: true }),
        weight_decay: num({ min: 0, optional: true }),
        momentum: num({ min: 0, max: 1, optional: true }),
      },
    },
    algorithms: {
      kind: "named",
      optional: true,
      nullable: true,
      entries: {
        // Our LayerNorm is always the fused kernel: accepted for recipe compatibility.
        fused_layernorm: { kind: "object", fields: {} },
        gradient_clipping: {
          kind: "object",
          fields: {
            clipping_type: str({ enum: ["norm"] }),
            clipping_threshold: num({ min: 0, exclusiveMin: true }),
          },
        },
      },
    },
    max_duration: time(["ep", "ba", "sp", "tok"]),
    eval_interval: time(["ep", "ba", "sp", "tok", "dur"]),
    eval_subset_num_batches: int(1, true),
    global_train_batch_size: int(1),
    seed: int(0),
    device_eval_batch_size: int(1, true),
    device_train_microbatch_size: {
      kind: "union",
      expected: "a positive integer or 'auto'",
      options: [int(1), { kind: "literal", value: "auto" }],
    },
    precision: str({ enum: ["fp32", "amp_bf16"] }),
    progress_bar: bool,
    log_to_console: bool,
    console_log_interval: time(["ba", "ep"], true),
    callbacks: {
      kind: "named",
      optional: true,
      nullable: true,
      entries: {
        speed_monitor: {
          kind: "object",
          fields: {
            window_size: int(1, true),
            gpu_flops_available: num({ min: 0, exclusiveMin: true, optional: true }),
          },
        },
        lr_monitor: { kind: "object", fields: {} },
        memory_monitor: { kind: "object", fields: { interval: int(1, true) } },
        early_stopper: {
          kind: "object",
          fields: {
            monitor: str(),
            dataloader_label: str(),
            patience: { kind: "union", expected: "an integer or a time string", options: [int(1), time()] },
            min_delta: num({ min: 0, optional: true }),
          },
        },
      },
    },
    loggers: {
      kind: "named",
      optional: true,
      nullable: true,
      entries: {
        jsonl: { kind: "object", fields: { filename: str({ optional: true }) } },
        tensorboard: { kind: "object", fields: { log_dir: str({ optional: true }) } },
      },
    },
    save_folder: optStr,
    save_interval: time(["ep", "ba", "sp", "tok", "dur"], true),
    save_num_checkpoints_to_keep: { kind: "number", integer: true, min: -1, optional: true },
    save_overwrite: bool,
    load_path: optStr,
    load_weights_only: bool,
    load_ignore_keys: { kind: "array", items: str(), optional: true },
    autoresume: bool,
    run_dir: str({ optional: true }),
    non_finite_loss: str({ enum: ["error", "skip"], optional: true }),
  },
};

/** The validated config (snake_case, as in the YAML). */
export interface PretrainConfig {
  data_local?: string | null;
  data_remote?: string | null;
  max_seq_len: number;
  tokenizer_name: string;
  mlm_probability: number;
  run_name?: string;
  model: {
    name: "mosaic_bert" | "hf_bert";
    pretrained_model_name?: string | null;
    tokenizer_name?: string | null;
    use_pretrained?: boolean;
    pretrained_checkpoint?: string | null;
    model_config?: Record<string, number | string>;
  };
  train_loader: LoaderConfig;
  eval_loader?: LoaderConfig;
  scheduler: {
    name: string;
    t_warmup: string;
    alpha_f?: number;
    alpha_i?: number;
    alpha?: number;
    t_max?: string;
  };
  optimizer: {
    name: "decoupled_adamw" | "adamw" | "sgd";
    lr: number;
    betas?: [number, number];
    eps?: number;
    weight_decay?: number;
    momentum?: number;
  };
  algorithms?: {
    fused_layernorm?: object;
    gradient_clipping?: { clipping_type: "norm"; clipping_threshold: number };
  } | null;
  max_duration: string;
  eval_interval: string | number;
  eval_subset_num_batches?: number;
  global_train_batch_size: number;
  seed: number;
  device_eval_batch_size?: number;
  device_train_microbatch_size: number | "auto";
  precision: "fp32" | "amp_bf16";
  progress_bar?: boolean;
  log_to_console?: boolean;
  console_log_interval?: string | number;
  callbacks?: {
    speed_monitor?: { window_size?: number; gpu_flops_available?: number };
    lr_monitor?: object;
    memory_monitor?: { interval?: number };
    early_stopper?: {
      monitor: string;
      dataloader_label: string;
      patience: number | string;
      min_delta?: number;
    };
  } | null;
  loggers?: { jsonl?: { filename?: string }; tensorboard?: { log_dir?: string } } | null;
  save_folder?: string | null;
  save_interval?: string | number;
  save_num_checkpoints_to_keep?: number;
  save_overwrite?: boolean;
  load_path?: string | null;
  load_weights_only?: boolean;
  load_ignore_keys?: string[];
  autoresume?: boolean;
  run_dir?: string;
  non_finite_loss?: "error" | "skip";
}

export interface LoaderConfig {
  name: "text";
  dataset: {
    local: string;
    remote?: string | null;
    split: string;
    tokenizer_name?: string;
    max_seq_len?: number;
    shuffle?: boolean;
    shuffle_seed?: number;
    mlm_probability?: number;
  };
  drop_last?: boolean;
  num_workers?: number;
}

// ---- interpolation and overrides -------------------------------------------

function lookup(root: Record<string, unknown>, dotted: string): unknown {
  let cur: unknown = root;
  for (const part of dotted.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Resolves `${a.b}` references against the root (whole-string references keep the value's type). */
export function interpolate(root: Record<string, unknown>, issues: Issue[]): Record<string, unknown> {
  const resolve = (v: unknown, key: string, depth: number): unknown => {
    if (depth > 20) {
      issues.push({ key, message: "references form a cycle" });
      return v;
    }
    if (typeof v === "string") {
      const whole = /^\$\{([\w.]+)\}$/.exec(v);
      if (whole) {
        const ref = lookup(root, whole[1]!);
        if (ref === undefined) {
          issues.push({ key, message: `refers to \${${whole[1]}}, which is not set` });
          return v;
        }
        return resolve(ref, key, depth + 1);
      }
      return v.replace(/\$\{([\w.]+)\}/g, (m, name: string) => {
        const ref = lookup(root, name);
        if (ref === undefined) {
          issues.push({ key, message: `refers to \${${name}}, which is not set` });
          return m;
        }
        return String(resolve(ref, key, depth + 1));
      });
    }
    if (Array.isArray(v)) return v.map((x, i) => resolve(x, `${key}[${i}]`, depth));
    if (v !== null && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = resolve(x, key ? `${key}.${k}` : k, depth);
      return out;
    }
    return v;
  };
  return resolve(root, "", 0) as Record<string, unknown>;
}

/** Applies `a.b.c=value` overrides; the value is read as YAML (`lr=1e-4` is a number, `x=null` is null). */
export function applyOverrides(root: Record<string, unknown>, sets: string[], issues: Issue[]): void {
  for (const s of sets) {
    const eq = s.indexOf("=");
    if (eq <= 0) {
      issues.push({ key: s, message: "--set expects key=value (e.g. --set optimizer.lr=1e-4)" });
      continue;
    }
    const key = s.slice(0, eq).trim();
    let value: unknown;
    try {
      value = parseYaml(s.slice(eq + 1));
    } catch {
      value = s.slice(eq + 1);
    }
    const parts = key.split(".");
    let cur: Record<string, unknown> = root;
    for (const p of parts.slice(0, -1)) {
      const next = cur[p];
      if (next === undefined || next === null) cur[p] = {};
      else if (typeof next !== "object" || Array.isArray(next)) {
        issues.push({ key, message: `--set: ${p} is ${describe(next)}, not a mapping` });
        cur = {};
        continue;
      }
      cur = cur[p] as Record<string, unknown>;
    }
    cur[parts[parts.length - 1]!] = value;
  }
}

// ---- cross-field checks -------------------------------------------------------

function crossCheck(c: PretrainConfig, worldSize: number, issues: Issue[]): void {
  const max = Time.parse(String(c.max_duration));
  if (max.value === 0)
    issues.push({ key: "max_duration", message: `got "${c.max_duration}"; expected a duration > 0` });
  const global = c.global_train_batch_size;
  if (global % worldSize !== 0) {
    issues.push({
      key: "global_train_batch_size",
      message: `got ${global}; expected a multiple of the number of processes (${worldSize})`,
    });
  }
  const perDevice = Math.floor(global / worldSize);
  const micro = c.device_train_microbatch_size;
  if (typeof micro === "number") {
    if (micro > perDevice) {
      issues.push({
        key: "device_train_microbatch_size",
        message: `got ${micro}; expected at most the per-device batch (${perDevice} = ${global} / ${worldSize} processes)`,
      });
    } else if (perDevice % micro !== 0) {
      issues.push({
        key: "device_train_microbatch_size",
        message: `got ${micro}; expected a divisor of the per-device batch ${perDevice} (global_train_batch_size ${global} / ${worldSize} processes)`,
      });
    }
  }
  const warm = Time.parse(String(c.scheduler.t_warmup));
  if (warm.unit === "dur" ? warm.value > 1 : warm.unit === max.unit && warm.value > max.value) {
    issues.push({
      key: "scheduler.t_warmup",
      message: `got "${c.scheduler.t_warmup}"; expected at most max_duration (${c.max_duration})`,
    });
  }
  const mc = c.model.model_config ?? {};
  const h = mc.hidden_size;
  const nh = mc.num_attention_heads;
  if (typeof h === "number" && typeof nh === "number" && h % nh !== 0) {
    issues.push({
      key: "model.model_config.num_attention_heads",
      message: `got ${nh}; expected a divisor of hidden_size ${h}`,
    });
  }
  if (
    c.train_loader.dataset.max_seq_len !== undefined &&
    c.train_loader.dataset.max_seq_len !== c.max_seq_len
  ) {
    issues.push({
      key: "train_loader.dataset.max_seq_len",
      message: `got ${c.train_loader.dataset.max_seq_len}; expected max_seq_len (${c.max_seq_len})`,
    });
  }
  if (c.load_weights_only && !c.load_path) {
    issues.push({ key: "load_weights_only", message: "is true but load_path is not set" });
  }
}

/** Parses, interpolates, overrides and validates a config; throws ConfigError listing every problem. */
export function parsePretrainConfig(
  text: string,
  opts: { file?: string; sets?: string[]; worldSize?: number } = {},
): PretrainConfig {
  const file = opts.file ?? "<config>";
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    const msg = e instanceof YAMLParseError ? e.message.split("\n")[0]! : String(e);
    throw new ConfigError(file, [{ key: "(yaml)", message: `invalid YAML: ${msg}` }]);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(file, [
      { key: "(root)", message: `got ${describe(raw)}; expected a mapping of keys` },
    ]);
  }
  const issues: Issue[] = [];
  const root = raw as Record<string, unknown>;
  applyOverrides(root, opts.sets ?? [], issues);
  const resolved = interpolate(root, issues);
  validate(resolved, PRETRAIN_SCHEMA, "", issues);
  if (issues.length === 0) crossCheck(resolved as unknown as PretrainConfig, opts.worldSize ?? 1, issues);
  if (issues.length > 0) throw new ConfigError(file, issues);
  return resolved as unknown as PretrainConfig;
}

export function loadPretrainConfig(
  file: string,
  opts: { sets?: string[]; worldSize?: number } = {},
): PretrainConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [{ key: "(file)", message: code === "ENOENT" ? "no such file" : String(e) }]);
  }
  return parsePretrainConfig(text, { ...opts, file });
}
