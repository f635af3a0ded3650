// MixedDataset: several streams interleaved in fixed proportions.
//
// An epoch of the mix has `samplesPerEpoch` positions; stream s gets
// q_s = its share of them (largest-remainder rounding of proportion × length).
// Positions are assigned by smooth weighted round-robin, which spreads each
// stream evenly and needs no randomness; checkpoints every 4096 positions make
// "how many samples of stream s come before position p" cheap, which is all a
// resumed reader needs. Stream s's k-th sample overall (k counts across mixed
// epochs) is position k mod n_s of the stream's own epoch floor(k / n_s), so
// each stream keeps its own shuffled order and wraps into new epochs as needed.

import { DataUsageError } from "./errors.js";
import type { SampleDataset, SampleRef } from "./streaming.js";

export interface MixedStream {
  source: SampleDataset;
  /** Relative weight; normalized over all streams. */
  proportion: number;
}

export interface MixedDatasetOptions {
  streams: MixedStream[];
  /** Positions per mixed epoch (default: the sum of the streams' sizes). */
  samplesPerEpoch?: number;
}

const CHECKPOINT = 4096;

export class MixedDataset implements SampleDataset {
  readonly numSamples: number;
  readonly streams: readonly MixedStream[];
  /** Samples of each stream in one mixed epoch. */
  readonly quotas: Int32Array;
  /** Offsets that make sample keys unique across streams. */
  private readonly keyBase: Float64Array;
  /** SWRR state and counts at each checkpoint: [cur_0..cur_S-1, count_0..count_S-1]. */
  private readonly checkpoints: Float64Array[] = [];
  private blockCache: { c: number; streamOf: Uint8Array; kOf: Float64Array } | null = null;

  constructor(options: MixedDatasetOptions) {
    const streams = options.streams;
    if (streams.length === 0 || streams.length > 255)
      throw new DataUsageError("MixedDataset needs 1 to 255 streams");
    let wsum = 0;
    for (const s of streams) {
      if (!(s.proportion > 0))
        throw new DataUsageError(`MixedDataset: proportions must be > 0, got ${s.proportion}`);
      if (s.source.numSamples === 0) throw new DataUsageError("MixedDataset: a stream has no samples");
      wsum += s.proportion;
    }
    this.streams = streams;
    this.numSamples = options.samplesPerEpoch ?? streams.reduce((a, s) => a + s.source.numSamples, 0);
    if (!Number.isInteger(this.numSamples) || this.numSamples < 1)
      throw new DataUsageError(`samplesPerEpoch must be a positive integer, got ${this.numSamples}`);
    // Largest remainder apportionment of numSamples.
    const exact = streams.map((s) => (s.proportion / wsum) * this.numSamples);
    const q = exact.map(Math.floor);
    let left = this.numSamples - q.reduce((a, b) => a + b, 0);
    const order = exact
      .map((e, i) => [e - Math.floor(e), i] as const)
      .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    for (const [, i] of order) {
      if (left-- <= 0) break;
      q[i]!++;
    }
    this.quotas = Int32Array.from(q);
    this.keyBase = new Float64Array(streams.length);
    for (let i = 1; i < streams.length; i++)
      this.keyBase[i] = this.keyBase[i - 1]! + streams[i - 1]!.source.numSamples;
    const S = streams.length;
    this.checkpoints.push(new Float64Array(2 * S));
  }

  /** Stream of each position in checkpoint block c, and per-stream counts before each position's block. */
  private block(c: number): { streamOf: Uint8Array; kOf: Float64Array } {
    if (this.blockCache?.c === c) return this.blockCache;
    const S = this.streams.length;
    const L = this.numSamples;
    while (this.checkpoints.length <= c) {
      const prev = this.checkpoints[this.checkpoints.length - 1]!;
      const st = Float64Array.from(prev);
      const start = (this.checkpoints.length - 1) * CHECKPOINT;
      for (let p = start; p < Math.min(L, start + CHECKPOINT); p++) this.step(st);
      this.checkpoints.push(st);
    }
    const st = Float64Array.from(this.checkpoints[c]!);
    const start = c * CHECKPOINT;
    const n = Math.min(CHECKPOINT, L - start);
    const streamOf = new Uint8Array(n);
    const kOf = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const s = this.step(st);
      streamOf[i] = s;
      kOf[i] = st[S + s]! - 1;
    }
    this.blockCache = { c, streamOf, kOf };
    return this.blockCache;
  }

  /** One SWRR step: every stream gains its quota, the richest is picked and pays L. */
  private step(st: Float64Array): number {
    const S = this.streams.length;
    let best = 0;
    for (let s = 0; s < S; s++) {
      st[s] = st[s]! + this.quotas[s]!;
      if (st[s]! > st[best]!) best = s;
    }
    st[best] = st[best]! - this.numSamples;
    st[S + best] = st[S + best]! + 1;
    return best;
  }

  /** Which stream position p reads, and that stream's running sample number k (across mixed epochs). */
  locate(epoch: number, p: number): { stream: number; k: number } {
    const c = Math.floor(p / CHECKPOINT);
    const blk = this.block(c);
    const i = p - c * CHECKPOINT;
    const s = blk.streamOf[i]!;
    return { stream: s, k: epoch * this.quotas[s]! + blk.kOf[i]! };
  }

  async fetch(epoch: number, positions: ArrayLike<number>): Promise<SampleRef[]> {
    const S = this.streams.length;
    const groups: Array<{ idx: number[]; ep: number[]; pos: number[] }> = Array.from({ length: S }, () => ({
      idx: [],
      ep: [],
      pos: [],
    }));
    for (let i = 0; i < positions.length; i++) {
      const p = positions[i]!;
      if (!(p >= 0 && p < this.numSamples))
        throw new DataUsageError(`MixedDataset: position ${p} is outside epoch of ${this.numSamples}`);
      const { stream, k } = this.locate(epoch, p);
      const n = this.streams[stream]!.source.numSamples;
      const g = groups[stream]!;
      g.idx.push(i);
      g.ep.push(Math.floor(k / n));
      g.pos.push(k % n);
    }
    const out: SampleRef[] = new Array(positions.length);
    await Promise.all(
      groups.map(async (g, s) => {
        if (g.idx.length === 0) return;
        const src = this.streams[s]!.source;
        // Usually one stream epoch per batch; split when the batch crosses a wrap.
        const byEpoch = new Map<number, number[]>();
        g.ep.forEach((e, j) => {
          const l = byEpoch.get(e);
          if (l) l.push(j);
          else byEpoch.set(e, [j]);
        });
        for (const [e, js] of byEpoch) {
          const refs = await src.fetch(
            e,
            js.map((j) => g.pos[j]!),
          );
          js.forEach((j, r) => {
            const ref = refs[r]!;
            out[g.idx[j]!] = { ...ref, key: this.keyBase[s]! + ref.key };
          });
        }
      }),
    );
    return out;
  }

  prefetch(epoch: number, position: number): void {
    for (let s = 0; s < this.streams.length; s++) {
      const n = this.streams[s]!.source.numSamples;
      const k = Math.floor(((epoch * this.numSamples + position) * this.quotas[s]!) / this.numSamples);
      this.streams[s]!.source.prefetch(Math.floor(k / n), k % n);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.streams.map((s) => s.source.close()));
  }
}
