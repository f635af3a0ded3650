// Imports shared by the GPU benchmark entry points.
export { native } from "@mbert/kernels";
export { Generator, profileOps, tidy } from "@mbert/tensor";
