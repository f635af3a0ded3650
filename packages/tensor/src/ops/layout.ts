// Layout ops: reshape shares storage; every other op copies through stridedCopy.
import { ShapeError } from "../errors.js";
import { sumTo } from "./elementwise.js";
import {
  broadcastShapes,
  broadcastStrides,
  contiguousStrides,
  fmt,
  inferShape,
  normAxis,
  sameShape,
  type Shape,
} from "../shape.js";
import { type Tensor, record } from "../tensor.js";
import { checkInputs, code, emptyOn, launch } from "./util.js";

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  checkInputs("reshape", [x]);
  const s = inferShape("reshape", x.shape, shape);
  const out = x.alias(s);
  record("reshape", out, [x], [], (g) => [g.alias(x.shape)]);
  return out;
}

export function flatten(x: Tensor, startAxis = 0, endAxis = -1): Tensor {
  if (x.rank === 0) return reshape(x, [1]);
  const s = normAxis("flatten", startAxis, x.rank);
  const e = normAxis("flatten", endAxis, x.rank);
  const mid = x.shape.slice(s, e + 1).reduce((a, b) => a * b, 1);
  return reshape(x, [...x.shape.slice(0, s), mid, ...x.shape.slice(e + 1)]);
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis("unsqueeze", axis, x.rank + 1);
  const s = [...x.shape];
  s.splice(a, 0, 1);
  return reshape(x, s);
}

export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined)
    return reshape(
      x,
      x.shape.filter((d) => d !== 1),
    );
  const a = normAxis("squeeze", axis, x.rank);
  if (x.shape[a] !== 1) throw new ShapeError(`squeeze: axis ${axis} has size ${x.shape[a]}, expected 1`);
  return reshape(
    x,
    x.shape.filter((_, i) => i !== a),
  );
}

/** Raw strided copy (no recording). */
function copyStrided(
  op: string,
  out: Tensor,
  outOffset: number,
  outStrides: number[],
  x: Tensor,
  xOffset: number,
  xStrides: number[],
  shape: readonly number[],
): void {
  if (shape.some((d) => d === 0)) return;
  const sh = shape.length ? [...shape] : [1];
  const os = shape.length ? outStrides : [1];
  const xs = shape.length ? xStrides : [1];
  launch(op, x, (k) => k.stridedCopy(code(x), out.ptr, outOffset, os, x.ptr, xOffset, xs, sh));
}

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  checkInputs("permute", [x]);
  const p = perm.length === x.rank ? perm.map((a) => normAxis("permute", a, x.rank)) : [];
  if (perm.length !== x.rank || new Set(p).size !== x.rank) {
    throw new ShapeError(
      `permute: ${fmt(perm)} is not a permutation of the ${x.rank} axes of ${fmt(x.shape)}`,
    );
  }
  const shape = p.map((a) => x.shape[a]!);
  const xs = contiguousStrides(x.shape);
  const out = emptyOn(shape, x.dtype, x);
  copyStrided(
    "permute",
    out,
    0,
    contiguousStrides(shape),
    x,
    0,
    p.map((a) => xs[a]!),
    shape,
  );
  const inv = new Array<number>(p.length);
  p.forEach((a, i) => {
    inv[a] = i;
  });
  record("permute", out, [x], [], (g) => [permute(g, inv)]);
  return out;
}

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const p = x.shape.map((_, i) => i);
  const ia = normAxis("transpose", a, x.rank);
  const ib = normAxis("transpose", b, x.rank);
  p[ia] = ib;
  p[ib] = ia;
  return permute(x, p);
}

/** Elements [start, end) of `axis` (a copy). */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  checkInputs("slice", [x]);
  const a = normAxis("slice", axis, x.rank);
  const n = x.shape[a]!;
  const s = start < 0 ? start + n : start;
  const e = end === undefined ? n : end < 0 ? end + n : end;
  if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e > n || s > e) {
    throw new ShapeError(`slice: range [${start}, ${end ?? n}) is outside axis ${axis} of size ${n}`);
  }
  const shape = [...x.shape];
  shape[a] = e - s;
  const xs = contiguousStrides(x.shape);
  const out = emptyOn(shape, x.dtype, x);
  copyStrided("slice", out, 0, contiguousStrides(shape), x, s * xs[a]!, xs, shape);
  record("slice", out, [x], [], (g) => {
    const dx = emptyOn(x.shape, g.dtype, g);
    if (dx.size > 0) launch("slice backward", g, (k) => k.fill(code(g), dx.ptr, dx.size, 0));
    copyStrided("slice backward", dx, s * xs[a]!, xs, g, 0, contiguousStrides(shape), shape);
    return [dx];
  });
  return out;
}

export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  return slice(x, axis, start, start + length);
}

export function concat(xs: Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new ShapeError("concat: needs at least one tensor");
  checkInputs("concat", xs);
  const first = xs[0]!;
  const a = normAxis("concat", axis, first.rank);
  for (const t of xs) {
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new ShapeError(
        `concat: shapes ${fmt(first.shape)} and ${fmt(t.shape)} differ outside axis ${axis}`,
      );
    }
  }
  const shape = [...first.shape];
  shape[a] = xs.reduce((n, t) => n + t.shape[a]!, 0);
  const out = emptyOn(shape, first.dtype, first);
  const os = contiguousStrides(shape);
  const starts: number[] = [];
  let at = 0;
  for (const t of xs) {
    starts.push(at);
    copyStrided("concat", out, at * os[a]!, os, t, 0, contiguousStrides(t.shape), t.shape);
    at += t.shape[a]!;
  }
  record("concat", out, xs, [], (g) =>
    xs.map((t, i) => (t.requiresGrad ? slice(g, a, starts[i]!, starts[i]! + t.shape[a]!) : null)),
  );
  return out;
}

export function stack(xs: Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new ShapeError("stack: needs at least one tensor");
  const us = xs.map((t) => unsqueeze(t, axis < 0 ? axis + t.rank + 1 : axis));
  const out = concat(us, axis < 0 ? axis + xs[0]!.rank + 1 : axis);
  for (const u of us) u.dispose();
  return out;
}

/** Broadcasts x to `shape` (a copy). The gradient sums back. */
export function expand(x: Tensor, shape: Shape): Tensor {
  checkInputs("expand", [x]);
  const target = broadcastShapes("expand", x.shape, shape);
  if (!sameShape(target, shape))
    throw new ShapeError(`expand: cannot expand ${fmt(x.shape)} to ${fmt(shape)}`);
  const out = emptyOn(shape, x.dtype, x);
  copyStrided("expand", out, 0, contiguousStrides(shape), x, 0, broadcastStrides(x.shape, shape), shape);
  // The gradient sums back over the broadcast axes.
  record("expand", out, [x], [], (g) => [sumTo(g, x.shape)]);
  return out;
}

/** A copy (every tensor is contiguous already; kept for API familiarity). */
export function contiguous(x: Tensor): Tensor {
  return x.clone();
}
