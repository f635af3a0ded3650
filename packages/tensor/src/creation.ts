import { backend } from "./backend.js";
import { type DType, type HostArray, dtypeCode, toHost } from "./dtype.js";
import { DTypeError, ShapeError, wrapNative } from "./errors.js";
import { type Generator, defaultGenerator } from "./random.js";
import { type Shape, checkShape, fmt, numel } from "./shape.js";
import { Tensor, type TensorOptions } from "./tensor.js";

export interface RandomOptions extends TensorOptions {
  generator?: Generator;
}

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) {
    if (t.dtype === "int32") throw new DTypeError("requiresGrad: int32 tensors cannot require grad");
    t.requiresGrad = true;
  }
  return t;
}

/** An uninitialized tensor. */
export function empty(shape: Shape, opts: TensorOptions = {}): Tensor {
  return finish(Tensor.empty(shape, opts.dtype ?? "float32", opts.device ?? "cpu"), opts);
}

export function full(shape: Shape, value: number, opts: TensorOptions = {}): Tensor {
  const t = Tensor.empty(checkShape("full", shape), opts.dtype ?? "float32", opts.device ?? "cpu");
  if (t.size > 0) wrapNative("full", () => backend(t.device).fill(dtypeCode(t.dtype), t.ptr, t.size, value));
  t.constant = value;
  return finish(t, opts);
}

export function zeros(shape: Shape, opts: TensorOptions = {}): Tensor {
  return full(shape, 0, opts);
}

export function ones(shape: Shape, opts: TensorOptions = {}): Tensor {
  return full(shape, 1, opts);
}

export function zerosLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return zeros(t.shape, { dtype: t.dtype, device: t.device, ...opts });
}

export function onesLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return ones(t.shape, { dtype: t.dtype, device: t.device, ...opts });
}

export function emptyLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return empty(t.shape, { dtype: t.dtype, device: t.device, ...opts });
}

/** A tensor from flat values (numbers or a typed array) and a shape. */
export function fromArray(
  values: ArrayLike<number> | HostArray,
  shape?: Shape,
  opts: TensorOptions = {},
): Tensor {
  const dtype = opts.dtype ?? inferDType(values);
  const s = checkShape("fromArray", shape ?? [values.length]);
  if (numel(s) !== values.length) {
    throw new ShapeError(
      `fromArray: ${values.length} values cannot fill shape ${fmt(s)} (${numel(s)} elements)`,
    );
  }
  const host = matchesHost(dtype, values) ? (values as HostArray) : toHost(dtype, values);
  const t = Tensor.empty(s, dtype, opts.device ?? "cpu");
  if (t.size > 0) wrapNative("fromArray", () => backend(t.device).upload(t.ptr, 0, host));
  return finish(t, opts);
}

function inferDType(values: ArrayLike<number>): DType {
  if (values instanceof Float64Array) return "float64";
  if (values instanceof Int32Array) return "int32";
  return "float32";
}

function matchesHost(dtype: DType, values: ArrayLike<number>): boolean {
  return (
    (dtype === "float32" && values instanceof Float32Array) ||
    (dtype === "float64" && values instanceof Float64Array) ||
    (dtype === "int32" && values instanceof Int32Array) ||
    (dtype === "bfloat16" && values instanceof Uint16Array)
  );
}

type Nested = number | readonly Nested[];

/** A tensor from nested arrays (`tensor([[1, 2], [3, 4]])`), a number, or a typed array. */
export function tensor(values: Nested | HostArray, opts: TensorOptions = {}): Tensor {
  if (ArrayBuffer.isView(values)) return fromArray(values as HostArray, [(values as HostArray).length], opts);
  const shape: number[] = [];
  let probe: Nested = values;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = (probe as readonly Nested[])[0] ?? 0;
  }
  const flat: number[] = [];
  const walk = (v: Nested, dim: number): void => {
    if (Array.isArray(v)) {
      if (v.length !== shape[dim]) throw new ShapeError(`tensor: ragged nested array at depth ${dim}`);
      for (const x of v as readonly Nested[]) walk(x, dim + 1);
    } else {
      if (dim !== shape.length) throw new ShapeError(`tensor: ragged nested array at depth ${dim}`);
      if (typeof v !== "number") throw new TypeError(`tensor: expected numbers, got ${typeof v}`);
      flat.push(v);
    }
  };
  walk(values as Nested, 0);
  return fromArray(flat, shape, opts);
}

/** arange(end) or arange(start, end, step). */
export function arange(start: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  if (end === undefined) {
    end = start;
    start = 0;
  }
  if (step === 0) throw new RangeError("arange: step must not be 0");
  const n = Math.max(0, Math.ceil((end - start) / step));
  const values = new Array<number>(n);
  for (let i = 0; i < n; i++) values[i] = start + i * step;
  const isInt = Number.isInteger(start) && Number.isInteger(step);
  return fromArray(values, [n], { dtype: isInt ? "int32" : "float32", ...opts });
}

/** Standard normal values (Philox + Box-Muller). */
export function randn(shape: Shape, opts: RandomOptions = {}): Tensor {
  return normalAs("randn", shape, 0, 1, opts);
}

/** Uniform values in [low, high). */
export function rand(shape: Shape, opts: RandomOptions & { low?: number; high?: number } = {}): Tensor {
  const gen = opts.generator ?? defaultGenerator;
  const t = Tensor.empty(checkShape("rand", shape), opts.dtype ?? "float32", opts.device ?? "cpu");
  const offset = gen.take(t.size);
  if (t.size > 0) {
    wrapNative("rand", () =>
      backend(t.device).randUniform(
        dtypeCode(t.dtype),
        t.ptr,
        t.size,
        gen.seed,
        offset,
        opts.low ?? 0,
        opts.high ?? 1,
      ),
    );
  }
  return finish(t, opts);
}

/** Normal values with the given mean and std (used by initializers). */
export function normal(shape: Shape, mean: number, std: number, opts: RandomOptions = {}): Tensor {
  return normalAs("normal", shape, mean, std, opts);
}

function normalAs(op: string, shape: Shape, mean: number, std: number, opts: RandomOptions): Tensor {
  const gen = opts.generator ?? defaultGenerator;
  const t = Tensor.empty(checkShape(op, shape), opts.dtype ?? "float32", opts.device ?? "cpu");
  const offset = gen.take(t.size);
  if (t.size > 0) {
    wrapNative(op, () =>
      backend(t.device).randNormal(dtypeCode(t.dtype), t.ptr, t.size, gen.seed, offset, mean, std),
    );
  }
  return finish(t, opts);
}
