// StreamingDataset: shards from a local folder or a remote base URL, in a
// deterministic order from (seed, epoch), partitioned across ranks and data
// workers, with a size-limited local cache and prefetching.
//
// Order of one epoch (docs/data.md has the full description):
//   1. shards are permuted by (seed, epoch);
//   2. their samples are laid end to end in that order, positions 0..N-1;
//   3. positions are cut into blocks of `shuffleBlockSize` and shuffled within
//      each block by (seed, epoch, block).
// Position p of the epoch is read by rank (p - offset) mod worldSize, where
// offset is where the run (or its resumption) started in this epoch. The
// resume state is just { epoch, sampleOffset }.

import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CacheFullError, DataUsageError, ShardMissing, TokenizerMismatch } from "./errors.js";
import { writeFileAtomic } from "./fsutil.js";
import { type RetryOptions, fetchBytes } from "./remote.js";
import { permutation } from "./rng.js";
import { type ShardData, type ShardIndex, parseIndex } from "./shard-format.js";
import type { TextTokenizer } from "./tokenizer.js";
import { checkShardBytes, decodeShardEntry, readShardIndex } from "./verify.js";

/** One sample handed to a collator. `inputIds` is a view into shard memory: do not write to it. */
export interface SampleRef {
  inputIds: Int32Array;
  /** Token types aligned with inputIds, or null (all zero). */
  tokenTypeIds: Int8Array | null;
  /** Identity of the sample, unique within its dataset (mixed datasets offset per stream). */
  key: number;
  /** Epoch of the stream it was read in (part of the masking RNG counter). */
  epoch: number;
}

/** What MlmDataLoader needs from a dataset (StreamingDataset and MixedDataset implement it). */
export interface SampleDataset {
  /** Samples in one epoch. */
  readonly numSamples: number;
  /** The samples at these positions of the epoch's order, in the same order. */
  fetch(epoch: number, positions: ArrayLike<number>): Promise<SampleRef[]>;
  /** Hint: the reader is at `position` of `epoch`; start loading what comes next. */
  prefetch(epoch: number, position: number): void;
  close(): Promise<void>;
}

export interface StreamingDatasetOptions extends RetryOptions {
  /** A local folder, a file:// URL, or an http(s):// base URL holding index.json and the shards. */
  source: string;
  /**
   * Root of the local shard cache for remote sources. The dataset uses a
   * subfolder named by a hash of `source`. Default: a fresh folder made with
   * mkdtemp under os.tmpdir(), removed by close().
   */
  cacheDir?: string;
  /** Disk budget of the remote cache; least-recently-used shards not in use are evicted (default 8 GiB). */
  cacheLimitBytes?: number;
  /** Memory budget of decoded shards kept for reuse (default 2 GiB; shards in use are always kept). */
  memoryLimitBytes?: number;
  /** Shuffle seed (default 0). */
  seed?: number;
  /** Shuffle shards and samples (default true). false reads in index order. */
  shuffle?: boolean;
  /** Samples per shuffle block (default 65536). All shards of a block are loaded together. */
  shuffleBlockSize?: number;
  /** Shards to load ahead of the reader (default 2), across the epoch boundary too. */
  prefetchShards?: number;
  /** Refuse shards written with another tokenizer (sha256 of tokenizer.json). */
  tokenizerSha256?: string;
  /** For raw-text shards: the tokenizer applied when reading (truncated to the index's max_seq_len). */
  tokenizer?: TextTokenizer;
}

type Location = { kind: "local"; dir: string } | { kind: "remote"; base: string };

function locate(source: string): Location {
  if (/^https?:\/\//i.test(source)) return { kind: "remote", base: source.replace(/\/+$/, "") };
  if (/^file:\/\//i.test(source)) return { kind: "local", dir: fileURLToPath(source) };
  return { kind: "local", dir: resolve(source) };
}

interface Loaded {
  data: ShardData;
  refs: number;
  lastUse: number;
}

/** The epoch order: position -> sample id, with block permutations cached. */
class EpochOrder {
  readonly shardOrder: Int32Array;
  /** permStart[k] = first position of the k-th shard in permuted order; length numShards + 1. */
  readonly permStart: Float64Array;
  private readonly blocks = new Map<number, Int32Array>();
  constructor(
    private readonly ds: StreamingDataset,
    readonly epoch: number,
  ) {
    const n = ds.index.shards.length;
    this.shardOrder = ds.shuffle
      ? permutation(n, ds.seed, epoch, 0x5a4d, 0)
      : Int32Array.from({ length: n }, (_, i) => i);
    this.permStart = new Float64Array(n + 1);
    for (let k = 0; k < n; k++)
      this.permStart[k + 1] = this.permStart[k]! + ds.index.shards[this.shardOrder[k]!]!.samples;
  }

  private blockPerm(b: number): Int32Array | null {
    if (!this.ds.shuffle) return null;
    let p = this.blocks.get(b);
    if (!p) {
      const size = Math.min(this.ds.blockSize, this.ds.numSamples - b * this.ds.blockSize);
      p = permutation(size, this.ds.seed, this.epoch, b, 0xb10c);
      if (this.blocks.size >= 4) this.blocks.delete(this.blocks.keys().next().value!);
      this.blocks.set(b, p);
    }
    return p;
  }

  /** The permuted-order shard index k holding concatenated position q. */
  shardSlot(q: number): number {
    let lo = 0;
    let hi = this.shardOrder.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.permStart[mid]! <= q) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Shard (original index) and row within it of epoch position p. */
  locate(p: number, out: { shard: number; row: number }): void {
    const B = this.ds.blockSize;
    const b = Math.floor(p / B);
    const perm = this.blockPerm(b);
    const q = perm ? b * B + perm[p - b * B]! : p;
    const k = this.shardSlot(q);
    out.shard = this.shardOrder[k]!;
    out.row = q - this.permStart[k]!;
  }

  /** Shards (original indices) covering block b, in permuted order. */
  blockShards(b: number): number[] {
    const B = this.ds.blockSize;
    const lo = b * B;
    const hi = Math.min(this.ds.numSamples, lo + B) - 1;
    if (hi < lo) return [];
    const out: number[] = [];
    for (let k = this.shardSlot(lo); k < this.shardOrder.length && this.permStart[k]! <= hi; k++) {
      if (this.ds.index.shards[this.shardOrder[k]!]!.samples > 0) out.push(this.shardOrder[k]!);
    }
    return out;
  }
}

export class StreamingDataset implements SampleDataset {
  readonly index: ShardIndex;
  readonly source: string;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly blockSize: number;
  readonly numSamples: number;
  /** Where remote shards are cached (null for local sources). */
  readonly cacheDir: string | null;
  private readonly loc: Location;
  private readonly opts: StreamingDatasetOptions;
  private readonly ownsCache: boolean;
  private readonly loaded = new Map<number, Loaded>();
  private readonly loading = new Map<number, Promise<Loaded>>();
  private readonly onDisk = new Map<number, { bytes: number; lastUse: number }>();
  /** Downloads under way, with the cache bytes they reserved. */
  private readonly reserved = new Map<number, { bytes: number; settled: Promise<void> }>();
  private readonly releaseHooks = new Map<number, () => void>();
  /** Cached files being read right now (never evicted). */
  private readonly reading = new Set<number>();
  private readonly orders = new Map<number, EpochOrder>();
  /** starts[i] = global sample id of shard i's first sample (index order); length numShards + 1. */
  private readonly starts: Float64Array;
  private clock = 0;
  private lastPrefetch = "";
  private closed = false;
  private readonly tmp = { shard: 0, row: 0 };

  private constructor(
    opts: StreamingDatasetOptions,
    index: ShardIndex,
    loc: Location,
    cacheDir: string | null,
    ownsCache: boolean,
  ) {
    this.opts = opts;
    this.index = index;
    this.source = opts.source;
    this.loc = loc;
    this.cacheDir = cacheDir;
    this.ownsCache = ownsCache;
    this.seed = opts.seed ?? 0;
    this.shuffle = opts.shuffle ?? true;
    this.blockSize = Math.max(1, opts.shuffleBlockSize ?? 65536);
    this.numSamples = index.samples;
    this.starts = new Float64Array(index.shards.length + 1);
    index.shards.forEach((e, k) => {
      this.starts[k + 1] = this.starts[k]! + e.samples;
    });
    if (index.raw_text && !opts.tokenizer)
      throw new DataUsageError(
        `${opts.source}: raw-text shards need the tokenizer option to be read as token ids`,
      );
  }

  /** Open a dataset: reads and validates index.json (downloading it for remote sources). */
  static async open(opts: StreamingDatasetOptions): Promise<StreamingDataset> {
    const loc = locate(opts.source);
    let index: ShardIndex;
    let cacheDir: string | null = null;
    let owns = false;
    if (loc.kind === "local") {
      index = await readShardIndex(loc.dir);
    } else {
      const url = `${loc.base}/index.json`;
      const bytes = await fetchBytes(url, opts);
      index = parseIndex(new TextDecoder().decode(bytes), url);
      const id = createHash("sha256").update(loc.base).digest("hex").slice(0, 16);
      if (opts.cacheDir) {
        cacheDir = join(opts.cacheDir, id);
        await mkdir(cacheDir, { recursive: true });
      } else {
        cacheDir = await mkdtemp(join(tmpdir(), `mbert-data-${id}-`));
        owns = true;
      }
    }
    if (opts.tokenizerSha256 && index.tokenizer && index.tokenizer.sha256 !== opts.tokenizerSha256)
      throw new TokenizerMismatch(`${opts.source}/index.json`, index.tokenizer.sha256, opts.tokenizerSha256);
    return new StreamingDataset(opts, index, loc, cacheDir, owns);
  }

  /** The order of an epoch (cached for the two most recent epochs). */
  private order(epoch: number): EpochOrder {
    let o = this.orders.get(epoch);
    if (!o) {
      o = new EpochOrder(this, epoch);
      if (this.orders.size >= 2) this.orders.delete(this.orders.keys().next().value!);
      this.orders.set(epoch, o);
    }
    return o;
  }

  /** Global sample id (position in index order) at epoch position p. */
  sampleIdAt(epoch: number, p: number): number {
    this.order(epoch).locate(p, this.tmp);
    return this.starts[this.tmp.shard]! + this.tmp.row;
  }

  async fetch(epoch: number, positions: ArrayLike<number>): Promise<SampleRef[]> {
    if (this.closed) throw new DataUsageError(`${this.source}: dataset is closed`);
    const order = this.order(epoch);
    const n = positions.length;
    const shards = new Int32Array(n);
    const rows = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const p = positions[i]!;
      if (!(p >= 0 && p < this.numSamples))
        throw new DataUsageError(
          `${this.source}: position ${p} is outside epoch of ${this.numSamples} samples`,
        );
      order.locate(p, this.tmp);
      shards[i] = this.tmp.shard;
      rows[i] = this.tmp.row;
    }
    const need = [...new Set(shards)];
    const held: Loaded[] = [];
    try {
      for (const s of need) held.push(await this.acquire(s));
      const out: SampleRef[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const s = shards[i]!;
        const l = this.loaded.get(s)!;
        out[i] = this.ref(l.data, s, rows[i]!, epoch);
      }
      return out;
    } finally {
      for (const s of need) this.release(s);
    }
  }

  private ref(d: ShardData, shard: number, row: number, epoch: number): SampleRef {
    const key = this.starts[shard]! + row;
    if (d.text) {
      const e = this.opts.tokenizer!.encode(d.text(row), null, { maxLength: this.index.max_seq_len });
      return { inputIds: Int32Array.from(e.ids), tokenTypeIds: null, key, epoch };
    }
    const a = d.offsets[row]!;
    const b = d.offsets[row + 1]!;
    return {
      inputIds: d.values.subarray(a, b),
      tokenTypeIds: d.tokenTypes ? d.tokenTypes.subarray(a, b) : null,
      key,
      epoch,
    };
  }

  prefetch(epoch: number, position: number): void {
    if (this.closed || this.numSamples === 0) return;
    const b = Math.floor(position / this.blockSize);
    const tag = `${epoch}:${b}`;
    if (tag === this.lastPrefetch) return;
    this.lastPrefetch = tag;
    const want = this.opts.prefetchShards ?? 2;
    const current = new Set(this.order(epoch).blockShards(b));
    const ahead: number[] = [];
    let e = epoch;
    let bb = b;
    const lastBlock = Math.ceil(this.numSamples / this.blockSize) - 1;
    for (let guard = 0; ahead.length < want && guard < 64; guard++) {
      if (bb < lastBlock) bb++;
      else {
        e++;
        bb = 0;
      }
      for (const s of this.order(e).blockShards(bb))
        if (!current.has(s) && !ahead.includes(s) && ahead.length < want) ahead.push(s);
      if (e > epoch + 1) break;
    }
    for (const s of [...current, ...ahead]) {
      if (this.loaded.has(s) || this.loading.has(s)) continue;
      // Load (and for remote, download) in the background; keep it in memory unpinned.
      // A failure here is not lost: the fetch that needs the shard loads it again and throws.
      this.acquire(s).then(
        () => this.release(s),
        () => {},
      );
    }
  }

  /**
   * Shard i, verified against index.json and decoded. Local sources read the
   * file; remote sources read the cached copy, or download (with retries, size
   * and sha256 verified before it is written) into the cache.
   */
  private async shardData(i: number): Promise<ShardData> {
    const entry = this.index.shards[i]!;
    if (this.loc.kind === "local") {
      try {
        return checkShardBytes(await readFile(join(this.loc.dir, entry.file)), entry, this.index);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT")
          throw new ShardMissing(entry.file, this.loc.dir);
        throw err;
      }
    }
    const path = join(this.cacheDir!, entry.file);
    const cached = this.onDisk.get(i) ?? (await this.adopt(i, path));
    if (cached) {
      cached.lastUse = ++this.clock;
      this.reading.add(i);
      try {
        return checkShardBytes(await readFile(path), entry, this.index);
      } catch {
        // Evicted by another reader sharing the cache, or a corrupt copy: download afresh.
        this.onDisk.delete(i);
        await unlink(path).catch(() => {});
      } finally {
        this.reading.delete(i);
      }
    }
    await this.reserve(i, entry.bytes);
    try {
      const bytes = await fetchBytes(`${(this.loc as { base: string }).base}/${entry.file}`, this.opts, {
        name: entry.file,
        bytes: entry.bytes,
        sha256: entry.sha256,
      });
      await writeFileAtomic(path, bytes);
      this.onDisk.set(i, { bytes: entry.bytes, lastUse: ++this.clock });
      return decodeShardEntry(bytes, entry, this.index);
    } finally {
      this.reserved.delete(i);
      this.releaseHooks.get(i)?.();
      this.releaseHooks.delete(i);
    }
  }

  /** A complete copy left in the cache folder by an earlier run (or another rank): use it. */
  private async adopt(i: number, path: string): Promise<{ bytes: number; lastUse: number } | undefined> {
    try {
      const st = await stat(path);
      if (st.size !== this.index.shards[i]!.bytes) return undefined;
      const rec = { bytes: st.size, lastUse: ++this.clock };
      this.onDisk.set(i, rec);
      return rec;
    } catch {
      return undefined;
    }
  }

  /**
   * Make room for a download of `bytes` within cacheLimitBytes: evict the
   * least-recently-used cached shards that nobody is reading, and if that is
   * not enough, wait for downloads already under way (they never wait on
   * anything, so this cannot deadlock). Throws CacheFullError when one shard
   * alone does not fit.
   */
  private async reserve(i: number, bytes: number): Promise<void> {
    const limit = this.opts.cacheLimitBytes ?? 8 * 1024 ** 3;
    if (bytes > limit) throw new CacheFullError(this.cacheDir!, bytes, limit);
    for (;;) {
      // Recomputed after every await: other readers reserve and evict meanwhile.
      let total = bytes;
      for (const v of this.onDisk.values()) total += v.bytes;
      for (const r of this.reserved.values()) total += r.bytes;
      if (total <= limit) {
        let done!: () => void;
        const settled = new Promise<void>((r) => {
          done = r;
        });
        this.reserved.set(i, { bytes, settled });
        // Resolved when the download ends (see the finally in shardData).
        this.releaseHooks.set(i, done);
        return;
      }
      let victim: number | undefined;
      let oldest = Number.POSITIVE_INFINITY;
      for (const [s, v] of this.onDisk) {
        if (this.reading.has(s) || this.reserved.has(s) || v.lastUse >= oldest) continue;
        victim = s;
        oldest = v.lastUse;
      }
      if (victim !== undefined) {
        this.onDisk.delete(victim);
        await unlink(join(this.cacheDir!, this.index.shards[victim]!.file)).catch(() => {});
        continue;
      }
      const waits = [...this.reserved.values()].map((r) => r.settled);
      if (waits.length === 0) throw new CacheFullError(this.cacheDir!, total, limit);
      await Promise.race(waits);
    }
  }

  private async acquire(i: number): Promise<Loaded> {
    const have = this.loaded.get(i);
    if (have) {
      have.refs++;
      have.lastUse = ++this.clock;
      return have;
    }
    let p = this.loading.get(i);
    if (!p) {
      p = (async () => {
        const data = await this.shardData(i);
        const l: Loaded = { data, refs: 0, lastUse: ++this.clock };
        this.loaded.set(i, l);
        this.trimMemory();
        return l;
      })().finally(() => this.loading.delete(i));
      this.loading.set(i, p);
    }
    const l = await p;
    l.refs++;
    l.lastUse = ++this.clock;
    return l;
  }

  private release(i: number): void {
    const l = this.loaded.get(i);
    if (l) l.refs--;
  }

  private trimMemory(): void {
    const limit = this.opts.memoryLimitBytes ?? 2 * 1024 ** 3;
    let total = 0;
    for (const l of this.loaded.values()) total += l.data.byteLength;
    if (total <= limit) return;
    const idle = [...this.loaded.entries()]
      .filter(([, l]) => l.refs <= 0)
      .sort((a, b) => a[1].lastUse - b[1].lastUse);
    for (const [s, l] of idle) {
      if (total <= limit) break;
      this.loaded.delete(s);
      total -= l.data.byteLength;
    }
  }

  /** Decoded shards held in memory right now (for tests and monitoring). */
  get shardsInMemory(): number {
    return this.loaded.size;
  }

  /** Shard files in the remote cache right now. */
  get shardsOnDisk(): number {
    return this.onDisk.size;
  }

  /** Drop decoded shards; remove the cache folder if this dataset made it. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.loading.values()]);
    this.loaded.clear();
    if (this.ownsCache && this.cacheDir) await rm(this.cacheDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// Partitioning

export interface PartitionOptions {
  /** Samples in the epoch. */
  numSamples: number;
  /** Position where this (possibly resumed) pass over the epoch starts. */
  sampleOffset: number;
  rank: number;
  worldSize: number;
  batchSize: number;
  dropLast: boolean;
}

/**
 * Batches of one pass for one rank, as lists of epoch positions.
 * Global batch g covers positions offset + g*B*W ... ; rank r takes every W-th
 * of them starting at r. With dropLast the tail that does not fill a whole
 * global batch (W*B samples) is skipped; without it every sample is read once
 * and the last batch of a rank may be short (or empty, when fewer samples than
 * ranks remain), so that all ranks run the same number of steps.
 */
export function numBatches(o: Omit<PartitionOptions, "rank">): number {
  const remaining = Math.max(0, o.numSamples - o.sampleOffset);
  const global = o.worldSize * o.batchSize;
  return o.dropLast ? Math.floor(remaining / global) : Math.ceil(remaining / global);
}

/** Epoch positions of rank-local batch `b` (see numBatches). */
export function batchPositions(o: PartitionOptions, b: number): number[] {
  const res: number[] = [];
  const W = o.worldSize;
  const start = o.sampleOffset + b * W * o.batchSize + o.rank;
  const end = Math.min(o.numSamples, o.sampleOffset + (b + 1) * W * o.batchSize);
  for (let p = start; p < end; p += W) res.push(p);
  return res;
}

export function checkPartition(o: { rank: number; worldSize: number; batchSize: number }): void {
  if (!Number.isInteger(o.worldSize) || o.worldSize < 1)
    throw new DataUsageError(`worldSize must be an integer >= 1, got ${o.worldSize}`);
  if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize)
    throw new DataUsageError(`rank must be an integer in [0, ${o.worldSize}), got ${o.rank}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1)
    throw new DataUsageError(`batchSize must be an integer >= 1, got ${o.batchSize}`);
}
