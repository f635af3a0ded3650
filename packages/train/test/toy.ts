// A tiny regression model and dataset for trainer tests: Linear -> relu -> dropout -> Linear, MSE.
import { F, Module, type Tensor, fromArray, manualSeed, nn } from "@mbert/tensor";
import {
  ArrayDataLoader,
  DecoupledAdamW,
  LanguageCrossEntropy,
  type Metric,
  type TrainableModel,
  arrayDataSpec,
} from "../src/index.js";

export interface Sample {
  x: number[];
  y: number;
}

class Net extends Module {
  p = 0.2;
  l1 = this.registerModule("l1", new nn.Linear(4, 16));
  l2 = this.registerModule("l2", new nn.Linear(16, 1));
  forward(x: Tensor): Tensor {
    const h = F.dropout(this.l1.forward(x).relu(), this.p, this.training);
    return this.l2.forward(h);
  }
}

export class ToyModel implements TrainableModel<Sample[], Tensor> {
  readonly module: Net;
  constructor(seed: number, dropout = 0.2) {
    manualSeed(seed);
    this.module = new Net();
    this.module.p = dropout;
    this.module.resetParameters();
  }
  forward(batch: Sample[]): Tensor {
    const x = fromArray(
      batch.flatMap((s) => s.x),
      [batch.length, 4],
    );
    return this.module.forward(x);
  }
  loss(out: Tensor, batch: Sample[]): Tensor {
    const y = fromArray(
      batch.map((s) => s.y),
      [batch.length, 1],
    );
    return F.mseLoss(out, y);
  }
  getMetrics(): Record<string, Metric> {
    return { LanguageCrossEntropy: new LanguageCrossEntropy("MSE") };
  }
  updateMetric(batch: Sample[], out: Tensor, metric: Metric): void {
    const pred = out.data();
    const sse = batch.reduce((s, b, i) => s + (pred[i]! - b.y) ** 2, 0);
    metric.update([sse], [batch.length]);
  }
}

export function toySamples(n: number): Sample[] {
  const out: Sample[] = [];
  for (let i = 0; i < n; i++) {
    const x = [Math.sin(i), Math.cos(i * 0.7), ((i * 37) % 11) / 11, ((i * 13) % 7) / 7];
    out.push({ x, y: x[0]! * 2 - x[1]! + 0.5 * x[2]! * x[3]! });
  }
  return out;
}

export function toyData(samples: Sample[], batchSize: number, seed = 3) {
  return arrayDataSpec(new ArrayDataLoader({ samples, batchSize, collate: (s: Sample[]) => s, seed }));
}

export function toyOptimizer(model: ToyModel) {
  return new DecoupledAdamW([...model.module.namedParameters()], {
    lr: 1e-2,
    betas: [0.9, 0.98],
    eps: 1e-6,
    weightDecay: 1e-5,
  });
}
