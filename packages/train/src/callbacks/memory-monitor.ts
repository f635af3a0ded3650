/**
 * Device memory at BATCH_END, every `interval` batches, after Composer's
 * MemoryMonitor:
 *
 *   memory/allocated_bytes   bytes the allocator has handed out (cuda), or
 *                            bytes held by live tensors (cpu)
 *   memory/reserved_bytes    bytes held from the driver, cached blocks included (cuda)
 *   memory/peak_bytes        highest allocated since the previous report (cuda;
 *                            the peak is reset after each report)
 *   memory/live_tensors      tensor objects not yet disposed
 *
 * Reading the allocator's counters does not wait for the device.
 */
import { backend, memory } from "@mbert/tensor";
import { Callback } from "../callback.js";
import { TrainerConfigError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { State } from "../state.js";
import { Time } from "../time.js";

/** The allocator counters of a backend (`backend("cuda").memoryStats()`). */
export type AllocatorStats = ReturnType<ReturnType<typeof backend>["memoryStats"]>;

/** Reads and resets one device's allocator counters. */
export interface AllocatorProbe {
  stats(): AllocatorStats;
  resetPeak(): void;
}

export interface MemoryMonitorOptions {
  /** Report every this many batches (a number or a 'ba' time string; default 1). */
  interval?: number | string;
  /** Where the counters come from (default: the cuda allocator on cuda, live tensors on the CPU). */
  statsFor?: (device: "cpu" | "cuda") => AllocatorProbe | undefined;
}

function allocatorOf(device: "cpu" | "cuda"): AllocatorProbe | undefined {
  if (device !== "cuda") return undefined;
  const k = backend("cuda");
  return { stats: () => k.memoryStats(), resetPeak: () => k.resetPeak() };
}

export class MemoryMonitor extends Callback {
  readonly interval: number;
  private readonly statsFor: NonNullable<MemoryMonitorOptions["statsFor"]>;
  /** The latest values logged, for reports. */
  latest: Record<string, number> = {};

  constructor(opts: MemoryMonitorOptions = {}) {
    super();
    const t = Time.from(opts.interval ?? 1, "ba");
    if (t.unit !== "ba" || !Number.isInteger(t.value) || t.value < 1) {
      throw new TrainerConfigError(
        `MemoryMonitor: interval must be a whole number of batches >= 1, got '${t}'`,
      );
    }
    this.interval = t.value;
    this.statsFor = opts.statsFor ?? allocatorOf;
  }

  override fitStart(state: State): void {
    // Peaks count from the start of training, not from model construction.
    this.statsFor(state.device)?.resetPeak();
  }

  override batchEnd(state: State, logger: Logger): void {
    if (state.timestamp.batch % this.interval !== 0) return;
    const report = memory();
    const m: Record<string, number> = { "memory/live_tensors": report.tensors };
    const allocator = this.statsFor(state.device);
    if (allocator) {
      const s = allocator.stats();
      m["memory/allocated_bytes"] = s.allocated;
      m["memory/reserved_bytes"] = s.reserved;
      m["memory/peak_bytes"] = s.peak;
      m["memory/allocations"] = s.count;
      allocator.resetPeak();
    } else {
      m["memory/allocated_bytes"] = report.bytes[state.device];
    }
    this.latest = m;
    logger.logMetrics(m);
  }
}
