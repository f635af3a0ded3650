// Reductions over axes: sum, mean, max (amax: ties share the gradient), argmax.
import { REDUCE } from "@mbert/kernels";
import { normAxis, numel, type Shape } from "../shape.js";
import { type Tensor, record } from "../tensor.js";
import { expand } from "./layout.js";
import { checkInputs, code, emptyOn, launch, requireFloat } from "./util.js";

export type Axes = number | number[] | undefined;

function normAxes(op: string, x: Tensor, axes: Axes): number[] {
  if (axes === undefined) return x.shape.map((_, i) => i);
  const list = (Array.isArray(axes) ? axes : [axes]).map((a) => normAxis(op, a, x.rank));
  return [...new Set(list)].sort((a, b) => a - b);
}

function keptShape(shape: Shape, axes: number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** `shape` seen as (outer, size, inner) around `axis`, the form the reduce and argmax kernels take. */
function aroundAxis(shape: Shape, axis: number): [number, number, number] {
  return [numel(shape.slice(0, axis)), shape[axis]!, numel(shape.slice(axis + 1))];
}

/** Reduces one axis with kernel op `kop`, keeping the axis as size 1. */
function reduceAxis(op: string, kop: number, x: Tensor, axis: number): Tensor {
  const [outer, size, inner] = aroundAxis(x.shape, axis);
  const out = emptyOn(keptShape(x.shape, [axis]), x.dtype, x);
  if (out.size > 0) launch(op, x, (k) => k.reduce(kop, code(x), out.ptr, x.ptr, outer, size, inner));
  return out;
}

function reduceAxes(op: string, kop: number, x: Tensor, axes: number[]): Tensor {
  let cur = x;
  for (const a of axes) {
    const next = reduceAxis(op, kop, cur, a);
    if (cur !== x) cur.dispose();
    cur = next;
  }
  return cur === x ? x.alias() : cur;
}

function finalShape(shape: Shape, axes: number[], keepDim: boolean): number[] {
  return keepDim ? keptShape(shape, axes) : shape.filter((_, i) => !axes.includes(i));
}

function reshaped(t: Tensor, shape: number[]): Tensor {
  const r = t.alias(shape);
  t.dispose();
  return r;
}

export function sum(x: Tensor, axes?: Axes, keepDim = false): Tensor {
  checkInputs("sum", [x]);
  requireFloat("sum", x);
  const ax = normAxes("sum", x, axes);
  const out = reshaped(reduceAxes("sum", REDUCE.sum, x, ax), finalShape(x.shape, ax, keepDim));
  record("sum", out, [x], [], (g) => {
    const gk = g.alias(keptShape(x.shape, ax));
    const r = expand(gk, x.shape);
    gk.dispose();
    return [r];
  });
  return out;
}

export function mean(x: Tensor, axes?: Axes, keepDim = false): Tensor {
  const ax = normAxes("mean", x, axes);
  const count = ax.reduce((n, a) => n * x.shape[a]!, 1);
  const s = sum(x, ax, keepDim);
  const out = s.mul(count === 0 ? Number.NaN : 1 / count);
  s.dispose();
  return out;
}

/** Max over axes; where several elements tie for the max they share its gradient equally. */
export function max(x: Tensor, axes?: Axes, keepDim = false): Tensor {
  checkInputs("max", [x]);
  requireFloat("max", x);
  const ax = normAxes("max", x, axes);
  const kept = reduceAxes("max", REDUCE.max, x, ax);
  const out = kept.alias(finalShape(x.shape, ax, keepDim));
  record("max", out, [x], [x, kept], (g, [xs, ks]) => {
    const big = expand(ks!, x.shape);
    const mask = xs!.eq(big);
    big.dispose();
    const count = sum(mask, ax, true);
    const gk = g.alias(keptShape(x.shape, ax));
    const share = gk.div(count);
    gk.dispose();
    count.dispose();
    const shareBig = expand(share, x.shape);
    share.dispose();
    const r = mask.mul(shareBig);
    mask.dispose();
    shareBig.dispose();
    return [r];
  });
  kept.dispose();
  return out;
}

export function min(x: Tensor, axes?: Axes, keepDim = false): Tensor {
  const n = x.neg();
  const m = max(n, axes, keepDim);
  n.dispose();
  const out = m.neg();
  m.dispose();
  return out;
}

/** Index of the max along one axis (int32, first on ties; no gradient). */
export function argmax(x: Tensor, axis = -1, keepDim = false): Tensor {
  checkInputs("argmax", [x]);
  const a = normAxis("argmax", axis, x.rank);
  const [outer, size, inner] = aroundAxis(x.shape, a);
  const out = emptyOn(finalShape(x.shape, [a], keepDim), "int32", x);
  if (out.size > 0) launch("argmax", x, (k) => k.argmax(code(x), out.ptr, x.ptr, outer, size, inner));
  return out;
}
