// Module: named parameters, buffers and submodules; dotted state dicts.
import { backend } from "../backend.js";
import { type DType, type Device, dtypeBytes } from "../dtype.js";
import { TensorError, wrapNative } from "../errors.js";
import type { Generator as RandomGenerator } from "../random.js";
import { fmt, sameShape } from "../shape.js";
import { Tensor, keep, noGrad } from "../tensor.js";

/**
 * A trainable leaf tensor (float32 master weights by default). On `cuda` in
 * bf16 autocast it carries `lowp`, a bf16 copy the optimizer rewrites after
 * each step.
 */
export class Parameter extends Tensor {
  lowp: Tensor | null = null;
  /** Excluded from weight decay when false (set by modules: biases, LayerNorm). */
  decay = true;

  constructor(data: Tensor) {
    super(data.storage.retain(), data.shape, data.dtype, true);
    keep(this);
  }

  override dispose(): void {
    this.lowp?.dispose();
    this.lowp = null;
    super.dispose();
  }
}

export interface LoadReport {
  missing: string[];
  unexpected: string[];
  mismatched: { key: string; expected: number[]; got: number[] }[];
}

export class StateDictError extends TensorError {
  constructor(
    readonly report: LoadReport,
    what = "loadStateDict",
  ) {
    const parts: string[] = [];
    if (report.missing.length) parts.push(`missing keys: ${report.missing.join(", ")}`);
    if (report.unexpected.length) parts.push(`unexpected keys: ${report.unexpected.join(", ")}`);
    if (report.mismatched.length) {
      parts.push(
        `shape mismatches: ${report.mismatched.map((m) => `${m.key} expects ${fmt(m.expected)}, got ${fmt(m.got)}`).join("; ")}`,
      );
    }
    super("StateDictError", `${what}: ${parts.join("; ")}`);
  }
}

/** Copies `src` into `dst` (same shape), casting and moving devices as needed. */
export function copyInto(dst: Tensor, src: Tensor): void {
  if (dst instanceof Parameter) {
    // The low-precision copy is stale now; the next bf16 op re-creates it.
    dst.lowp?.dispose();
    dst.lowp = null;
  }
  noGrad(() => {
    let s = src;
    if (s.device !== dst.device) s = s.to(dst.device);
    if (s.dtype !== dst.dtype) {
      const c = s.castTo(dst.dtype);
      if (s !== src) s.dispose();
      s = c;
    }
    if (dst.size > 0) {
      const bytes = dst.size * dtypeBytes(dst.dtype);
      wrapNative("copyInto", () => backend(dst.device).copy(dst.ptr, 0, s.ptr, 0, bytes));
    }
    dst.constant = null;
    if (s !== src) s.dispose();
  });
}

export class Module {
  training = true;
  private readonly params = new Map<string, Parameter | null>();
  private readonly buffers = new Map<string, Tensor | null>();
  private readonly children = new Map<string, Module>();

  registerParameter(name: string, p: Parameter | Tensor | null): Parameter | null {
    const param = p === null ? null : p instanceof Parameter ? p : toParameter(p);
    this.params.set(name, param);
    return param;
  }

  registerBuffer<T extends Tensor | null>(name: string, t: T): T {
    if (t) keep(t);
    this.buffers.set(name, t);
    return t;
  }

  registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Replaces a registered parameter's tensor (e.g. when loading or moving devices). */
  protected setParameter(name: string, p: Parameter): void {
    if (!this.params.has(name))
      throw new TensorError("UnknownParameter", `setParameter: no parameter named ${name}`);
    this.params.get(name)?.dispose();
    this.params.set(name, p);
  }

  *namedChildren(): Generator<[string, Module]> {
    yield* this.children.entries();
  }

  *namedModules(prefix = ""): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [n, m] of this.children) yield* m.namedModules(prefix ? `${prefix}.${n}` : n);
  }

  /** Dotted names, depth first in registration order; a shared parameter appears once. */
  *namedParameters(prefix = "", seen = new Set<Parameter>()): Generator<[string, Parameter]> {
    for (const [n, p] of this.params) {
      if (p && !seen.has(p)) {
        seen.add(p);
        yield [prefix ? `${prefix}.${n}` : n, p];
      }
    }
    for (const [n, m] of this.children) yield* m.namedParameters(prefix ? `${prefix}.${n}` : n, seen);
  }

  parameters(): Parameter[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  *namedBuffers(prefix = ""): Generator<[string, Tensor]> {
    for (const [n, b] of this.buffers) if (b) yield [prefix ? `${prefix}.${n}` : n, b];
    for (const [n, m] of this.children) yield* m.namedBuffers(prefix ? `${prefix}.${n}` : n);
  }

  /** Parameters and buffers by dotted name (tensors are the module's own; do not dispose them). */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [n, p] of this.namedParameters()) out.set(n, p);
    for (const [n, b] of this.namedBuffers()) out.set(n, b);
    return out;
  }

  /**
   * Copies values key by key. With `strict` (default) any missing, unexpected
   * or mis-shaped key throws a StateDictError naming them all; otherwise the
   * report is returned and matching keys are loaded.
   */
  loadStateDict(
    sd: Map<string, Tensor> | Record<string, Tensor>,
    opts: { strict?: boolean } = {},
  ): LoadReport {
    const strict = opts.strict ?? true;
    const entries = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const report: LoadReport = { missing: [], unexpected: [], mismatched: [] };
    for (const k of own.keys()) if (!entries.has(k)) report.missing.push(k);
    for (const [k, v] of entries) {
      const t = own.get(k);
      if (!t) report.unexpected.push(k);
      else if (!sameShape(t.shape, v.shape))
        report.mismatched.push({ key: k, expected: [...t.shape], got: [...v.shape] });
    }
    if (strict && (report.missing.length || report.unexpected.length || report.mismatched.length)) {
      throw new StateDictError(report);
    }
    for (const [k, v] of entries) {
      const t = own.get(k);
      if (t && sameShape(t.shape, v.shape)) copyInto(t, v);
    }
    return report;
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /** Moves (or casts) every parameter and buffer in place. */
  to(device: Device, dtype?: DType): this {
    for (const [, m] of this.namedModules()) m.moveOwn(device, dtype);
    return this;
  }

  private moveOwn(device: Device, dtype?: DType): void {
    // In place: the Parameter objects keep their identity (fields and optimizers hold them).
    for (const p of this.params.values()) {
      if (!p || (p.device === device && (!dtype || p.dtype === dtype))) continue;
      const moved = noGrad(() => {
        const d = p.to(device);
        const c = dtype && d.dtype !== dtype ? d.castTo(dtype) : d;
        if (c !== d && d !== p) d.dispose();
        return c;
      });
      p.lowp?.dispose();
      p.lowp = null;
      p.zeroGrad();
      p.adopt(moved);
    }
    for (const b of this.buffers.values()) {
      if (!b || b.device === device) continue;
      b.adopt(noGrad(() => b.to(device)));
    }
  }

  /** Re-initializes parameters; modules override this (initialization is separate from construction). */
  resetParameters(_generator?: RandomGenerator): void {
    for (const [, m] of this.children) m.resetParameters(_generator);
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const p of m.params.values()) p?.dispose();
      for (const b of m.buffers.values()) b?.dispose();
    }
  }

  /** Parameter count (shared parameters once). */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }
}

function toParameter(t: Tensor): Parameter {
  const p = new Parameter(t);
  t.dispose();
  return p;
}

/** Fills `p` in place from a generator-backed initializer tensor. */
export function assignInPlace(p: Tensor, value: Tensor): void {
  copyInto(p, value);
  value.dispose();
}

/** An indexed list of submodules, registered as "0", "1", ... (HF `encoder.layer.0`). */
export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.push(m);
  }

  push(m: M): this {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    const m = this.items[i < 0 ? i + this.items.length : i];
    if (!m) throw new RangeError(`ModuleList: index ${i} out of range for ${this.items.length} modules`);
    return m;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
