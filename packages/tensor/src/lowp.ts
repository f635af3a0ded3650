// Mixed precision: ops that read a parameter compute in the dtype of their
// activations. A float32 Parameter read by a bf16 op supplies its cached
// bf16 copy (`param.lowp`, rewritten by the optimizer after each step), and
// its gradient is written in float32 directly (fp32 accumulation), so master
// weights and gradients stay float32 while every GEMM runs in bf16.
import type { DType } from "./dtype.js";
import { DTypeError } from "./errors.js";
import { Parameter } from "./nn/module.js";
import { type Tensor, keep, noGrad } from "./tensor.js";

/** The tensor an op should compute with when its activations have `dtype`. */
export function weightFor(op: string, w: Tensor, dtype: DType, what = "weight"): Tensor {
  if (w.dtype === dtype) return w;
  if (w instanceof Parameter && dtype !== "int32") {
    if (!w.lowp || w.lowp.disposed || w.lowp.dtype !== dtype) {
      w.lowp?.dispose();
      w.lowp = keep(noGrad(() => w.castTo(dtype)));
    }
    return w.lowp;
  }
  throw new DTypeError(
    `${op}: input is ${dtype} but ${what} is ${w.dtype}; cast one of them (or make the ${what} a Parameter)`,
  );
}
