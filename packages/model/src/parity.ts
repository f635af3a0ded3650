// Parity with the PyTorch references on a fixture case folder: the forward
// (logits, last hidden states), the loss, every parameter gradient, and the
// losses of 8 torch.optim.AdamW steps on the same batch. Works on any case
// folder of the fixtures' layout (any sizes, head counts, lengths).

import * as path from "node:path";
import { type Device, type Tensor, backend, cudaAvailable, dtypeCode, tidy, zerosLike } from "@mbert/tensor";
import type { PaddedBatch } from "./batch.js";
import { unpadBatch } from "./batch.js";
import { type ParityCase, loadParityCase } from "./fixture.js";
import { PARITY_THRESHOLDS, relErr } from "./metrics.js";
import { type AnyBertModel, BertForMaskedLM, type ModelOutput, createModel } from "./model.js";
import { loadStateDict } from "./pretrained.js";

export interface ParityResult {
  case: string;
  device: Device;
  logits_rel_err: number;
  hidden_rel_err: number;
  loss_abs_err: number;
  grad_max_rel_err: number;
  /** The parameter with the largest gradient error. */
  grad_worst: string;
  /** Error of every parameter's gradient, by name. */
  grad_errors: Record<string, number>;
  /** Parameters whose reference gradient is zero in exact arithmetic (measured against the whole gradient's norm). */
  grad_zero_params: string[];
  adamw_max_abs_err: number;
  /** Our losses before each AdamW step. */
  adamw_losses: number[];
  thresholds: (typeof PARITY_THRESHOLDS)["cpu"];
  pass: boolean;
}

export interface ParityOptions {
  device?: Device;
  /** "padded" (default for classic BERT: the B*S grid with a key mask) or "unpadded" (varlen). */
  layout?: "padded" | "unpadded";
  /**
   * Compute dtype; default bf16 on cuda, float32 on the cpu. "float32" on cuda
   * separates bf16 rounding from a real fault (then the cpu thresholds apply).
   */
  computeDType?: "float32" | "bfloat16";
}

function padded(c: ParityCase, withLabels: boolean): PaddedBatch {
  const p: PaddedBatch = {
    batchSize: c.batchSize,
    seqLen: c.seqLen,
    inputIds: c.inputIds,
    attentionMask: c.attentionMask,
    tokenTypeIds: c.tokenTypeIds,
  };
  if (withLabels) {
    if (c.head === "mlm") p.mlmLabels = c.labels as Int32Array;
    else p.labels = c.labels;
  }
  return p;
}

/** Runs one forward of the case's batch on the model in the chosen layout. */
function forward(
  model: AnyBertModel,
  c: ParityCase,
  withLabels: boolean,
  layout: "padded" | "unpadded",
  hidden = false,
): ModelOutput {
  const p = padded(c, withLabels);
  const opts = { outputHiddenStates: hidden };
  if (layout === "padded" && model.family === "bert") return model.forwardPadded(p, opts);
  const rule = model.family === "mosaic" ? "positive" : "ignore-index";
  const u = unpadBatch(p, { mlmRule: rule });
  if (model instanceof BertForMaskedLM)
    return model.forward(u.batch as Parameters<BertForMaskedLM["forward"]>[0], opts);
  return model.forward(u.batch, opts);
}

/** The loss of the case's labelled batch, with its gradients accumulated into the model. */
function lossAndBackward(model: AnyBertModel, c: ParityCase, layout: "padded" | "unpadded"): number {
  return tidy(() => {
    const out = forward(model, c, true, layout);
    out.loss!.backward();
    return out.loss!.item();
  });
}

function floats(t: Tensor): Float64Array {
  const d = t.dtype === "bfloat16" ? t.castTo("float32") : t;
  const out = Float64Array.from(d.data() as Float32Array | Float64Array);
  if (d !== t) d.dispose();
  return out;
}

/** Rows of a (rows, width) host array at `rows`. */
function pick(a: ArrayLike<number>, width: number, rows: ArrayLike<number>): Float64Array {
  const out = new Float64Array(rows.length * width);
  for (let i = 0; i < rows.length; i++) {
    for (let j = 0; j < width; j++) out[i * width + j] = a[rows[i]! * width + j]!;
  }
  return out;
}

/** One torch.optim.AdamW step on every parameter that has a gradient (decay on all, as torch's default group). */
export function adamwStep(
  model: AnyBertModel,
  state: Map<string, { m: Tensor; v: Tensor }>,
  step: number,
  s: { lr: number; betas: [number, number]; eps: number; weightDecay: number },
): void {
  for (const [name, p] of model.namedParameters()) {
    const g = p.grad;
    if (g === null) continue;
    let st = state.get(name);
    if (st === undefined) {
      st = { m: zerosLike(p), v: zerosLike(p) };
      state.set(name, st);
    }
    const copy = p.lowp;
    backend(p.device).adamw(
      dtypeCode(p.dtype),
      dtypeCode(g.dtype),
      p.ptr,
      g.ptr,
      st.m.ptr,
      st.v.ptr,
      p.size,
      s.lr,
      s.betas[0],
      s.betas[1],
      s.eps,
      s.lr * s.weightDecay, // torch AdamW: p *= 1 - lr * wd
      step,
      1,
      copy ? dtypeCode(copy.dtype) : dtypeCode(p.dtype),
      copy ? copy.ptr : 0,
    );
  }
}

/** Checks our model against a fixture case folder. */
export function checkParity(caseDir: string, opts: ParityOptions = {}): ParityResult {
  const device = opts.device ?? "cpu";
  const c = loadParityCase(path.resolve(caseDir));
  const layout = opts.layout ?? "padded";
  const lowp = device === "cuda" && opts.computeDType !== "float32";
  const thresholds = PARITY_THRESHOLDS[lowp ? "cuda" : "cpu"];
  const model = createModel(c.config, c.head, { device, init: false });
  if (opts.computeDType) model.computeDType = opts.computeDType;
  try {
    loadStateDict(model, c.weights, { strict: true, file: c.dir });
    model.eval(); // the fixtures have dropout 0; eval makes it certain

    // Which of the B*S padded positions are real tokens, and where each of our rows sits.
    const real: number[] = [];
    for (let i = 0; i < c.attentionMask.length; i++) if (c.attentionMask[i]) real.push(i);
    const ourRowOf = (i: number, k: number) => (model.family === "bert" && layout === "padded" ? i : k);
    const ourRows = real.map(ourRowOf);

    // 1. Forward without labels: logits and last hidden states at real tokens.
    const C = c.config.hiddenSize;
    const fwd = tidy(() => {
      const out = forward(model, c, false, layout, true);
      return { logits: floats(out.logits), hidden: floats(out.hiddenStates!) };
    });
    const hiddenErr = relErr(pick(fwd.hidden, C, ourRows), pick(c.lastHiddenState, C, real));
    let logitsErr: number;
    if (c.head === "mlm") {
      const V = c.config.vocabSize;
      logitsErr = relErr(pick(fwd.logits, V, ourRows), pick(c.logits, V, real));
    } else logitsErr = relErr(fwd.logits, c.logits);

    // 2. Loss and gradients.
    model.zeroGrad();
    const loss = lossAndBackward(model, c, layout);
    // A few gradients are zero in exact arithmetic (the attention key bias:
    // softmax ignores a shift shared by all keys), so the reference holds
    // float64 round-off (~1e-20) there and a relative error means nothing.
    // Those tensors, with a norm under 1e-8 of the whole gradient's, are
    // measured against the whole gradient's norm instead.
    let total = 0;
    for (const ref of c.grads.values()) for (const v of ref) total += v * v;
    total = Math.sqrt(total);
    let gradErr = 0;
    let gradWorst = "";
    const zeroGrads: string[] = [];
    const gradErrors: Record<string, number> = {};
    for (const [name, p] of model.namedParameters()) {
      const ref = c.grads.get(name);
      if (ref === undefined) continue;
      const ours = p.grad ? floats(p.grad) : new Float64Array(p.size);
      let e: number;
      let refNorm = 0;
      for (const v of ref) refNorm += v * v;
      refNorm = Math.sqrt(refNorm);
      if (refNorm < 1e-8 * total) {
        zeroGrads.push(name);
        let d = 0;
        for (let i = 0; i < ref.length; i++) d += (ours[i]! - ref[i]!) ** 2;
        e = Math.sqrt(d) / total;
      } else e = relErr(ours, ref);
      gradErrors[name] = e;
      if (e > gradErr || gradWorst === "") {
        gradErr = Math.max(gradErr, e);
        gradWorst = name;
      }
    }
    const ours = new Set([...model.namedParameters()].map(([n]) => n));
    for (const name of c.grads.keys()) {
      if (!ours.has(name)) {
        gradErr = Number.POSITIVE_INFINITY; // the reference has a parameter we lack
        gradWorst = name;
      }
    }

    // 3. AdamW: the loss before each step, same batch every step.
    const losses: number[] = [];
    const state = new Map<string, { m: Tensor; v: Tensor }>();
    try {
      for (let step = 1; step <= c.adamw.steps; step++) {
        model.zeroGrad();
        losses.push(lossAndBackward(model, c, layout));
        adamwStep(model, state, step, c.adamw);
      }
    } finally {
      for (const st of state.values()) {
        st.m.dispose();
        st.v.dispose();
      }
      model.zeroGrad();
    }
    let adamwErr = 0;
    for (let i = 0; i < c.adamwLosses.length; i++) {
      const e = Math.abs((losses[i] ?? Number.NaN) - c.adamwLosses[i]!);
      adamwErr = Number.isNaN(e) ? Number.POSITIVE_INFINITY : Math.max(adamwErr, e);
    }
    const lossErr = Math.abs(loss - c.loss);
    const pass =
      logitsErr <= thresholds.logits &&
      hiddenErr <= thresholds.hidden &&
      lossErr <= thresholds.loss &&
      gradErr <= thresholds.grad &&
      adamwErr <= thresholds.adamw;
    return {
      case: c.name,
      device,
      logits_rel_err: logitsErr,
      hidden_rel_err: hiddenErr,
      loss_abs_err: lossErr,
      grad_max_rel_err: gradErr,
      grad_worst: gradWorst,
      grad_errors: gradErrors,
      grad_zero_params: zeroGrads,
      adamw_max_abs_err: adamwErr,
      adamw_losses: losses,
      thresholds,
      pass,
    };
  } finally {
    model.dispose();
  }
}

/**
 * `mbert check-parity <case-dir> [--device cpu|cuda] [--layout padded|unpadded]`:
 * prints one JSON line; exit code 0 on pass, 1 on failure, 2 on bad usage.
 */
export async function checkParityCommand(
  args: string[],
  out: { write(s: string): unknown } = process.stdout,
): Promise<number> {
  let dir: string | undefined;
  let device: Device = "cpu";
  let layout: "padded" | "unpadded" | undefined;
  let computeDType: "float32" | "bfloat16" | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    // The value of `--name=value` or `--name value`.
    const value = () => (a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[++i]);
    if (a === "--device" || a.startsWith("--device=")) {
      const v = value();
      if (v !== "cpu" && v !== "cuda") return usage(out, `--device must be cpu or cuda, got ${v}`);
      device = v;
    } else if (a === "--layout" || a.startsWith("--layout=")) {
      const v = value();
      if (v !== "padded" && v !== "unpadded")
        return usage(out, `--layout must be padded or unpadded, got ${v}`);
      layout = v;
    } else if (a === "--dtype" || a.startsWith("--dtype=")) {
      const v = value();
      if (v !== "float32" && v !== "bfloat16")
        return usage(out, `--dtype must be float32 or bfloat16, got ${v}`);
      computeDType = v;
    } else if (a === "-h" || a === "--help") {
      out.write(`${USAGE}\n`);
      return 0;
    } else if (a.startsWith("-")) return usage(out, `unknown option ${a}`);
    else if (dir === undefined) dir = a;
    else return usage(out, `unexpected argument ${a}`);
  }
  if (dir === undefined) return usage(out, "missing <case-dir>");
  if (device === "cuda" && !cudaAvailable()) {
    out.write(
      `${JSON.stringify({ case: path.basename(dir), device, error: "cuda is not available on this machine", pass: false })}\n`,
    );
    return 1;
  }
  try {
    const r = checkParity(dir, { device, layout, computeDType });
    out.write(`${JSON.stringify(r)}\n`);
    return r.pass ? 0 : 1;
  } catch (e) {
    const err = e as Error & { code?: string };
    out.write(
      `${JSON.stringify({ case: path.basename(dir), device, error: err.message, code: err.code, pass: false })}\n`,
    );
    return 1;
  }
}

const USAGE =
  "usage: mbert check-parity <case-dir> [--device cpu|cuda] [--layout padded|unpadded] [--dtype float32|bfloat16]";

function usage(out: { write(s: string): unknown }, msg: string): number {
  out.write(`${JSON.stringify({ error: `${msg}; ${USAGE}`, pass: false })}\n`);
  return 2;
}
