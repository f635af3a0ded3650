// @mbert/tensor: tensors with reverse-mode autograd on the cpu and cuda backends.
import "./methods.js";
import { type MemoryReport, liveTensorCount } from "./tensor.js";
import { storageStats } from "./backend.js";

export {
  Tensor,
  tidy,
  keep,
  noGrad,
  isGradEnabled,
  setGradEnabled,
  record,
  Node,
  checkInputs,
} from "./tensor.js";
export type { TensorOptions, MemoryReport, BackwardFn } from "./tensor.js";
export {
  empty,
  full,
  zeros,
  ones,
  zerosLike,
  onesLike,
  emptyLike,
  fromArray,
  tensor,
  arange,
  randn,
  rand,
  normal,
} from "./creation.js";
export type { RandomOptions } from "./creation.js";
export { Generator, defaultGenerator, manualSeed } from "./random.js";
export { backend, cudaAvailable, Storage } from "./backend.js";
// Op codes of the raw kernels that backend() gives (for optimizers and fused paths).
export { BINARY, UNARY } from "@mbert/kernels";
export {
  type DType,
  type Device,
  type HostArray,
  DTYPES,
  dtypeBytes,
  dtypeCode,
  floatToBf16,
  bf16ToFloat,
  statDType,
} from "./dtype.js";
export * from "./errors.js";
export { numel, broadcastShapes, type Shape } from "./shape.js";
export * as F from "./functional.js";
export { type OpProfile, profileOps } from "./profile.js";
export * as nn from "./nn/index.js";
export { Module, Parameter, StateDictError, type LoadReport } from "./nn/module.js";

/** Live tensors and bytes per device. A training loop holds these steady from step 2 on. */
export function memory(): MemoryReport {
  const s = storageStats();
  return { tensors: liveTensorCount(), storages: s.storages, bytes: s.bytes };
}
