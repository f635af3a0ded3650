import { type BackendKernels, cudaStatus, native } from "@mbert/kernels";
import type { Device } from "./dtype.js";
import { DeviceError } from "./errors.js";

// Set once cuda has been found usable: every kernel launch, allocation and
// free asks for its backend, and cudaStatus() queries the driver each time.
let cudaKernels: BackendKernels | null = null;

/** The kernels of one device. Raw access for optimizers and fused paths. */
export function backend(device: Device): BackendKernels {
  if (device === "cpu") return native.cpu;
  if (device === "cuda") {
    if (cudaKernels) return cudaKernels;
    const status = cudaStatus();
    if (!status.available || !native.cuda) {
      throw new DeviceError(`cuda is unavailable: ${status.reason ?? "unknown reason"}`);
    }
    cudaKernels = native.cuda;
    return cudaKernels;
  }
  throw new DeviceError(`unknown device '${String(device)}'; expected 'cpu' or 'cuda'`);
}

/** True when tensors can live on `cuda`. */
export function cudaAvailable(): boolean {
  return cudaStatus().available;
}

/**
 * A block of device memory shared by the tensors that view it (a tensor
 * and its reshapes, and the copies the autograd tape keeps). Freed when the
 * last reference is released, never by the garbage collector.
 */
export class Storage {
  refs = 1;
  constructor(
    readonly device: Device,
    readonly ptr: number,
    readonly bytes: number,
  ) {
    liveBytes[device] += bytes;
    liveStorages++;
  }

  static allocate(device: Device, bytes: number): Storage {
    const ptr = bytes === 0 ? 0 : backend(device).alloc(bytes);
    return new Storage(device, ptr, bytes);
  }

  retain(): this {
    this.refs++;
    return this;
  }

  release(): void {
    if (this.refs <= 0) return;
    this.refs--;
    if (this.refs === 0) {
      liveBytes[this.device] -= this.bytes;
      liveStorages--;
      if (this.ptr !== 0) backend(this.device).free(this.ptr);
    }
  }
}

const liveBytes: Record<Device, number> = { cpu: 0, cuda: 0 };
let liveStorages = 0;

export function storageStats(): { storages: number; bytes: Record<Device, number> } {
  return { storages: liveStorages, bytes: { ...liveBytes } };
}
