// Neural-network primitives with fused kernels: softmax, log-softmax,
// layer norm (with fused residual), dropout, cross-entropy, GeGLU, casts.
import { REDUCE, UNARY } from "@mbert/kernels";
import { backend } from "../backend.js";
import { type DType, type Device, dtypeBytes, statDType } from "../dtype.js";
import { DTypeError, ShapeError, wrapNative } from "../errors.js";
import { defaultGenerator, type Generator } from "../random.js";
import { fmt, sameShape } from "../shape.js";
import { Tensor, record } from "../tensor.js";
import { weightFor } from "../lowp.js";
import { checkInputs, code, emptyOn, launch, requireFloat } from "./util.js";

function softmaxImpl(x: Tensor, log: boolean): Tensor {
  const op = log ? "logSoftmax" : "softmax";
  checkInputs(op, [x]);
  requireFloat(op, x);
  if (x.rank === 0) throw new ShapeError(`${op}: needs at least one dimension`);
  const cols = x.shape[x.rank - 1]!;
  const rows = cols === 0 ? 0 : x.size / cols;
  const y = emptyOn(x.shape, x.dtype, x);
  if (x.size > 0) launch(op, x, (k) => k.softmaxForward(code(x), y.ptr, x.ptr, rows, cols, log));
  record(op, y, [x], [y], (g, [ys]) => {
    const dx = emptyOn(x.shape, x.dtype, g);
    if (x.size > 0)
      launch(`${op} backward`, g, (k) => k.softmaxBackward(code(x), dx.ptr, g.ptr, ys!.ptr, rows, cols, log));
    return [dx];
  });
  return y;
}

/** Softmax over the last axis. */
export const softmax = (x: Tensor) => softmaxImpl(x, false);
/** Log-softmax over the last axis. */
export const logSoftmax = (x: Tensor) => softmaxImpl(x, true);

export interface LayerNormOptions {
  /**
   * Dropout probability applied to x before the residual add, in the same
   * kernel (default 0; needs a residual): h = dropout(x) + residual, equal to
   * `layerNorm(dropout(x, p, training, generator), ..., residual)` with the
   * same generator draw, without the extra pass over x.
   */
  dropout?: number;
  /** Whether dropout applies (default true, as `dropout`). */
  training?: boolean;
  generator?: Generator;
}

/**
 * LayerNorm over the last axis of h, where h = x + residual when a residual
 * is given (fused: one pass), or h = dropout(x) + residual with
 * `opts.dropout`. weight, bias: (C). Statistics in fp32 (fp64 for float64
 * inputs) are saved for backward.
 */
export function layerNorm(
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  eps = 1e-12,
  residual?: Tensor | null,
  opts: LayerNormOptions = {},
): Tensor {
  checkInputs("layerNorm", [x, weight, bias], { sameDType: false });
  if (residual) checkInputs("layerNorm", [x, residual]);
  requireFloat("layerNorm", x);
  const C = x.shape[x.rank - 1] ?? 0;
  if (weight.rank !== 1 || weight.shape[0] !== C || !sameShape(weight.shape, bias.shape)) {
    throw new ShapeError(
      `layerNorm: input has ${C} features (shape ${fmt(x.shape)}), weight ${fmt(weight.shape)} and bias ${fmt(bias.shape)} must be [${C}]`,
    );
  }
  if (residual && !sameShape(residual.shape, x.shape)) {
    throw new ShapeError(`layerNorm: residual has shape ${fmt(residual.shape)}, input has ${fmt(x.shape)}`);
  }
  const p = opts.dropout ?? 0;
  if (!(p >= 0 && p < 1)) throw new RangeError(`layerNorm: dropout must be in [0, 1), got ${p}`);
  const drop = (opts.training ?? true) && p > 0 ? p : 0;
  if (drop > 0 && !residual) {
    throw new ShapeError("layerNorm: dropout is fused only with a residual (use dropout(x) first otherwise)");
  }
  const wc = weightFor("layerNorm", weight, x.dtype);
  const bc = weightFor("layerNorm", bias, x.dtype, "bias");
  // The same generator draw as dropout(x): fused and separate runs give the same bits.
  const generator = opts.generator ?? defaultGenerator;
  const seed = drop > 0 ? generator.seed : 0;
  const offset = drop > 0 ? generator.take(x.size) : 0;
  const rows = C === 0 ? 0 : x.size / C;
  const sd = statDType(x.dtype);
  const out = emptyOn(x.shape, x.dtype, x);
  const mean = emptyOn([rows], sd, x);
  const rstd = emptyOn([rows], sd, x);
  const h = residual ? emptyOn(x.shape, x.dtype, x) : x;
  if (x.size > 0) {
    launch("layerNorm", x, (k) =>
      k.layernormForward(
        code(x),
        out.ptr,
        mean.ptr,
        rstd.ptr,
        x.ptr,
        residual ? residual.ptr : 0,
        residual ? h.ptr : 0,
        wc.ptr,
        bc.ptr,
        rows,
        C,
        eps,
        drop,
        seed,
        offset,
      ),
    );
  }
  record(
    "layerNorm",
    out,
    [x, weight, bias, residual ?? null],
    [h, mean, rstd, wc],
    (g, [hs, ms, rs, ws]) => {
      const dx = emptyOn(x.shape, x.dtype, g);
      // h = dropout(x) + residual: x's gradient is dx through the same mask, written in the same pass.
      const dxIn = drop > 0 ? emptyOn(x.shape, x.dtype, g) : null;
      const dw = weight.requiresGrad ? emptyOn(weight.shape, weight.dtype, g) : null;
      const db = bias.requiresGrad ? emptyOn(bias.shape, bias.dtype, g) : null;
      if (x.size > 0) {
        launch("layerNorm backward", g, (k) =>
          k.layernormBackward(
            code(x),
            code(weight),
            dx.ptr,
            dw ? dw.ptr : 0,
            db ? db.ptr : 0,
            g.ptr,
            hs!.ptr,
            ms!.ptr,
            rs!.ptr,
            ws!.ptr,
            rows,
            C,
            false,
            dxIn ? dxIn.ptr : 0,
            drop,
            seed,
            offset,
          ),
        );
      } else {
        for (const t of [dw, db])
          if (t?.size) launch("layerNorm backward", g, (k) => k.fill(code(t), t.ptr, t.size, 0));
      }
      return dxIn ? [dxIn, dw, db, dx] : [dx, dw, db, residual ? dx : null];
    },
  );
  mean.dispose();
  rstd.dispose();
  if (h !== x) h.dispose();
  return out;
}

/** Inverted dropout with a Philox mask from (generator seed, offset); identity when not training or p = 0. */
export function dropout(
  x: Tensor,
  p: number,
  training = true,
  generator: Generator = defaultGenerator,
): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${p}`);
  if (!training || p === 0) return x;
  checkInputs("dropout", [x]);
  requireFloat("dropout", x);
  const seed = generator.seed;
  const offset = generator.take(x.size);
  const out = emptyOn(x.shape, x.dtype, x);
  if (x.size > 0)
    launch("dropout", x, (k) => k.dropoutForward(code(x), out.ptr, x.ptr, x.size, p, seed, offset));
  record("dropout", out, [x], [], (g) => {
    const dx = emptyOn(x.shape, x.dtype, g);
    if (x.size > 0)
      launch("dropout backward", g, (k) =>
        k.dropoutBackward(code(x), dx.ptr, g.ptr, x.size, p, seed, offset),
      );
    return [dx];
  });
  return out;
}

export interface CrossEntropyOptions {
  /** Label of rows that do not count (default -100, as PyTorch). */
  ignoreIndex?: number;
  /** 'mean' over kept rows (default), 'sum', or 'none' (per-row losses). */
  reduction?: "mean" | "sum" | "none";
  /** Number of kept rows when the caller knows it on the host (saves a device read). */
  numKept?: number;
}

/**
 * Cross-entropy of logits (N, V) against int32 labels (N), fused with the
 * softmax. The loss is float32 (float64 for float64 logits).
 */
export function crossEntropy(logits: Tensor, labels: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? "mean";
  checkInputs("crossEntropy", [logits, labels], { sameDType: false });
  requireFloat("crossEntropy", logits);
  if (labels.dtype !== "int32")
    throw new DTypeError(`crossEntropy: labels must be int32, got ${labels.dtype}`);
  if (logits.rank !== 2 || labels.rank !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw new ShapeError(
      `crossEntropy: logits ${fmt(logits.shape)} must be (N, V) and labels ${fmt(labels.shape)} must be (N)`,
    );
  }
  const [N, V] = logits.shape as [number, number];
  const sd = statDType(logits.dtype);
  const losses = emptyOn([N], sd, logits);
  const lse = emptyOn([N], sd, logits);
  if (N > 0) {
    launch("crossEntropy", logits, (k) =>
      k.crossEntropyForward(code(logits), losses.ptr, lse.ptr, logits.ptr, labels.ptr, N, V, ignoreIndex),
    );
  }
  let kept = opts.numKept;
  if (reduction === "mean" && kept === undefined) {
    const host = labels.data() as Int32Array;
    kept = 0;
    for (const l of host) if (l !== ignoreIndex) kept++;
  }
  let out: Tensor;
  if (reduction === "none") out = losses;
  else {
    out = emptyOn([], sd, logits);
    launch("crossEntropy", logits, (k) => k.reduce(REDUCE.sum, code(sd), out.ptr, losses.ptr, 1, N, 1));
    if (reduction === "mean") {
      const s = kept ? 1 / kept : Number.NaN;
      launch("crossEntropy", logits, (k) => k.unary(UNARY.affine, code(sd), out.ptr, out.ptr, 1, s, 0));
    }
    losses.dispose();
  }
  const rowScale = reduction === "mean" ? (kept ? 1 / kept : 0) : 1;
  record("crossEntropy", out, [logits, null], [logits, lse, labels], (g, [ls, lses, lbs]) => {
    const dlogits = emptyOn(logits.shape, logits.dtype, g);
    if (N === 0) return [dlogits, null];
    // A scalar upstream gradient known on the host folds into the kernel's scale.
    const folded = reduction !== "none" && g.constant !== null;
    const s = folded ? g.constant! * rowScale : rowScale;
    launch("crossEntropy backward", g, (k) =>
      k.crossEntropyBackward(code(logits), dlogits.ptr, ls!.ptr, lses!.ptr, lbs!.ptr, N, V, ignoreIndex, s),
    );
    if (folded) return [dlogits, null];
    // Scale rows by the upstream gradient: a scalar, or (N) for reduction 'none'.
    const gc = g.dtype === logits.dtype ? g : g.castTo(logits.dtype);
    const gcol = gc.alias(reduction === "none" ? [N, 1] : [1, 1]);
    const scaled = dlogits.mul(gcol);
    gcol.dispose();
    if (gc !== g) gc.dispose();
    dlogits.dispose();
    return [scaled, null];
  });
  lse.dispose();
  return out;
}

/** Mean squared error: mean((a - b)^2). */
export function mseLoss(a: Tensor, b: Tensor): Tensor {
  const d = a.sub(b);
  const sq = d.square();
  d.dispose();
  const out = sq.mean();
  sq.dispose();
  return out;
}

export interface GegluOptions {
  /**
   * Dropout probability applied to the output in the same kernel (default 0):
   * the result equals `dropout(geglu(x), p, training, generator)`, with the
   * same generator draw, without the extra pass over the (rows, I) tensor.
   */
  dropout?: number;
  /** Whether dropout applies (default true, as `dropout`). */
  training?: boolean;
  generator?: Generator;
}

/** GeGLU on a fused projection: x (..., 2I) -> gelu(x[..., :I]) * x[..., I:]. */
export function geglu(x: Tensor, opts: GegluOptions = {}): Tensor {
  checkInputs("geglu", [x]);
  requireFloat("geglu", x);
  const two = x.shape[x.rank - 1] ?? 0;
  if (x.rank === 0 || two % 2 !== 0)
    throw new ShapeError(`geglu: last dimension of ${fmt(x.shape)} must be even (2I)`);
  const p = opts.dropout ?? 0;
  if (!(p >= 0 && p < 1)) throw new RangeError(`geglu: dropout must be in [0, 1), got ${p}`);
  const I = two / 2;
  const rows = I === 0 ? 0 : x.size / two;
  const out = emptyOn([...x.shape.slice(0, -1), I], x.dtype, x);
  // The same generator draw as dropout(out): fused and separate runs give the same bits.
  const drop = (opts.training ?? true) && p > 0 ? p : 0;
  const generator = opts.generator ?? defaultGenerator;
  const seed = drop > 0 ? generator.seed : 0;
  const offset = drop > 0 ? generator.take(out.size) : 0;
  if (out.size > 0)
    launch("geglu", x, (k) => k.gegluForward(code(x), out.ptr, x.ptr, rows, I, drop, seed, offset));
  record("geglu", out, [x], [x], (g, [xs]) => {
    const dx = emptyOn(x.shape, x.dtype, g);
    if (x.size > 0)
      launch("geglu backward", g, (k) =>
        k.gegluBackward(code(x), dx.ptr, g.ptr, xs!.ptr, rows, I, drop, seed, offset),
      );
    return [dx];
  });
  return out;
}

/** Differentiable dtype conversion (the gradient is cast back). */
export function cast(x: Tensor, dtype: DType): Tensor {
  checkInputs("cast", [x]);
  if (x.dtype === dtype) return x;
  const out = x.castTo(dtype);
  if (dtype !== "int32" && x.dtype !== "int32") record("cast", out, [x], [], (g) => [g.castTo(x.dtype)]);
  return out;
}

/** Differentiable copy to another device. */
export function to(x: Tensor, device: Device): Tensor {
  checkInputs("to", [x]);
  if (x.device === device) return x;
  const out = Tensor.empty(x.shape, x.dtype, device);
  if (x.size > 0) {
    const bytes = x.size * dtypeBytes(x.dtype);
    const host = new Uint8Array(bytes);
    wrapNative("to", () => backend(x.device).download(x.ptr, 0, host));
    wrapNative("to", () => backend(device).upload(out.ptr, 0, host));
  }
  out.constant = x.constant;
  record("to", out, [x], [], (g) => [to(g, x.device)]);
  return out;
}
