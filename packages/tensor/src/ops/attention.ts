// Scaled dot-product attention as one fused primitive, in two forms:
//   varlenAttention: packed (T, 3*C) qkv over unpadded sequences (cuSeqlens),
//                    optional ALiBi slopes added inside the kernel (MosaicBERT);
//   paddedAttention: (B, S, C) q, k, v with an additive key mask (classic BERT).
// Both save the fp32 log-sum-exp for backward; no (S, S) tensor is kept.
import { dtypeBytes, statDType } from "../dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import { fromArray } from "../creation.js";
import { fmt } from "../shape.js";
import { type Tensor, record } from "../tensor.js";
import { checkInputs, code, emptyOn, launch, requireFloat } from "./util.js";

/**
 * ALiBi slopes as the MosaicBERT reference computes them: for n a power of
 * two, 2^(-8/n * (i+1)); otherwise the power-of-two rule for the nearest
 * lower power, then every other slope of the next power up.
 */
export function alibiSlopes(numHeads: number): number[] {
  if (!Number.isInteger(numHeads) || numHeads < 1)
    throw new RangeError(`alibiSlopes: numHeads must be >= 1, got ${numHeads}`);
  const pow2 = (n: number) => Array.from({ length: n }, (_, i) => 2 ** ((-8 / n) * (i + 1)));
  const lower = 2 ** Math.floor(Math.log2(numHeads));
  if (lower === numHeads) return pow2(numHeads);
  const extra = pow2(2 * lower).filter((_, i) => i % 2 === 0);
  return [...pow2(lower), ...extra.slice(0, numHeads - lower)];
}

export interface VarlenAttentionOptions {
  /** int32 (B+1) cumulative sequence starts, on the same device as qkv. */
  cuSeqlens: Tensor;
  /**
   * The same B+1 values on the host. They are what gets validated (starts at 0,
   * non-decreasing, ends at T, no sequence over maxSeqlen); without them a cuda
   * cuSeqlens is read back to the host first, which waits for the GPU.
   */
  cuSeqlensHost?: ArrayLike<number>;
  /** Longest sequence in the batch. */
  maxSeqlen: number;
  numHeads: number;
  /** float32 (NH) slopes on the same device, or null for no ALiBi. */
  alibiSlopes?: Tensor | null;
  /** Defaults to 1/sqrt(head size). */
  scale?: number;
}

function checkCuSeqlens(op: string, cu: Tensor): number {
  if (cu.dtype !== "int32" || cu.rank !== 1 || cu.shape[0]! < 1) {
    throw new ShapeError(`${op}: cuSeqlens must be int32 (B+1), got ${cu.dtype} ${fmt(cu.shape)}`);
  }
  return cu.shape[0]! - 1;
}

/**
 * The cuSeqlens values to validate: the caller's host copy when given (checked
 * against the tensor when that is on the CPU, where the comparison is free),
 * else the tensor's own values (a read back from the GPU for cuda).
 */
function hostCuSeqlens(op: string, cu: Tensor, host: ArrayLike<number> | undefined): ArrayLike<number> {
  if (host === undefined) return cu.data() as Int32Array;
  if (host.length !== cu.size) {
    throw new ShapeError(`${op}: cuSeqlensHost has ${host.length} values, cuSeqlens has ${cu.size}`);
  }
  if (cu.device === "cpu") {
    const own = cu.data() as Int32Array;
    for (let i = 0; i < own.length; i++) {
      if (own[i] !== host[i]) {
        throw new ShapeError(`${op}: cuSeqlensHost[${i}] = ${host[i]} but cuSeqlens[${i}] = ${own[i]}`);
      }
    }
  }
  return host;
}

/** Validates cuSeqlens values on the host (cheap: B+1 ints). */
export function validateCuSeqlens(op: string, cu: ArrayLike<number>, T: number, maxSeqlen: number): void {
  if (cu[0] !== 0) throw new ShapeError(`${op}: cuSeqlens[0] must be 0, got ${cu[0]}`);
  let longest = 0;
  for (let i = 1; i < cu.length; i++) {
    const len = cu[i]! - cu[i - 1]!;
    if (len < 0)
      throw new ShapeError(
        `${op}: cuSeqlens must be non-decreasing (cuSeqlens[${i}] = ${cu[i]} < ${cu[i - 1]})`,
      );
    longest = Math.max(longest, len);
  }
  if (cu[cu.length - 1] !== T) {
    throw new ShapeError(`${op}: cuSeqlens ends at ${cu[cu.length - 1]} but there are ${T} tokens`);
  }
  if (longest > maxSeqlen)
    throw new ShapeError(`${op}: a sequence has ${longest} tokens, more than maxSeqlen ${maxSeqlen}`);
}

export function varlenAttention(qkv: Tensor, opts: VarlenAttentionOptions): Tensor {
  const op = "varlenAttention";
  checkInputs(op, [qkv, opts.cuSeqlens], { sameDType: false });
  requireFloat(op, qkv);
  if (qkv.rank !== 2 || qkv.shape[1]! % 3 !== 0)
    throw new ShapeError(`${op}: qkv must be (T, 3*C), got ${fmt(qkv.shape)}`);
  const [T, threeC] = qkv.shape as [number, number];
  const C = threeC / 3;
  const NH = opts.numHeads;
  if (!Number.isInteger(NH) || NH < 1 || C % NH !== 0)
    throw new ShapeError(`${op}: hidden size ${C} is not divisible by ${NH} heads`);
  const HS = C / NH;
  const B = checkCuSeqlens(op, opts.cuSeqlens);
  validateCuSeqlens(op, hostCuSeqlens(op, opts.cuSeqlens, opts.cuSeqlensHost), T, opts.maxSeqlen);
  const slopes = opts.alibiSlopes ?? null;
  if (slopes && (slopes.dtype !== "float32" || slopes.size !== NH || slopes.device !== qkv.device)) {
    throw new DTypeError(`${op}: alibiSlopes must be float32 (${NH}) on ${qkv.device}`);
  }
  const scale = opts.scale ?? 1 / Math.sqrt(HS);
  const out = emptyOn([T, C], qkv.dtype, qkv);
  const lse = emptyOn([NH, T], statDType(qkv.dtype), qkv);
  const cu = opts.cuSeqlens;
  const esz = dtypeBytes(qkv.dtype);
  const q = qkv.ptr;
  if (T > 0) {
    launch(op, qkv, (k) =>
      k.attentionForward(
        code(qkv),
        out.ptr,
        lse.ptr,
        q,
        q + C * esz,
        q + 2 * C * esz,
        threeC,
        cu.ptr,
        B,
        T,
        NH,
        HS,
        opts.maxSeqlen,
        slopes ? slopes.ptr : 0,
        0,
        scale,
      ),
    );
  }
  const saved = slopes ? [qkv, out, lse, cu, slopes] : [qkv, out, lse, cu];
  record(op, out, [qkv], saved, (g, [qs, os, ls, cs, ss]) => {
    const dqkv = emptyOn(qkv.shape, qkv.dtype, g);
    if (T > 0) {
      const b = qs!.ptr;
      const d = dqkv.ptr;
      launch(`${op} backward`, g, (k) =>
        k.attentionBackward(
          code(qkv),
          d,
          d + C * esz,
          d + 2 * C * esz,
          g.ptr,
          os!.ptr,
          ls!.ptr,
          b,
          b + C * esz,
          b + 2 * C * esz,
          threeC,
          cs!.ptr,
          B,
          T,
          NH,
          HS,
          opts.maxSeqlen,
          ss ? ss.ptr : 0,
          0,
          scale,
        ),
      );
    }
    return [dqkv];
  });
  lse.dispose();
  return out;
}

export interface PaddedAttentionOptions {
  /** (B, S) additive float32 mask on keys: 0 to attend, a large negative number for padding. */
  keyMask?: Tensor | null;
  numHeads: number;
  alibiSlopes?: Tensor | null;
  scale?: number;
}

/** Attention over a padded batch: q, k, v (B, S, C) -> (B, S, C). */
export function paddedAttention(q: Tensor, k: Tensor, v: Tensor, opts: PaddedAttentionOptions): Tensor {
  const op = "paddedAttention";
  checkInputs(op, [q, k, v]);
  requireFloat(op, q);
  if (q.rank !== 3 || !q.shape.every((d, i) => d === k.shape[i] && d === v.shape[i])) {
    throw new ShapeError(
      `${op}: q, k, v must share one (B, S, C) shape, got ${fmt(q.shape)}, ${fmt(k.shape)}, ${fmt(v.shape)}`,
    );
  }
  const [B, S, C] = q.shape as [number, number, number];
  const NH = opts.numHeads;
  if (!Number.isInteger(NH) || NH < 1 || C % NH !== 0)
    throw new ShapeError(`${op}: hidden size ${C} is not divisible by ${NH} heads`);
  const HS = C / NH;
  const T = B * S;
  const mask = opts.keyMask ?? null;
  if (mask && (mask.dtype !== "float32" || mask.size !== T || mask.device !== q.device)) {
    throw new DTypeError(
      `${op}: keyMask must be float32 (B, S) = (${B}, ${S}) on ${q.device}, got ${mask.dtype} ${fmt(mask.shape)}`,
    );
  }
  const slopes = opts.alibiSlopes ?? null;
  const scale = opts.scale ?? 1 / Math.sqrt(HS);
  const cu = fromArray(
    Int32Array.from({ length: B + 1 }, (_, i) => i * S),
    [B + 1],
    { device: q.device },
  );
  const out = emptyOn([B, S, C], q.dtype, q);
  const lse = emptyOn([NH, T], statDType(q.dtype), q);
  if (T > 0) {
    launch(op, q, (kk) =>
      kk.attentionForward(
        code(q),
        out.ptr,
        lse.ptr,
        q.ptr,
        k.ptr,
        v.ptr,
        C,
        cu.ptr,
        B,
        T,
        NH,
        HS,
        S,
        slopes ? slopes.ptr : 0,
        mask ? mask.ptr : 0,
        scale,
      ),
    );
  }
  const extra = [mask, slopes].filter((t): t is Tensor => t !== null);
  record(op, out, [q, k, v], [q, k, v, out, lse, cu, ...extra], (g, saved) => {
    const [qs, ks, vs, os, ls, cs] = saved as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
    const ms = mask ? saved[6]! : null;
    const ss = slopes ? saved[mask ? 7 : 6]! : null;
    const dq = emptyOn(q.shape, q.dtype, g);
    const dk = emptyOn(q.shape, q.dtype, g);
    const dv = emptyOn(q.shape, q.dtype, g);
    if (T > 0) {
      launch(`${op} backward`, g, (kk) =>
        kk.attentionBackward(
          code(q),
          dq.ptr,
          dk.ptr,
          dv.ptr,
          g.ptr,
          os.ptr,
          ls.ptr,
          qs.ptr,
          ks.ptr,
          vs.ptr,
          C,
          cs.ptr,
          B,
          T,
          NH,
          HS,
          S,
          ss ? ss.ptr : 0,
          ms ? ms.ptr : 0,
          scale,
        ),
      );
    }
    return [dq, dk, dv];
  });
  cu.dispose();
  lse.dispose();
  return out;
}
