// Built-in layers. Construction allocates; resetParameters() initializes
// (normal(0, 0.02) weights, zero biases, LayerNorm 1/0 — as BERT).
import { full, normal, type RandomOptions } from "../creation.js";
import type { DType, Device } from "../dtype.js";
import { linear } from "../ops/matmul.js";
import { type LayerNormOptions, dropout, layerNorm } from "../ops/nn.js";
import { embedding } from "../ops/rows.js";
import { type Generator, defaultGenerator } from "../random.js";
import type { Tensor } from "../tensor.js";
import { Module, Parameter, assignInPlace } from "./module.js";

export interface LayerOptions {
  device?: Device;
  dtype?: DType;
}

function param(shape: number[], opts: LayerOptions, value = 0): Parameter {
  const init = full(shape, value, { dtype: opts.dtype ?? "float32", device: opts.device ?? "cpu" });
  const p = new Parameter(init);
  init.dispose();
  return p;
}

function initNormal(p: Parameter, std: number, generator: Generator): void {
  const opts: RandomOptions = { dtype: p.dtype, device: p.device, generator };
  assignInPlace(p, normal(p.shape, 0, std, opts));
}

function initConstant(p: Parameter, value: number): void {
  assignInPlace(p, full(p.shape, value, { dtype: p.dtype, device: p.device }));
}

export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  initStd = 0.02;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LayerOptions & { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.registerParameter("weight", param([outFeatures, inFeatures], opts))!;
    this.bias = opts.bias === false ? null : this.registerParameter("bias", param([outFeatures], opts));
    if (this.bias) this.bias.decay = false;
  }

  override resetParameters(generator: Generator = defaultGenerator): void {
    initNormal(this.weight, this.initStd, generator);
    if (this.bias) initConstant(this.bias, 0);
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(
    readonly normalizedShape: number,
    readonly eps = 1e-12,
    opts: LayerOptions = {},
  ) {
    super();
    this.weight = this.registerParameter("weight", param([normalizedShape], opts, 1))!;
    this.bias = this.registerParameter("bias", param([normalizedShape], opts, 0))!;
    this.weight.decay = false;
    this.bias.decay = false;
  }

  override resetParameters(): void {
    initConstant(this.weight, 1);
    initConstant(this.bias, 0);
  }

  /**
   * LayerNorm(x + residual) when a residual is given (fused); with
   * `opts.dropout`, LayerNorm(dropout(x) + residual) in the same pass.
   */
  forward(x: Tensor, residual?: Tensor | null, opts: LayerNormOptions = {}): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps, residual, opts);
  }
}

export class Embedding extends Module {
  readonly weight: Parameter;
  initStd = 0.02;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    opts: LayerOptions = {},
  ) {
    super();
    this.weight = this.registerParameter("weight", param([numEmbeddings, embeddingDim], opts))!;
  }

  override resetParameters(generator: Generator = defaultGenerator): void {
    initNormal(this.weight, this.initStd, generator);
  }

  forward(ids: Tensor): Tensor {
    return embedding(ids, this.weight);
  }
}

export class Dropout extends Module {
  constructor(
    readonly p: number,
    readonly generator: Generator = defaultGenerator,
  ) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout: p must be in [0, 1), got ${p}`);
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training, this.generator);
  }
}
