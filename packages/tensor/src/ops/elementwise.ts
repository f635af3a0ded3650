// Elementwise ops with broadcasting, each with its gradient beside it.
import { BINARY, UNARY, type UnaryOp } from "@mbert/kernels";
import { full } from "../creation.js";
import { broadcastShapes, broadcastStrides, sameShape, type Shape } from "../shape.js";
import { Tensor, record } from "../tensor.js";
import { sum } from "./reduce.js";
import { checkInputs, code, emptyOn, launch, requireFloat } from "./util.js";

export type Operand = Tensor | number;

function scalarLike(x: number, like: Tensor): Tensor {
  return full([], x, { dtype: like.dtype, device: like.device });
}

/** Sums a broadcast gradient back down to `shape`. Returns g itself when no reduction is needed. */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    const d = i < lead ? 1 : shape[i - lead]!;
    if (i < lead || (d === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const s = sum(g, axes, true);
  const r = s.reshape(shape);
  s.dispose();
  return r;
}

// ---- unary ------------------------------------------------------------------

// What each op's backward reads: its input x, its output y, or neither (the
// kernels take 0 for the one they do not read). Only that is kept on the tape.
const BACKWARD_READS: Record<UnaryOp, "x" | "y" | null> = {
  neg: null,
  exp: "y",
  log: "x",
  tanh: "y",
  gelu: "x",
  sqrt: "y",
  abs: "x",
  relu: "x",
  sigmoid: "y",
  affine: null,
  pow: "x",
  rsqrt: "y",
  square: "x",
};

function unaryOp(op: UnaryOp, x: Tensor, alpha = 0, beta = 0): Tensor {
  checkInputs(op, [x]);
  requireFloat(op, x);
  const out = emptyOn(x.shape, x.dtype, x);
  if (x.size > 0) launch(op, x, (k) => k.unary(UNARY[op], code(x), out.ptr, x.ptr, x.size, alpha, beta));
  const reads = BACKWARD_READS[op];
  const save = reads === "x" ? [x] : reads === "y" ? [out] : [];
  record(op, out, [x], save, (g, [s]) => {
    const xp = reads === "x" ? s!.ptr : 0;
    const yp = reads === "y" ? s!.ptr : 0;
    const dx = emptyOn(x.shape, x.dtype, g);
    if (x.size > 0) {
      launch(`${op} backward`, g, (k) =>
        k.unaryBackward(UNARY[op], code(x), dx.ptr, g.ptr, xp, yp, x.size, alpha, beta),
      );
    }
    return [dx];
  });
  return out;
}

export const neg = (x: Tensor) => unaryOp("neg", x);
export const exp = (x: Tensor) => unaryOp("exp", x);
export const log = (x: Tensor) => unaryOp("log", x);
export const tanh = (x: Tensor) => unaryOp("tanh", x);
/** Exact GELU: x * Φ(x) with the erf form (as BERT). */
export const gelu = (x: Tensor) => unaryOp("gelu", x);
export const sqrt = (x: Tensor) => unaryOp("sqrt", x);
export const rsqrt = (x: Tensor) => unaryOp("rsqrt", x);
export const abs = (x: Tensor) => unaryOp("abs", x);
export const relu = (x: Tensor) => unaryOp("relu", x);
export const sigmoid = (x: Tensor) => unaryOp("sigmoid", x);
export const square = (x: Tensor) => unaryOp("square", x);
/** alpha * x + beta. */
export const scale = (x: Tensor, alpha: number, beta = 0) => unaryOp("affine", x, alpha, beta);
/** x ^ p for a number p. */
export const powScalar = (x: Tensor, p: number) => unaryOp("pow", x, p);

// ---- binary -----------------------------------------------------------------

type BinaryName = keyof typeof BINARY;

function binaryRaw(op: BinaryName, a: Tensor, b: Tensor): Tensor {
  checkInputs(op, [a, b]);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = emptyOn(shape, a.dtype, a);
  if (out.size > 0) {
    launch(op, a, (k) =>
      k.binary(
        BINARY[op],
        code(a),
        out.ptr,
        a.ptr,
        b.ptr,
        shape.length ? shape : [1],
        shape.length ? broadcastStrides(a.shape, shape) : [0],
        shape.length ? broadcastStrides(b.shape, shape) : [0],
      ),
    );
  }
  return out;
}

function withOperands(op: string, a: Operand, b: Operand, fn: (a: Tensor, b: Tensor) => Tensor): Tensor {
  if (typeof a === "number" && typeof b === "number")
    throw new TypeError(`${op}: at least one operand must be a tensor`);
  const ta = typeof a === "number" ? scalarLike(a, b as Tensor) : a;
  const tb = typeof b === "number" ? scalarLike(b, ta) : b;
  try {
    return fn(ta, tb);
  } finally {
    if (ta !== a) ta.dispose();
    if (tb !== b) tb.dispose();
  }
}

export function add(a: Operand, b: Operand): Tensor {
  if (typeof b === "number" && a instanceof Tensor) return scale(a, 1, b);
  if (typeof a === "number" && b instanceof Tensor) return scale(b, 1, a);
  return withOperands("add", a, b, (x, y) => {
    const out = binaryRaw("add", x, y);
    record("add", out, [x, y], [], (g) => [sumTo(g, x.shape), sumTo(g, y.shape)]);
    return out;
  });
}

export function sub(a: Operand, b: Operand): Tensor {
  if (typeof b === "number" && a instanceof Tensor) return scale(a, 1, -b);
  if (typeof a === "number" && b instanceof Tensor) return scale(b, -1, a);
  return withOperands("sub", a, b, (x, y) => {
    const out = binaryRaw("sub", x, y);
    record("sub", out, [x, y], [], (g) => {
      const gb = sumTo(g, y.shape);
      const nb = neg(gb);
      if (gb !== g) gb.dispose();
      return [sumTo(g, x.shape), nb];
    });
    return out;
  });
}

export function mul(a: Operand, b: Operand): Tensor {
  if (typeof b === "number" && a instanceof Tensor) return scale(a, b);
  if (typeof a === "number" && b instanceof Tensor) return scale(b, a);
  return withOperands("mul", a, b, (x, y) => {
    const out = binaryRaw("mul", x, y);
    record("mul", out, [x, y], [x, y], (g, [xs, ys]) => {
      const gx = x.requiresGrad ? reduceTo(binaryRaw("mul", g, ys!), x.shape) : null;
      const gy = y.requiresGrad ? reduceTo(binaryRaw("mul", g, xs!), y.shape) : null;
      return [gx, gy];
    });
    return out;
  });
}

export function div(a: Operand, b: Operand): Tensor {
  if (typeof b === "number" && a instanceof Tensor) return scale(a, 1 / b);
  return withOperands("div", a, b, (x, y) => {
    const out = binaryRaw("div", x, y);
    record("div", out, [x, y], [y, out], (g, [ys, outs]) => {
      const gx = x.requiresGrad ? reduceTo(binaryRaw("div", g, ys!), x.shape) : null;
      let gy: Tensor | null = null;
      if (y.requiresGrad) {
        // d(x/y)/dy = -out / y
        const t1 = binaryRaw("mul", g, outs!);
        const t2 = binaryRaw("div", t1, ys!);
        t1.dispose();
        const t3 = neg(t2);
        t2.dispose();
        gy = reduceTo(t3, y.shape);
      }
      return [gx, gy];
    });
    return out;
  });
}

/** Elementwise power with a tensor or number exponent. */
export function pow(a: Operand, b: Operand): Tensor {
  if (typeof b === "number" && a instanceof Tensor) return powScalar(a, b);
  return withOperands("pow", a, b, (x, y) => {
    const out = binaryRaw("pow", x, y);
    record("pow", out, [x, y], [x, y, out], (g, [xs, ys, outs]) => {
      let gx: Tensor | null = null;
      let gy: Tensor | null = null;
      if (x.requiresGrad) {
        // y * x^(y-1) = y * out / x
        const t1 = binaryRaw("mul", g, ys!);
        const t2 = binaryRaw("mul", t1, outs!);
        const t3 = binaryRaw("div", t2, xs!);
        t1.dispose();
        t2.dispose();
        gx = reduceTo(t3, x.shape);
      }
      if (y.requiresGrad) {
        const lx = log(xs!);
        const t1 = binaryRaw("mul", g, outs!);
        const t2 = binaryRaw("mul", t1, lx);
        lx.dispose();
        t1.dispose();
        gy = reduceTo(t2, y.shape);
      }
      return [gx, gy];
    });
    return out;
  });
}

function selectOp(op: "maximum" | "minimum", a: Operand, b: Operand): Tensor {
  return withOperands(op, a, b, (x, y) => {
    const out = binaryRaw(op, x, y);
    record(op, out, [x, y], [x, y], (g, [xs, ys]) => {
      // Ties send the gradient to the first operand.
      const maskX = binaryRaw(op === "maximum" ? "ge" : "le", xs!, ys!);
      const gx = x.requiresGrad ? reduceTo(binaryRaw("mul", g, maskX), x.shape) : null;
      let gy: Tensor | null = null;
      if (y.requiresGrad) {
        const maskY = scale(maskX, -1, 1);
        gy = reduceTo(binaryRaw("mul", g, maskY), y.shape);
        maskY.dispose();
      }
      maskX.dispose();
      return [gx, gy];
    });
    return out;
  });
}

export const maximum = (a: Operand, b: Operand) => selectOp("maximum", a, b);
export const minimum = (a: Operand, b: Operand) => selectOp("minimum", a, b);

function compare(op: "eq" | "gt" | "lt" | "ge" | "le", a: Operand, b: Operand): Tensor {
  return withOperands(op, a, b, (x, y) => binaryRaw(op, x, y));
}

/** 1 where equal, else 0 (same dtype as the inputs; no gradient). */
export const eq = (a: Operand, b: Operand) => compare("eq", a, b);
export const gt = (a: Operand, b: Operand) => compare("gt", a, b);
export const lt = (a: Operand, b: Operand) => compare("lt", a, b);
export const ge = (a: Operand, b: Operand) => compare("ge", a, b);
export const le = (a: Operand, b: Operand) => compare("le", a, b);

/** sumTo that disposes its input when it made a new tensor. */
function reduceTo(t: Tensor, shape: Shape): Tensor {
  const r = sumTo(t, shape);
  if (r !== t) t.dispose();
  return r;
}

/** In place: a += b (same shape, no recording). For accumulators. */
export function addInPlace(a: Tensor, b: Tensor): Tensor {
  checkInputs("addInPlace", [a, b]);
  if (!sameShape(a.shape, b.shape)) throw new RangeError("addInPlace: shapes differ");
  if (a.size > 0)
    launch("addInPlace", a, (k) => k.binary(BINARY.add, code(a), a.ptr, a.ptr, b.ptr, [a.size], [1], [1]));
  a.constant = null;
  return a;
}
