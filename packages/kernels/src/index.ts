/**
 * @mbert/kernels — loads the native addon (`build/mbert.node`) and exposes its
 * CPU and CUDA backends, typed by the contract in `./types.ts`.
 */
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BackendKernels, BackendStatus, CudaExtras, NativeAddon } from "./types.js";

export * from "./types.js";

/** The addon could not be loaded (not built, or built for another Node ABI). */
export class AddonLoadError extends Error {
  readonly code = "ADDON_LOAD_ERROR";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AddonLoadError";
  }
}

/** A kernel rejected its arguments or failed (message names the kernel). */
export class KernelError extends Error {
  readonly code: string;
  constructor(message: string, code = "KERNEL_ERROR", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "KernelError";
    this.code = code;
  }
}

/** An allocation failed on the backend (`alloc`, or a kernel's scratch space). */
export class OutOfMemory extends KernelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "OUT_OF_MEMORY", options);
    this.name = "OutOfMemory";
  }
}

/**
 * Turns an error thrown by the addon into `OutOfMemory` or `KernelError` (by
 * its `code`); anything else is returned unchanged.
 */
export function toKernelError(err: unknown): unknown {
  if (err instanceof KernelError || !(err instanceof Error)) return err;
  const code = (err as Error & { code?: unknown }).code;
  if (code === "OUT_OF_MEMORY") return new OutOfMemory(err.message, { cause: err });
  if (typeof code === "string") return new KernelError(err.message, code, { cause: err });
  return err;
}

function addonCandidates(): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const list = [path.resolve(here, "../build/mbert.node"), path.resolve(here, "../../build/mbert.node")];
  const override = process.env.MBERT_ADDON;
  return override ? [path.resolve(override), ...list] : list;
}

function loadAddon(): NativeAddon {
  const candidates = addonCandidates();
  const file = candidates.find((f) => fs.existsSync(f));
  if (!file) {
    throw new AddonLoadError(
      "@mbert/kernels: the native addon is not built (looked for " +
        candidates.join(", ") +
        "). Run `pnpm install` at the repository root, or `pnpm run build:native` to rebuild it.",
    );
  }
  const require = createRequire(import.meta.url);
  try {
    return require(file) as NativeAddon;
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new AddonLoadError(
      `@mbert/kernels: failed to load ${file}: ${why}. Rebuild it for this Node version with \`pnpm run build:native\`.`,
      { cause },
    );
  }
}

/** The raw addon, typed by the contract. */
export const native: NativeAddon = loadAddon();

/** The CPU backend (always present). */
export const cpu: NativeAddon["cpu"] = native.cpu;

/** The CUDA backend when the addon was built with nvcc; check `cudaStatus().available` before use. */
export const cuda: (BackendKernels & CudaExtras) | undefined = native.cuda;

/** Whether the CUDA backend is usable, and why not. Never throws. */
export function cudaStatus(): BackendStatus {
  try {
    const s = native.cudaStatus();
    if (s && typeof s.available === "boolean") return s;
    return { available: false, reason: "cudaStatus returned an unexpected value" };
  } catch (err) {
    return { available: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

/** How the addon was built (CUDA or not, compiler, flags). */
export function buildInfo(): { cuda: boolean; compiler: string; flags: string } {
  return native.buildInfo();
}
