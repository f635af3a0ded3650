import { BINARY } from "@mbert/kernels";
import { Storage, backend } from "./backend.js";
import {
  type DType,
  type Device,
  type HostArray,
  dtypeBytes,
  dtypeCode,
  fromHost,
  hostArray,
  isFloat,
} from "./dtype.js";
import { AutogradError, DTypeError, DisposedTensorError, ShapeError, wrapNative } from "./errors.js";
import type { Operand } from "./ops/elementwise.js";
import type { Axes } from "./ops/reduce.js";
import { type Shape, checkShape, contiguousStrides, fmt, numel, sameShape } from "./shape.js";

// ---------------------------------------------------------------------------
// Scopes: tidy() frees what fn made and did not return.

const scopes: Set<Tensor>[] = [];
let liveTensors = 0;

function track(t: Tensor): void {
  liveTensors++;
  const scope = scopes[scopes.length - 1];
  if (scope) scope.add(t);
}

function collectTensors(value: unknown, into: Set<Tensor>, depth = 0): void {
  if (depth > 4 || value === null || typeof value !== "object") return;
  if (value instanceof Tensor) {
    into.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectTensors(v, into, depth + 1);
    return;
  }
  if (value instanceof Map) {
    for (const v of value.values()) collectTensors(v, into, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, into, depth + 1);
  }
}

/**
 * Runs `fn` and disposes every tensor it created, except those reachable from
 * its return value (tensors, arrays, plain objects, maps) and those `keep()`ed.
 * `fn` must be synchronous.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  if (result instanceof Promise) {
    throw new TypeError("tidy: fn returned a Promise; tidy only tracks synchronous work");
  }
  const returned = new Set<Tensor>();
  collectTensors(result, returned);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (returned.has(t)) parent?.add(t);
    else if (!t.kept) t.dispose();
  }
  return result;
}

/** Exempts `t` from every enclosing tidy(). */
export function keep<T extends Tensor>(t: T): T {
  t.kept = true;
  for (const s of scopes) s.delete(t);
  return t;
}

// ---------------------------------------------------------------------------
// Grad mode.

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording operations for autograd. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Sets grad mode, returning the previous one (for async code that cannot use noGrad). */
export function setGradEnabled(on: boolean): boolean {
  const prev = gradEnabled;
  gradEnabled = on;
  return prev;
}

// ---------------------------------------------------------------------------
// Tape.

/** Returns the input gradients (null where none flows) for the output gradient `g`. */
export type BackwardFn = (g: Tensor) => (Tensor | null)[];

/**
 * One recorded op: its inputs, what it saved, and its gradient. A node is
 * referenced by its output tensor and by the nodes of the ops that consumed
 * that output; when the last reference goes (the output disposed without a
 * backward, and no later op holds it), its saved tensors are released and
 * its inputs' nodes lose a reference in turn.
 */
export class Node {
  refs = 1;
  constructor(
    readonly op: string,
    readonly inputs: (Tensor | null)[],
    readonly backward: BackwardFn,
    readonly saved: Tensor[],
  ) {
    for (const i of inputs) if (i?.node) i.node.refs++;
  }

  release(): void {
    for (const t of this.saved) t.dispose();
    this.saved.length = 0;
  }

  unref(): void {
    if (--this.refs > 0) return;
    this.release();
    for (const i of this.inputs) i?.node?.unref();
  }
}

/**
 * Records `out = op(inputs)` on the tape when grad mode is on and an input
 * requires grad. `save` lists tensors backward reads; the tape keeps its own
 * references to them (released after backward), so callers may dispose theirs.
 * Returns a function that hands the saved tensors back in order.
 */
export function record(
  op: string,
  out: Tensor,
  inputs: (Tensor | null)[],
  save: Tensor[],
  backwardFn: (g: Tensor, saved: Tensor[]) => (Tensor | null)[],
): void {
  if (!gradEnabled || !inputs.some((t) => t?.requiresGrad)) return;
  const saved = save.map((t) => t.alias());
  out.requiresGrad = true;
  out.node = new Node(op, inputs, (g) => backwardFn(g, saved), saved);
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length) {
    const [t, expanded] = stack.pop()!;
    if (expanded) {
      order.push(t);
      continue;
    }
    if (visited.has(t)) continue;
    visited.add(t);
    stack.push([t, true]);
    if (t.node) for (const i of t.node.inputs) if (i?.requiresGrad && !visited.has(i)) stack.push([i, false]);
  }
  return order.reverse();
}

function accumulateInto(target: Tensor, g: Tensor): void {
  const k = backend(target.device);
  wrapNative("backward", () =>
    k.binary(BINARY.add, dtypeCode(target.dtype), target.ptr, target.ptr, g.ptr, [target.size], [1], [1]),
  );
  // Written in place: a value it was known to hold everywhere no longer holds.
  target.constant = null;
}

/** Adds `g` to a leaf's `.grad` (kept across tidy scopes), taking ownership of `g`. */
function accumulateGrad(leaf: Tensor, g: Tensor): void {
  const c = conform(leaf, g);
  if (leaf.grad && !leaf.grad.disposed) {
    accumulateInto(leaf.grad, c);
    c.dispose();
  } else {
    leaf.grad = keep(c);
  }
}

/** Converts a gradient to the dtype/shape of the tensor it belongs to. */
function conform(t: Tensor, g: Tensor): Tensor {
  if (!sameShape(t.shape, g.shape)) {
    throw new AutogradError(
      `backward: gradient of shape ${fmt(g.shape)} for a tensor of shape ${fmt(t.shape)}`,
    );
  }
  if (g.dtype === t.dtype) return g;
  const c = g.castTo(t.dtype);
  g.dispose();
  return c;
}

function runBackward(root: Tensor, seed: Tensor): void {
  const order = topoOrder(root);
  const grads = new Map<Tensor, Tensor>([[root, seed]]);
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    for (const t of order) {
      const g = grads.get(t);
      grads.delete(t);
      const node = t.node;
      if (!g) {
        if (node) {
          node.release();
          t.node = null;
        }
        continue;
      }
      if (!node) {
        accumulateGrad(t, g);
        continue;
      }
      const inputGrads = node.backward(g);
      // The engine owns every returned gradient; a tensor returned twice is copied.
      const used = new Set<Tensor>();
      const results = node.inputs.map((input, i) => {
        let gi = inputGrads[i] ?? null;
        if (!gi || !input?.requiresGrad) return null;
        if (used.has(gi)) gi = gi.clone();
        used.add(gi);
        return gi;
      });
      for (const gi of new Set(inputGrads)) if (gi && gi !== g && !used.has(gi)) gi.dispose();
      if (!used.has(g)) g.dispose();
      node.inputs.forEach((input, i) => {
        const gi = results[i];
        if (!input || !gi) return;
        const c = conform(input, gi);
        const existing = grads.get(input);
        if (existing) {
          accumulateInto(existing, c);
          c.dispose();
        } else grads.set(input, c);
      });
      node.release();
      t.node = null;
    }
  } finally {
    gradEnabled = prev;
    for (const g of grads.values()) g.dispose();
  }
}

// ---------------------------------------------------------------------------
// Tensor.

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

/** A contiguous, row-major n-dimensional array on one device. */
export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: Device;
  readonly size: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  /** The op that produced this tensor, while the tape holds it. */
  node: Node | null = null;
  /** Exempt from tidy(). */
  kept = false;
  /**
   * A host-known value when every element is the same constant (lets fused
   * backward paths skip a read). Whatever writes a tensor in place resets it.
   */
  constant: number | null = null;
  private storage_: Storage | null;

  constructor(storage: Storage, shape: Shape, dtype: DType, requiresGrad = false) {
    this.storage_ = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.device = storage.device;
    this.size = numel(shape);
    this.requiresGrad = requiresGrad;
    track(this);
  }

  /** An uninitialized tensor. */
  static empty(shape: Shape, dtype: DType = "float32", device: Device = "cpu"): Tensor {
    const s = checkShape("empty", shape);
    const bytes = numel(s) * dtypeBytes(dtype);
    const storage = wrapNative("alloc", () => Storage.allocate(device, bytes));
    return new Tensor(storage, s, dtype);
  }

  get disposed(): boolean {
    return this.storage_ === null;
  }

  get storage(): Storage {
    if (!this.storage_) throw new DisposedTensorError("tensor");
    return this.storage_;
  }

  /** The raw address of the data (for kernels). Throws if disposed. */
  get ptr(): number {
    return this.storage.ptr;
  }

  get rank(): number {
    return this.shape.length;
  }

  get strides(): number[] {
    return contiguousStrides(this.shape);
  }

  get isLeaf(): boolean {
    return this.node === null;
  }

  /** Frees this tensor's reference to its storage. Idempotent. */
  dispose(): void {
    if (!this.storage_) return;
    this.storage_.release();
    this.storage_ = null;
    liveTensors--;
    // Drop this tensor's hold on its node. The node stays reachable through
    // the ops that consumed this tensor (backward still flows through it); with
    // no such op left, the graph behind it is released.
    this.node?.unref();
    for (const s of scopes) s.delete(this);
    if (this.grad && this.isLeaf) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /**
   * Takes over `src`'s storage, dtype and device in place (keeping this
   * object's identity, which modules and optimizers hold), and disposes `src`.
   */
  adopt(src: Tensor): void {
    if (!sameShape(src.shape, this.shape)) {
      throw new ShapeError(`adopt: shape ${fmt(src.shape)} differs from ${fmt(this.shape)}`);
    }
    const st = src.storage.retain();
    this.storage_?.release();
    this.storage_ = st;
    (this as { dtype: DType }).dtype = src.dtype;
    (this as { device: Device }).device = src.device;
    this.constant = null;
    src.dispose();
  }

  /** A new tensor object sharing this one's storage (used by the tape and by reshape). */
  alias(shape: Shape = this.shape): Tensor {
    const t = new Tensor(this.storage.retain(), shape, this.dtype);
    t.constant = this.constant;
    return t;
  }

  /** Copies the data to the host as a typed array (bf16 as raw Uint16 bits). Waits for the device. */
  data(): HostArray {
    const out = hostArray(this.dtype, this.size);
    if (this.size > 0) {
      const ptr = this.ptr;
      wrapNative("data", () => backend(this.device).download(ptr, 0, out));
    }
    return out;
  }

  /** The values as plain numbers (flat). */
  dataNumbers(): number[] {
    return fromHost(this.dtype, this.data());
  }

  /** The values as nested arrays following the shape (a number for rank 0). */
  toArray(): unknown {
    const flat = this.dataNumbers();
    if (this.rank === 0) return flat[0];
    const strides = this.strides;
    const build = (dim: number, offset: number): unknown[] => {
      const n = this.shape[dim]!;
      const stride = strides[dim]!;
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) {
        out.push(dim === this.rank - 1 ? flat[offset + i] : build(dim + 1, offset + i * stride));
      }
      return out;
    };
    return build(0, 0);
  }

  /** The single value of a one-element tensor. Waits for the device. */
  item(): number {
    if (this.size !== 1)
      throw new ShapeError(`item: tensor of shape ${fmt(this.shape)} has ${this.size} elements, expected 1`);
    return this.dataNumbers()[0]!;
  }

  /** Same values, no history, no grad. Shares storage. */
  detach(): Tensor {
    return this.alias();
  }

  /** A copy with its own storage (recorded: the gradient passes through). */
  clone(): Tensor {
    const out = Tensor.empty(this.shape, this.dtype, this.device);
    if (this.size > 0) {
      const bytes = this.size * dtypeBytes(this.dtype);
      wrapNative("clone", () => backend(this.device).copy(out.ptr, 0, this.ptr, 0, bytes));
    }
    out.constant = this.constant;
    record("clone", out, [this], [], (g) => [g]);
    return out;
  }

  /** Casts without recording (used by the engine; use `cast` for the differentiable op). */
  castTo(dtype: DType): Tensor {
    if (dtype === this.dtype) return this.clone();
    const out = Tensor.empty(this.shape, dtype, this.device);
    if (this.size > 0) {
      wrapNative("cast", () =>
        backend(this.device).cast(dtypeCode(dtype), out.ptr, dtypeCode(this.dtype), this.ptr, this.size),
      );
    }
    out.constant = this.constant;
    return out;
  }

  /** Runs reverse-mode autograd from this tensor. `grad` defaults to 1 for a scalar. */
  backward(grad?: Tensor): void {
    if (!this.requiresGrad) {
      throw new AutogradError(
        "backward: this tensor does not require grad (no input of the ops that made it requires grad, or it was made under noGrad)",
      );
    }
    if (!isFloat(this.dtype)) throw new DTypeError(`backward: ${this.dtype} tensors have no gradient`);
    let seed: Tensor;
    if (grad) {
      if (!sameShape(grad.shape, this.shape)) {
        throw new ShapeError(`backward: grad has shape ${fmt(grad.shape)}, tensor has ${fmt(this.shape)}`);
      }
      seed = noGrad(() => grad.clone());
    } else {
      if (this.size !== 1) {
        throw new AutogradError(
          `backward: grad can be implicit only for a one-element tensor; this one has shape ${fmt(this.shape)}`,
        );
      }
      seed = Tensor.empty(this.shape, this.dtype, this.device);
      wrapNative("backward", () => backend(this.device).fill(dtypeCode(this.dtype), seed.ptr, 1, 1));
      seed.constant = 1;
    }
    if (!this.node) {
      // Backward on a leaf: its gradient is the seed.
      accumulateGrad(this, seed);
      return;
    }
    runBackward(this, seed);
  }

  // Op methods, attached in methods.ts (see ops/*.ts for each op and its gradient).
  declare add: (b: Operand) => Tensor;
  declare sub: (b: Operand) => Tensor;
  declare mul: (b: Operand) => Tensor;
  declare div: (b: Operand) => Tensor;
  declare pow: (b: Operand) => Tensor;
  declare maximum: (b: Operand) => Tensor;
  declare minimum: (b: Operand) => Tensor;
  declare eq: (b: Operand) => Tensor;
  declare gt: (b: Operand) => Tensor;
  declare lt: (b: Operand) => Tensor;
  declare ge: (b: Operand) => Tensor;
  declare le: (b: Operand) => Tensor;
  declare neg: () => Tensor;
  declare exp: () => Tensor;
  declare log: () => Tensor;
  declare tanh: () => Tensor;
  declare gelu: () => Tensor;
  declare sqrt: () => Tensor;
  declare rsqrt: () => Tensor;
  declare abs: () => Tensor;
  declare relu: () => Tensor;
  declare sigmoid: () => Tensor;
  declare square: () => Tensor;
  declare sum: (axes?: Axes, keepDim?: boolean) => Tensor;
  declare mean: (axes?: Axes, keepDim?: boolean) => Tensor;
  declare max: (axes?: Axes, keepDim?: boolean) => Tensor;
  declare min: (axes?: Axes, keepDim?: boolean) => Tensor;
  declare argmax: (axis?: number, keepDim?: boolean) => Tensor;
  declare matmul: (b: Tensor) => Tensor;
  declare reshape: (shape: readonly number[]) => Tensor;
  declare view: (shape: readonly number[]) => Tensor;
  declare flatten: (startAxis?: number, endAxis?: number) => Tensor;
  declare unsqueeze: (axis: number) => Tensor;
  declare squeeze: (axis?: number) => Tensor;
  declare transpose: (a?: number, b?: number) => Tensor;
  declare permute: (perm: readonly number[]) => Tensor;
  declare slice: (axis: number, start: number, end?: number) => Tensor;
  declare narrow: (axis: number, start: number, length: number) => Tensor;
  declare expand: (shape: readonly number[]) => Tensor;
  declare contiguous: () => Tensor;
  declare indexSelect: (idx: Tensor) => Tensor;
  declare softmax: () => Tensor;
  declare logSoftmax: () => Tensor;
  declare cast: (dtype: DType) => Tensor;
  declare to: (device: Device) => Tensor;

  /** Drops the gradient. */
  zeroGrad(): void {
    this.grad?.dispose();
    this.grad = null;
  }

  toString(): string {
    return `Tensor(${fmt(this.shape)}, ${this.dtype}, ${this.device}${this.requiresGrad ? ", requiresGrad" : ""})`;
  }
}

/** Throws unless every tensor is alive, on `device`, and (when given) of `dtype`. */
export function checkInputs(op: string, tensors: Tensor[], opts: { sameDType?: boolean } = {}): void {
  const first = tensors[0];
  for (const t of tensors) {
    if (t.disposed) throw new DisposedTensorError(op);
    if (first && t.device !== first.device) {
      throw new ShapeError(
        `${op}: tensors are on different devices (${first.device} and ${t.device}); move them with .to()`,
      );
    }
    if (opts.sameDType !== false && first && t.dtype !== first.dtype) {
      throw new DTypeError(`${op}: dtypes differ (${first.dtype} and ${t.dtype}); cast one with .cast()`);
    }
  }
}

export interface MemoryReport {
  /** Tensor objects not yet disposed (including the tape's own references). */
  tensors: number;
  /** Storages (blocks of device memory) still referenced. */
  storages: number;
  /** Bytes held by live storages per device. */
  bytes: Record<Device, number>;
}

export function liveTensorCount(): number {
  return liveTensors;
}
