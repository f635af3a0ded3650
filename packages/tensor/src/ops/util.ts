import type { BackendKernels, DTypeCode } from "@mbert/kernels";
import { backend } from "../backend.js";
import { type DType, dtypeCode } from "../dtype.js";
import { DTypeError, wrapNative } from "../errors.js";
import { profiled } from "../profile.js";
import type { Shape } from "../shape.js";
import { Tensor, checkInputs } from "../tensor.js";

/** Runs a kernel of `t`'s device, converting native errors to TensorErrors naming `op`. */
export function launch(op: string, t: Tensor, fn: (k: BackendKernels) => void): void {
  const k = backend(t.device);
  wrapNative(op, () => profiled(op, t.device, () => fn(k)));
}

export function code(t: Tensor | DType): DTypeCode {
  return dtypeCode(typeof t === "string" ? t : t.dtype);
}

export function emptyOn(shape: Shape, dtype: DType, like: Tensor): Tensor {
  return Tensor.empty(shape, dtype, like.device);
}

export function requireFloat(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (t.dtype === "int32") throw new DTypeError(`${op}: expected a floating-point tensor, got int32`);
  }
}

export { checkInputs };
