/** Typed errors of @mbert/tensor. Each names the op and says what was expected. */
export class TensorError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = code;
    this.code = code;
  }
}

/** Shapes that cannot work together: `linear: input has 767 features, weight expects 768`. */
export class ShapeError extends TensorError {
  constructor(message: string) {
    super("ShapeError", message);
  }
}

export class DTypeError extends TensorError {
  constructor(message: string) {
    super("DTypeError", message);
  }
}

export class DeviceError extends TensorError {
  constructor(message: string) {
    super("DeviceError", message);
  }
}

export class DisposedTensorError extends TensorError {
  constructor(op: string) {
    super(
      "DisposedTensorError",
      `${op}: the tensor was disposed; keep() it or return it from tidy() to use it later`,
    );
  }
}

export class AutogradError extends TensorError {
  constructor(message: string) {
    super("AutogradError", message);
  }
}

export class IndexError extends TensorError {
  constructor(message: string) {
    super("IndexError", message);
  }
}

/** A device allocation failed; a smaller microbatch usually fits. The process survives it. */
export class OutOfMemoryError extends TensorError {
  constructor(message: string) {
    super("OutOfMemory", message);
  }
}

/** Runs `fn` and turns a native error into a TensorError naming the op. */
export function wrapNative<T>(op: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TensorError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    const code = (e as { code?: unknown } | null)?.code;
    if (code === "OUT_OF_MEMORY" || /^OutOfMemory/.test(msg)) throw new OutOfMemoryError(`${op}: ${msg}`);
    if (/index|label/i.test(msg) && /outside|range/i.test(msg)) throw new IndexError(`${op}: ${msg}`);
    throw new TensorError("KernelError", `${op}: ${msg}`);
  }
}
