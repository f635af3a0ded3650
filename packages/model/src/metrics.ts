// Error measures of the parity checks (../shared/fixtures/README.md).

/** ||ours - ref|| / ||ref|| over the whole array (0 when both are zero). */
export function relErr(ours: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (ours.length !== ref.length) {
    throw new RangeError(`relErr: ${ours.length} values against ${ref.length} reference values`);
  }
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = ours[i]! - ref[i]!;
    num += d * d;
    den += ref[i]! * ref[i]!;
  }
  if (den === 0) return num === 0 ? 0 : Number.POSITIVE_INFINITY;
  const r = Math.sqrt(num / den);
  return Number.isNaN(r) ? Number.POSITIVE_INFINITY : r;
}

/** Tolerances per device, from the fixtures README. */
export interface ParityThresholds {
  logits: number;
  hidden: number;
  loss: number;
  grad: number;
  adamw: number;
}

export const PARITY_THRESHOLDS: Record<"cpu" | "cuda", ParityThresholds> = {
  cpu: { logits: 1e-5, hidden: 1e-5, loss: 1e-5, grad: 1e-4, adamw: 1e-4 },
  cuda: { logits: 2e-2, hidden: 2e-2, loss: 2e-2, grad: 5e-2, adamw: 5e-2 },
};
