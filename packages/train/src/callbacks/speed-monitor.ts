/**
 * Throughput over a window of recent batches: batches/s, samples/s,
 * tokens/s, FLOP/s and MFU (model FLOP/s over the peak FLOP/s of all
 * devices). Wall time is measured from BATCH_START to BATCH_END, so
 * evaluation and checkpointing do not count.
 *
 * FLOPs per batch come from `flopsPerBatch(batch)` when given, otherwise
 * 6 * parameters * tokens (forward + backward of the dense layers).
 */
import { Callback } from "../callback.js";
import type { Logger } from "../logger.js";
import type { State } from "../state.js";

export interface SpeedMonitorOptions {
  /** Batches averaged over (default 100; the paper's recipe uses 500). */
  windowSize?: number;
  /** Peak FLOP/s of one device. Default: 989e12 (H100 SXM, dense bf16) on cuda; none on the CPU (no MFU). */
  peakFlopsPerSecond?: number;
  flopsPerBatch?: (batch: unknown) => number;
}

export class SpeedMonitor extends Callback {
  readonly windowSize: number;
  private readonly peak?: number;
  private readonly flopsFn?: (batch: unknown) => number;
  private window: { seconds: number; samples: number; tokens: number; flops: number }[] = [];
  private batchStartTime = 0;
  private numParams = 0;
  private fitStartTime = 0;
  private trainSeconds = 0;
  /** The latest values logged, for reports. */
  latest: Record<string, number> = {};

  constructor(opts: SpeedMonitorOptions = {}) {
    super();
    this.windowSize = opts.windowSize ?? 100;
    this.peak = opts.peakFlopsPerSecond;
    this.flopsFn = opts.flopsPerBatch;
  }

  override fitStart(state: State): void {
    this.fitStartTime = performance.now();
    this.numParams = 0;
    for (const [, p] of state.model.module.namedParameters()) this.numParams += p.size;
  }

  override batchStart(): void {
    this.batchStartTime = performance.now();
  }

  override batchEnd(state: State, logger: Logger): void {
    const seconds = (performance.now() - this.batchStartTime) / 1000;
    this.trainSeconds += seconds;
    const flops = this.flopsFn ? this.flopsFn(state.batch) : 6 * this.numParams * state.batchTokens;
    this.window.push({ seconds, samples: state.batchSamples, tokens: state.batchTokens, flops });
    if (this.window.length > this.windowSize) this.window.shift();
    let s = 0;
    let sp = 0;
    let tok = 0;
    let fl = 0;
    for (const w of this.window) {
      s += w.seconds;
      sp += w.samples;
      tok += w.tokens;
      fl += w.flops;
    }
    const m: Record<string, number> = {
      "wall_clock/train": this.trainSeconds,
      "wall_clock/total": (performance.now() - this.fitStartTime) / 1000,
    };
    if (s > 0) {
      // Each rank measures its own share; totals multiply by worldSize.
      const ws = state.worldSize;
      m["throughput/batches_per_sec"] = this.window.length / s;
      m["throughput/samples_per_sec"] = (sp / s) * ws;
      m["throughput/device/samples_per_sec"] = sp / s;
      m["throughput/tokens_per_sec"] = (tok / s) * ws;
      m["throughput/device/tokens_per_sec"] = tok / s;
      m["throughput/flops_per_sec"] = (fl / s) * ws;
      const peak = this.peak ?? (state.device === "cuda" ? 989e12 : undefined);
      if (peak !== undefined && peak > 0) m["throughput/device/mfu"] = fl / s / peak;
    }
    this.latest = m;
    logger.logMetrics(m);
  }
}
