/**
 * Optimizers over @mbert/tensor parameters, updating each parameter's
 * buffers in place through the backend's raw kernels:
 *
 * - `DecoupledAdamW` (Composer): weight decay multiplies the parameter by
 *   1 - (lr / initialLr) * weightDecay, so the decay follows the schedule
 *   but is not scaled by the LR itself.
 * - `AdamW` (torch): the parameter is multiplied by 1 - lr * weightDecay.
 * - `SGD` with optional momentum and (coupled, torch-style) weight decay.
 *
 * Both Adam variants run the fused `adamwList` kernel over every parameter
 * at once (param, grad, m, v), and, when a parameter carries a bf16 copy
 * (`lowp`), rewrite it too. `step({ gradScale })` multiplies every gradient
 * first; `step({ clip })` clips by the global norm whose square
 * `gradSumSquares` left on the device, without reading it on the host.
 */
import {
  BINARY,
  type Parameter,
  type Tensor,
  backend,
  dtypeBytes,
  empty,
  dtypeCode,
  UNARY,
  keep,
  zerosLike,
} from "@mbert/tensor";
import { TrainerConfigError } from "./errors.js";
import type { Optimizer, OptimizerState, ParamGroup, StepOptions } from "./types.js";

export type NamedParams = Iterable<[string, Parameter]>;

/** A group as given by the user: its parameters and any options that differ from the defaults. */
export interface ParamGroupSpec {
  params: NamedParams;
  lr?: number;
  weightDecay?: number;
}

interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

function isGroupSpecs(p: NamedParams | ParamGroupSpec[]): p is ParamGroupSpec[] {
  return (
    Array.isArray(p) && p.length > 0 && !Array.isArray(p[0]) && typeof p[0] === "object" && "params" in p[0]
  );
}

function buildGroups(
  params: NamedParams | ParamGroupSpec[],
  defaults: { lr: number; weightDecay: number },
): ParamGroup[] {
  const specs = isGroupSpecs(params) ? params : [{ params: params as NamedParams }];
  const seen = new Set<Parameter>();
  return specs.map((s, gi) => {
    const list = [...s.params];
    for (const [name, p] of list) {
      if (seen.has(p))
        throw new TrainerConfigError(`optimizer: parameter ${name} appears in more than one group`);
      seen.add(p);
      if (p.dtype !== "float32" && p.dtype !== "float64") {
        throw new TrainerConfigError(
          `optimizer: parameter ${name} is ${p.dtype}; master weights must be float32`,
        );
      }
    }
    if (list.length === 0) throw new TrainerConfigError(`optimizer: group ${gi} has no parameters`);
    const lr = s.lr ?? defaults.lr;
    if (!(lr >= 0)) throw new TrainerConfigError(`optimizer: lr must be >= 0, got ${lr}`);
    return { params: list, lr, initialLr: lr, weightDecay: s.weightDecay ?? defaults.weightDecay };
  });
}

/**
 * Two groups by the modules' rule (`Parameter.decay`: false for biases and
 * LayerNorm): decayed ones get `weightDecay`, the rest 0.
 */
export function decayGroups(params: NamedParams, weightDecay: number): ParamGroupSpec[] {
  const decay: [string, Parameter][] = [];
  const noDecay: [string, Parameter][] = [];
  for (const np of params) (np[1].decay ? decay : noDecay).push(np);
  const groups: ParamGroupSpec[] = [];
  if (decay.length) groups.push({ params: decay, weightDecay });
  if (noDecay.length) groups.push({ params: noDecay, weightDecay: 0 });
  return groups;
}

/** The statistic dtype of a gradient's sum of squares: float64 for float64, else float32. */
function statDtype(g: Tensor): "float32" | "float64" {
  return g.dtype === "float64" ? "float64" : "float32";
}

/**
 * The squared global L2 norm of every gradient as a one-element tensor on the
 * gradients' device, summed in one pass per gradient dtype without reading
 * anything on the host (missing gradients count as zero). Undefined when the
 * gradients live on more than one device (their sum needs the host) or there
 * are none.
 */
export function gradSumSquares(params: Iterable<Parameter>): Tensor | undefined {
  const grads: Tensor[] = [];
  for (const p of params) if (p.grad) grads.push(p.grad);
  if (grads.length === 0) return undefined;
  const device = grads[0]!.device;
  if (grads.some((g) => g.device !== device)) return undefined;
  const stat = statDtype(grads[0]!);
  if (grads.some((g) => statDtype(g) !== stat)) {
    throw new TrainerConfigError("gradNorm: float64 and float32 gradients mixed on one device");
  }
  const byDtype = new Map<string, number[]>();
  for (const g of grads) {
    const list = byDtype.get(g.dtype) ?? [];
    byDtype.set(g.dtype, list);
    list.push(g.ptr, g.size);
  }
  const out = keep(empty([1], { dtype: stat, device })); // the first sum writes it with `=`
  let first = true;
  try {
    for (const [dtype, list] of byDtype) {
      backend(device).sumSquaresList(
        dtypeCode(dtype as Tensor["dtype"]),
        out.ptr,
        new Float64Array(list),
        !first,
      );
      first = false;
    }
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}

/** The global L2 norm of every gradient (missing gradients count as zero); reads it on the host. */
export function gradNorm(params: Iterable<Parameter>): number {
  const byDevice = new Map<string, Parameter[]>();
  for (const p of params) {
    if (!p.grad) continue;
    const list = byDevice.get(p.grad.device) ?? [];
    byDevice.set(p.grad.device, list);
    list.push(p);
  }
  let total = 0;
  for (const list of byDevice.values()) {
    const sq = gradSumSquares(list)!;
    try {
      total += sq.item();
    } finally {
      sq.dispose();
    }
  }
  return Math.sqrt(total);
}

/** maxNorm / (norm + 1e-6) when `norm` is finite and above maxNorm, else 1 (torch's clip_grad_norm_). */
export function clipCoefficient(norm: number, maxNorm: number): number {
  return Number.isFinite(norm) && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
}

/** Clips gradients to `maxNorm` (global L2); returns the scale to apply (1 when under the limit) and the norm. */
export function clipScale(params: Iterable<Parameter>, maxNorm: number): { norm: number; scale: number } {
  const norm = gradNorm(params);
  return { norm, scale: clipCoefficient(norm, maxNorm) };
}

abstract class BaseOptimizer implements Optimizer {
  abstract readonly name: string;
  paramGroups: ParamGroup[];

  constructor(params: NamedParams | ParamGroupSpec[], defaults: { lr: number; weightDecay: number }) {
    this.paramGroups = buildGroups(params, defaults);
  }

  protected *params(): Generator<[string, Parameter, ParamGroup]> {
    for (const g of this.paramGroups) for (const [n, p] of g.params) yield [n, p as Parameter, g];
  }

  zeroGrad(): void {
    for (const [, p] of this.params()) p.zeroGrad();
  }

  abstract step(opts?: StepOptions): void;
  abstract stateDict(): OptimizerState;
  abstract loadStateDict(state: OptimizerState): void;
  abstract dispose(): void;
}

function hostCopy(t: Tensor): Float32Array | Float64Array {
  return t.data() as Float32Array | Float64Array;
}

function upload(t: Tensor, data: Float32Array | Float64Array, name: string): void {
  if (data.length !== t.size) {
    throw new TrainerConfigError(`optimizer state ${name}: ${data.length} values, parameter has ${t.size}`);
  }
  const want = t.dtype === "float64" ? Float64Array : Float32Array;
  const src = data instanceof want ? data : want.from(data);
  backend(t.device).upload(t.ptr, 0, src);
}

/** The shared Adam machinery; subclasses choose the decay factor. */
abstract class AdamBase extends BaseOptimizer {
  readonly betas: [number, number];
  readonly eps: number;
  private readonly moments = new Map<Parameter, { m: Tensor; v: Tensor; step: number }>();

  constructor(params: NamedParams | ParamGroupSpec[], opts: AdamOptions, defaultWd: number) {
    super(params, { lr: opts.lr ?? 1e-3, weightDecay: opts.weightDecay ?? defaultWd });
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    const [b1, b2] = this.betas;
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) {
      throw new TrainerConfigError(`${new.target.name}: betas must be in [0, 1), got [${b1}, ${b2}]`);
    }
  }

  protected abstract decayFactor(group: ParamGroup): number;

  private slot(p: Parameter): { m: Tensor; v: Tensor; step: number } {
    let s = this.moments.get(p);
    if (!s) {
      s = { m: keep(zerosLike(p)), v: keep(zerosLike(p)), step: 0 };
      this.moments.set(p, s);
    }
    return s;
  }

  /**
   * One update of every parameter with a gradient, in one `adamwList` call per
   * (device, dtypes) group: the whole model in one launch on CUDA. With
   * `clip`, gradients are scaled on the device by the clipping coefficient of
   * the squared global norm it holds.
   */
  step(opts: StepOptions = {}): void {
    const gradScale = opts.gradScale ?? 1;
    const clip = opts.clip;
    if (clip && !(clip.maxNorm > 0)) {
      throw new TrainerConfigError(`${this.name}.step: clip.maxNorm must be > 0, got ${clip.maxNorm}`);
    }
    const [b1, b2] = this.betas;
    // One table per device, param, grad and copy dtype; parameters without a copy
    // (address 0) then join a table of their kind that has one.
    type Code = ReturnType<typeof dtypeCode>;
    type Table = {
      device: Tensor["device"];
      base: string;
      dt: Code;
      gdt: Code;
      cdt?: Code;
      rows: number[];
    };
    const byKey = new Map<string, Table>();
    for (const [, p, group] of this.params()) {
      const g = p.grad;
      if (!g) continue; // no gradient this step (unused parameter): no update, like torch
      const copy = p.lowp;
      const cdt = copy ? dtypeCode(copy.dtype) : undefined;
      const base = `${p.device}:${p.dtype}:${g.dtype}`;
      const key = `${base}:${cdt ?? "none"}`;
      let t = byKey.get(key);
      if (!t) {
        t = { device: p.device, base, dt: dtypeCode(p.dtype), gdt: dtypeCode(g.dtype), cdt, rows: [] };
        byKey.set(key, t);
      }
      const s = this.slot(p);
      s.step++;
      t.rows.push(
        p.ptr,
        g.ptr,
        s.m.ptr,
        s.v.ptr,
        copy ? copy.ptr : 0,
        p.size,
        group.lr,
        this.decayFactor(group),
        s.step,
      );
    }
    const tables = [...byKey.values()].filter((t) => t.cdt !== undefined);
    for (const t of byKey.values()) {
      if (t.cdt !== undefined) continue;
      const sibling = tables.find((o) => o.base === t.base);
      if (sibling) sibling.rows.push(...t.rows);
      else tables.push(t);
    }
    for (const t of tables) {
      if (clip && clip.sumSquares.device !== t.device) {
        throw new TrainerConfigError(
          `${this.name}.step: clip.sumSquares is on ${clip.sumSquares.device}, parameters on ${t.device}`,
        );
      }
      backend(t.device).adamwList(
        t.dt,
        t.gdt,
        t.cdt ?? dtypeCode("float32"),
        new Float64Array(t.rows),
        b1,
        b2,
        this.eps,
        gradScale,
        clip ? clip.sumSquares.ptr : 0,
        clip ? clip.maxNorm : 0,
      );
    }
  }

  stateDict(): OptimizerState {
    const tensors: OptimizerState["tensors"] = {};
    const steps: Record<string, number> = {};
    for (const [name, p] of this.params()) {
      const s = this.moments.get(p);
      if (!s) continue;
      tensors[`${name}.exp_avg`] = { shape: [...p.shape], data: hostCopy(s.m) };
      tensors[`${name}.exp_avg_sq`] = { shape: [...p.shape], data: hostCopy(s.v) };
      steps[name] = s.step;
    }
    return {
      name: this.name,
      meta: {
        betas: this.betas,
        eps: this.eps,
        steps,
        groups: this.paramGroups.map((g) => ({
          lr: g.lr,
          initialLr: g.initialLr,
          weightDecay: g.weightDecay,
        })),
      },
      tensors,
    };
  }

  loadStateDict(state: OptimizerState): void {
    if (state.name !== this.name) {
      throw new TrainerConfigError(`optimizer state is for ${state.name}, this optimizer is ${this.name}`);
    }
    const steps = (state.meta.steps ?? {}) as Record<string, number>;
    const groups = (state.meta.groups ?? []) as { lr: number; initialLr: number; weightDecay: number }[];
    groups.forEach((g, i) => {
      const mine = this.paramGroups[i];
      if (mine) {
        mine.lr = g.lr;
        mine.initialLr = g.initialLr;
      }
    });
    for (const [name, p] of this.params()) {
      const m = state.tensors[`${name}.exp_avg`];
      const v = state.tensors[`${name}.exp_avg_sq`];
      if (!m || !v) continue;
      const s = this.slot(p);
      upload(s.m, m.data, `${name}.exp_avg`);
      upload(s.v, v.data, `${name}.exp_avg_sq`);
      s.step = steps[name] ?? 0;
    }
  }

  dispose(): void {
    for (const s of this.moments.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.moments.clear();
  }
}

/** Composer's DecoupledAdamW. Defaults as Composer: lr 1e-3, betas (0.9, 0.95), eps 1e-8, weightDecay 1e-5. */
export class DecoupledAdamW extends AdamBase {
  readonly name = "DecoupledAdamW";
  constructor(params: NamedParams | ParamGroupSpec[], opts: AdamOptions = {}) {
    super(params, { ...opts, betas: opts.betas ?? [0.9, 0.95] }, 1e-5); // an explicit undefined keeps the default
  }
  protected decayFactor(g: ParamGroup): number {
    if (g.weightDecay === 0) return 0;
    const ratio = g.initialLr !== 0 ? g.lr / g.initialLr : 1;
    return ratio * g.weightDecay;
  }
}

/** torch.optim.AdamW. Defaults as torch: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weightDecay 1e-2. */
export class AdamW extends AdamBase {
  readonly name = "AdamW";
  constructor(params: NamedParams | ParamGroupSpec[], opts: AdamOptions = {}) {
    super(params, opts, 1e-2);
  }
  protected decayFactor(g: ParamGroup): number {
    return g.lr * g.weightDecay;
  }
}

/** torch.optim.SGD: g += wd * p; buf = momentum * buf + g (buf = g on the first step); p -= lr * buf. */
export class SGD extends BaseOptimizer {
  readonly name = "SGD";
  readonly momentum: number;
  private readonly buffers = new Map<Parameter, Tensor>();

  constructor(
    params: NamedParams | ParamGroupSpec[],
    opts: { lr: number; momentum?: number; weightDecay?: number },
  ) {
    super(params, { lr: opts.lr, weightDecay: opts.weightDecay ?? 0 });
    this.momentum = opts.momentum ?? 0;
  }

  /** With `clip`, the norm is read on the host (SGD has no fused kernel to apply it in). */
  step(opts: StepOptions = {}): void {
    let gradScale = opts.gradScale ?? 1;
    if (opts.clip) gradScale *= clipCoefficient(Math.sqrt(opts.clip.sumSquares.item()), opts.clip.maxNorm);
    for (const [, p, group] of this.params()) {
      const g = p.grad;
      if (!g) continue;
      const k = backend(p.device);
      const dt = dtypeCode(p.dtype);
      // d = gradScale * g (+ wd * p), in a scratch buffer of the param's dtype
      const d = zerosLike(p);
      k.cast(dt, d.ptr, dtypeCode(g.dtype), g.ptr, p.size);
      if (gradScale !== 1) k.unary(UNARY.affine, dt, d.ptr, d.ptr, p.size, gradScale, 0);
      if (group.weightDecay !== 0) axpy(p, d, group.weightDecay, p);
      let dir = d;
      if (this.momentum !== 0) {
        let buf = this.buffers.get(p);
        if (!buf) {
          buf = keep(zerosLike(p));
          k.copy(buf.ptr, 0, d.ptr, 0, p.size * dtypeBytes(p.dtype));
          this.buffers.set(p, buf);
        } else {
          k.unary(UNARY.affine, dt, buf.ptr, buf.ptr, p.size, this.momentum, 0);
          axpy(d, buf, 1, buf);
        }
        dir = buf;
      }
      axpy(dir, p, -group.lr, p);
      if (p.lowp) k.cast(dtypeCode(p.lowp.dtype), p.lowp.ptr, dt, p.ptr, p.size);
      d.dispose();
    }
  }

  stateDict(): OptimizerState {
    const tensors: OptimizerState["tensors"] = {};
    for (const [name, p] of this.params()) {
      const b = this.buffers.get(p);
      if (b) tensors[`${name}.momentum_buffer`] = { shape: [...p.shape], data: hostCopy(b) };
    }
    return {
      name: this.name,
      meta: {
        momentum: this.momentum,
        groups: this.paramGroups.map((g) => ({ lr: g.lr, initialLr: g.initialLr })),
      },
      tensors,
    };
  }

  loadStateDict(state: OptimizerState): void {
    if (state.name !== this.name) {
      throw new TrainerConfigError(`optimizer state is for ${state.name}, this optimizer is ${this.name}`);
    }
    for (const [name, p] of this.params()) {
      const b = state.tensors[`${name}.momentum_buffer`];
      if (!b) continue;
      let buf = this.buffers.get(p);
      if (!buf) {
        buf = keep(zerosLike(p));
        this.buffers.set(p, buf);
      }
      upload(buf, b.data, `${name}.momentum_buffer`);
    }
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}

/** out = y + a * x (all contiguous, same shape and dtype). */
function axpy(x: Tensor, y: Tensor, a: number, out: Tensor): void {
  const k = backend(x.device);
  const dt = dtypeCode(x.dtype);
  const tmp = zerosLike(x);
  k.unary(UNARY.affine, dt, tmp.ptr, x.ptr, x.size, a, 0);
  k.binary(BINARY.add, dt, out.ptr, y.ptr, tmp.ptr, [x.size], [1], [1]);
  tmp.dispose();
}

/** Builds an optimizer from its recipe name (`decoupled_adamw`, `adamw`, `sgd`). */
export function buildOptimizer(
  name: string,
  params: NamedParams | ParamGroupSpec[],
  args: { lr: number; betas?: [number, number]; eps?: number; weight_decay?: number; momentum?: number },
): Optimizer {
  const adam: AdamOptions = { lr: args.lr, betas: args.betas, eps: args.eps, weightDecay: args.weight_decay };
  switch (name) {
    case "decoupled_adamw":
      return new DecoupledAdamW(params, adam);
    case "adamw":
      return new AdamW(params, adam);
    case "sgd":
      return new SGD(params, { lr: args.lr, momentum: args.momentum, weightDecay: args.weight_decay });
    default:
      throw new TrainerConfigError(`unknown optimizer '${name}'; expected decoupled_adamw, adamw or sgd`);
  }
}
