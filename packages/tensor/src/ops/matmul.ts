// Batched matmul and linear (x·Wᵀ + b), with their gradients.
import { ShapeError } from "../errors.js";
import { fmt, numel } from "../shape.js";
import { type Tensor, record } from "../tensor.js";
import { weightFor } from "../lowp.js";
import { checkInputs, code, emptyOn, launch, requireFloat } from "./util.js";

interface GemmArgs {
  out: Tensor;
  a: Tensor;
  b: Tensor;
  batch: number;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  strideA: number;
  strideB: number;
  beta?: number;
  /** (N) in out's dtype, added to every row (in the GEMM's epilogue on cuda). */
  bias?: Tensor | null;
}

/** Raw GEMM launch: out = op(a) @ op(b) (+ beta * out). */
export function gemm(op: string, g: GemmArgs): void {
  if (g.out.size === 0) return;
  if (g.K === 0) {
    if (!g.beta) launch(op, g.out, (k) => k.fill(code(g.out), g.out.ptr, g.out.size, 0));
    const bias = g.bias;
    if (bias) launch(op, g.out, (k) => k.addBias(code(g.out), g.out.ptr, bias.ptr, g.out.size / g.N, g.N));
    return;
  }
  launch(op, g.a, (k) =>
    k.matmul(
      code(g.a),
      code(g.out),
      g.out.ptr,
      g.a.ptr,
      g.b.ptr,
      g.batch,
      g.M,
      g.N,
      g.K,
      g.transA,
      g.transB,
      1,
      g.beta ?? 0,
      g.strideA,
      g.strideB,
      g.M * g.N,
      g.bias ? g.bias.ptr : 0,
    ),
  );
}

/**
 * Matrix product. a: (..., M, K), b: (..., K, N). Batch dims must be equal,
 * or one side 2-D (broadcast). 1-D operands are treated as (1, K) / (K, 1).
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  checkInputs("matmul", [a, b]);
  requireFloat("matmul", a, b);
  if (a.rank === 0 || b.rank === 0) throw new ShapeError("matmul: operands must have at least one dimension");
  if (a.rank === 1) {
    const a2 = a.reshape([1, a.shape[0]!]);
    const r = matmul(a2, b);
    a2.dispose();
    const out = r.reshape([...r.shape.slice(0, -2), r.shape[r.rank - 1]!]);
    r.dispose();
    return out;
  }
  if (b.rank === 1) {
    const b2 = b.reshape([b.shape[0]!, 1]);
    const r = matmul(a, b2);
    b2.dispose();
    const out = r.reshape(r.shape.slice(0, -1));
    r.dispose();
    return out;
  }
  const M = a.shape[a.rank - 2]!;
  const K = a.shape[a.rank - 1]!;
  const K2 = b.shape[b.rank - 2]!;
  const N = b.shape[b.rank - 1]!;
  if (K !== K2) {
    throw new ShapeError(
      `matmul: a has shape ${fmt(a.shape)} and b has ${fmt(b.shape)}; inner dimensions ${K} and ${K2} differ`,
    );
  }
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  let batchShape: number[];
  if (aBatch.length === 0) batchShape = [...bBatch];
  else if (bBatch.length === 0) batchShape = [...aBatch];
  else if (aBatch.length === bBatch.length && aBatch.every((d, i) => d === bBatch[i]))
    batchShape = [...aBatch];
  else {
    throw new ShapeError(
      `matmul: batch dimensions ${fmt(aBatch)} and ${fmt(bBatch)} must be equal or one side must be 2-D`,
    );
  }
  const batch = numel(batchShape);
  const out = emptyOn([...batchShape, M, N], a.dtype, a);
  // A 2-D b takes a's batch as extra rows: one GEMM over (batch*M, K).
  const fold = bBatch.length === 0;
  const gemmBatch = fold ? 1 : batch;
  const rows = fold ? batch * M : M;
  // Elements between batches of a, b and out (or its gradient); 0 where shared or folded.
  const strideA = !fold && aBatch.length ? M * K : 0;
  const strideB = fold ? 0 : K * N;
  const strideOut = fold ? 0 : M * N;
  gemm("matmul", {
    out,
    a,
    b,
    batch: gemmBatch,
    M: rows,
    N,
    K,
    transA: false,
    transB: false,
    strideA,
    strideB,
  });
  record("matmul", out, [a, b], [a, b], (g, [as, bs]) => {
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (a.requiresGrad) {
      // dA = g @ Bᵀ  (summed over the batch when a was broadcast)
      if (aBatch.length === 0 && bBatch.length > 0) {
        // sum_b g[b] @ B[b]ᵀ = g' @ B'ᵀ with g' = (M, batch*N), B' = (K, batch*N).
        const g3 = g.reshape([batch, M, N]);
        const b3 = bs!.reshape([batch, K, N]);
        const gp = g3.permute([1, 0, 2]);
        const bp = b3.permute([1, 0, 2]);
        ga = emptyOn([M, K], a.dtype, g);
        gemm("matmul backward", {
          out: ga,
          a: gp,
          b: bp,
          batch: 1,
          M,
          N: K,
          K: batch * N,
          transA: false,
          transB: true,
          strideA: 0,
          strideB: 0,
        });
        for (const t of [g3, b3, gp, bp]) t.dispose();
      } else {
        ga = emptyOn(a.shape, a.dtype, g);
        gemm("matmul backward", {
          out: ga,
          a: g,
          b: bs!,
          batch: gemmBatch,
          M: rows,
          N: K,
          K: N,
          transA: false,
          transB: true,
          strideA: strideOut,
          strideB,
        });
      }
    }
    if (b.requiresGrad) {
      // dB = Aᵀ @ g
      gb = emptyOn(b.shape, b.dtype, g);
      gemm("matmul backward", {
        out: gb,
        a: as!,
        b: g,
        batch: gemmBatch,
        M: K,
        N,
        K: rows,
        transA: true,
        transB: false,
        strideA,
        strideB: strideOut,
      });
    }
    return [ga, gb];
  });
  return out;
}

/** y = x·Wᵀ + b. x: (..., in), weight: (out, in), bias: (out). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  checkInputs("linear", bias ? [x, weight, bias] : [x, weight], { sameDType: false });
  requireFloat("linear", x);
  if (weight.rank !== 2)
    throw new ShapeError(`linear: weight must be 2-D (out, in), got ${fmt(weight.shape)}`);
  const [outF, inF] = weight.shape as [number, number];
  const xin = x.shape[x.rank - 1];
  if (x.rank === 0 || xin !== inF) {
    throw new ShapeError(
      `linear: input has ${xin ?? 0} features (shape ${fmt(x.shape)}), weight expects ${inF}`,
    );
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF)) {
    throw new ShapeError(`linear: bias has shape ${fmt(bias.shape)}, expected [${outF}]`);
  }
  const wc = weightFor("linear", weight, x.dtype);
  const bc = bias ? weightFor("linear", bias, x.dtype, "bias") : null;
  const rows = x.size / inF;
  const out = emptyOn([...x.shape.slice(0, -1), outF], x.dtype, x);
  gemm("linear", {
    out,
    a: x,
    b: wc,
    batch: 1,
    M: rows,
    N: outF,
    K: inF,
    transA: false,
    transB: true,
    strideA: 0,
    strideB: 0,
    bias: bc,
  });
  // The weight gradient is written in the weight's own dtype (fp32 master weights).
  record("linear", out, [x, weight, bias ?? null], [x, wc], (g, [xs, ws]) => {
    let gx: Tensor | null = null;
    let gw: Tensor | null = null;
    let gbias: Tensor | null = null;
    if (x.requiresGrad) {
      gx = emptyOn(x.shape, x.dtype, g);
      gemm("linear backward", {
        out: gx,
        a: g,
        b: ws!,
        batch: 1,
        M: rows,
        N: inF,
        K: outF,
        transA: false,
        transB: false,
        strideA: 0,
        strideB: 0,
      });
    }
    if (weight.requiresGrad) {
      gw = emptyOn(weight.shape, weight.dtype, g);
      gemm("linear backward", {
        out: gw,
        a: g,
        b: xs!,
        batch: 1,
        M: outF,
        N: inF,
        K: rows,
        transA: true,
        transB: false,
        strideA: 0,
        strideB: 0,
      });
    }
    if (bias?.requiresGrad) {
      gbias = emptyOn(bias.shape, bias.dtype, g);
      if (rows === 0) launch("linear backward", g, (k) => k.fill(code(gbias!), gbias!.ptr, outF, 0));
      else
        launch("linear backward", g, (k) =>
          k.biasGrad(code(g), code(gbias!), gbias!.ptr, g.ptr, rows, outF, false),
        );
    }
    return [gx, gw, gbias];
  });
  return out;
}
