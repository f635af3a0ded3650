// Attention in explicit form — scores, softmax, dropout, · v — for what the
// fused kernels do not do: dropout on the probabilities (classic BERT
// trains with 0.1) and head sizes the CUDA kernel has no tiling for. Packed
// rows are placed into a (B, S) grid and back; padding is masked out of the
// keys with -10000 as in both references; ALiBi adds -slope_h * |i - j|.
//
// Shapes: N rows, B sequences, S longest sequence, NH heads, HS head size.

import { type DType, type Device, F, type Tensor, fromArray, type nn } from "@mbert/tensor";
import type { EncoderInputs } from "./inputs.js";

/** Head sizes the CUDA attention kernel is built for (see native/cuda/attention.cu). */
export const CUDA_FUSED_HEAD_SIZES = [16, 32, 64, 128];

/** Whether the fused attention kernel can run this head size on this device. */
export function fusedAttentionSupported(device: Device, headSize: number): boolean {
  return device === "cpu" || CUDA_FUSED_HEAD_SIZES.includes(headSize);
}

/** (1, NH, S, S) float32 ALiBi bias: -slope_h * |i - j|. */
function alibiBias(slopes: Float32Array, S: number, device: Device, dtype: DType): Tensor {
  const NH = slopes.length;
  const out = new Float32Array(NH * S * S);
  for (let h = 0; h < NH; h++) {
    for (let i = 0; i < S; i++)
      for (let j = 0; j < S; j++) out[(h * S + i) * S + j] = -slopes[h]! * Math.abs(i - j);
  }
  return fromArray(out, [1, NH, S, S], { dtype: "float32", device }).cast(dtype);
}

/**
 * out: (N, C)  q, k, v: (N, C) in the rows of `x`'s layout.
 * `dropout` applies to the probabilities (its `training` flag decides).
 */
export function explicitAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  x: EncoderInputs,
  opts: { numHeads: number; slopes?: Float32Array | null; dropout?: nn.Dropout | null },
): Tensor {
  const cu = x.cuSeqlensHost;
  const B = cu.length - 1;
  const C = q.shape[1]!;
  const NH = opts.numHeads;
  const HS = C / NH;
  const layout = x.layout;
  const S = layout.kind === "padded" ? layout.seqLen : layout.maxSeqlen;
  // rows: (N) the grid slot of each packed row; mask: (B, S) 0 for tokens, -10000 for padding.
  let rows: Tensor | null = null;
  let mask: Tensor;
  if (layout.kind === "padded") mask = layout.keyMask;
  else {
    const slot = new Int32Array(x.numRows);
    const m = new Float32Array(B * S).fill(-10000);
    for (let b = 0; b < B; b++) {
      for (let t = cu[b]!; t < cu[b + 1]!; t++) {
        slot[t] = b * S + (t - cu[b]!);
        m[slot[t]!] = 0;
      }
    }
    rows = fromArray(slot, [slot.length], { dtype: "int32", device: q.device });
    mask = fromArray(m, [B, S], { dtype: "float32", device: q.device });
  }
  const heads = (t: Tensor, perm: number[]) => {
    const grid = rows ? F.scatterRows(t, rows, B * S) : t;
    return grid.reshape([B, S, NH, HS]).permute(perm);
  };
  const qh = heads(q, [0, 2, 1, 3]); // (B, NH, S, HS)
  const kT = heads(k, [0, 2, 3, 1]); // (B, NH, HS, S)
  const vh = heads(v, [0, 2, 1, 3]); // (B, NH, S, HS)
  let scores = F.add(F.scale(F.matmul(qh, kT), 1 / Math.sqrt(HS)), mask.cast(q.dtype).reshape([B, 1, 1, S])); // (B, NH, S, S)
  if (opts.slopes) scores = F.add(scores, alibiBias(opts.slopes, S, q.device, q.dtype));
  let probs = F.softmax(scores);
  if (opts.dropout) probs = opts.dropout.forward(probs);
  const ctx = F.matmul(probs, vh)
    .permute([0, 2, 1, 3])
    .reshape([B * S, C]); // (B*S, C)
  return rows === null ? ctx : F.indexSelect(ctx, rows); // intermediates go with the caller's tidy()
}
