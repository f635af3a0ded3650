import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  MixedDataset,
  MlmCollator,
  MlmDataLoader,
  StreamingDataset,
  batchPositions,
  numBatches,
  type UnpaddedMlmBatch,
} from "@mbert/data";
import { idOf, writeSyntheticShards } from "./fixtures.js";

const SPECIAL = { pad: 0, unk: 1, cls: 2, sep: 3, mask: 4 };
// Shards of uneven sizes, one empty, so blocks and shards do not line up.
const SIZES = [37, 50, 0, 23, 61, 44, 29];
const TOTAL = SIZES.reduce((a, b) => a + b, 0);

let root: string;
let dir: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "mbert-data-stream-"));
  dir = join(root, "shards");
  await writeSyntheticShards(dir, SIZES);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const open = (extra: Partial<Parameters<typeof StreamingDataset.open>[0]> = {}) =>
  StreamingDataset.open({ source: dir, seed: 17, shuffleBlockSize: 40, ...extra });

const collator = () => new MlmCollator({ vocabSize: 30522, specialIds: SPECIAL, seed: 5 });

async function epochIds(ds: StreamingDataset, epoch: number): Promise<number[]> {
  const refs = await ds.fetch(
    epoch,
    Array.from({ length: ds.numSamples }, (_, i) => i),
  );
  return refs.map((r) => idOf(r.inputIds));
}

describe("StreamingDataset order", () => {
  it("an epoch is a permutation of all samples, deterministic from (seed, epoch)", async () => {
    const a = await open();
    const b = await open();
    expect(a.numSamples).toBe(TOTAL);
    const e0 = await epochIds(a, 0);
    expect([...e0].sort((x, y) => x - y)).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
    expect(await epochIds(b, 0)).toEqual(e0);
    const e1 = await epochIds(a, 1);
    expect(e1).not.toEqual(e0);
    expect([...e1].sort((x, y) => x - y)).toEqual([...e0].sort((x, y) => x - y));
    const c = await open({ seed: 18 });
    expect(await epochIds(c, 0)).not.toEqual(e0);
    const plain = await open({ shuffle: false });
    expect(await epochIds(plain, 0)).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
    for (const d of [a, b, c, plain]) await d.close();
  });

  it("file:// URLs read the same shards", async () => {
    const a = await open();
    const f = await StreamingDataset.open({
      source: pathToFileURL(dir).href,
      seed: 17,
      shuffleBlockSize: 40,
    });
    expect(await epochIds(f, 3)).toEqual(await epochIds(a, 3));
    await a.close();
    await f.close();
  });
});

describe("partition across ranks", () => {
  for (const W of [1, 2, 3, 4]) {
    for (const dropLast of [false, true]) {
      it(`worldSize ${W}, dropLast ${dropLast}: no overlap, nothing lost, equal step counts`, () => {
        const B = 6;
        const seen = new Map<number, number>();
        const counts: number[] = [];
        for (let r = 0; r < W; r++) {
          const o = { numSamples: TOTAL, sampleOffset: 0, rank: r, worldSize: W, batchSize: B, dropLast };
          const n = numBatches(o);
          counts.push(n);
          for (let b = 0; b < n; b++) {
            const ps = batchPositions(o, b);
            if (dropLast) expect(ps.length).toBe(B);
            for (const p of ps) seen.set(p, (seen.get(p) ?? 0) + 1);
          }
        }
        expect(new Set(counts).size).toBe(1);
        for (const c of seen.values()) expect(c).toBe(1);
        const expected = dropLast ? Math.floor(TOTAL / (W * B)) * W * B : TOTAL;
        expect(seen.size).toBe(expected);
        if (dropLast) expect([...seen.keys()].every((p) => p < expected)).toBe(true);
      });
    }
  }
});

function batchSig(b: UnpaddedMlmBatch): string {
  return JSON.stringify([
    Array.from(b.inputIds),
    Array.from(b.cuSeqlens),
    Array.from(b.maskedPositions),
    Array.from(b.labels),
  ]);
}

async function readBatches(loader: MlmDataLoader, n: number): Promise<string[]> {
  const out: string[] = [];
  while (out.length < n) {
    let got = false;
    for await (const b of loader) {
      out.push(batchSig(b));
      got = true;
      if (out.length >= n) break;
    }
    if (!got) break;
  }
  return out;
}

describe("resume", () => {
  for (const W of [1, 2, 4]) {
    it(`worldSize ${W}: state after N batches resumes exactly, across an epoch boundary, with another numWorkers`, async () => {
      const B = 5;
      for (const dropLast of [true, false]) {
        for (const rank of [0, W - 1]) {
          const mk = async (numWorkers: number) =>
            new MlmDataLoader({
              dataset: await open(),
              collator: collator(),
              batchSize: B,
              rank,
              worldSize: W,
              dropLast,
              numWorkers,
            });
          const full = await mk(1);
          const perEpoch = full.batchesPerEpoch;
          const total = 2 * perEpoch + 3;
          const reference = await readBatches(full, total);
          expect(reference.length).toBe(total);
          // Cut once mid-epoch-0, once right at the boundary, once mid-epoch-1.
          for (const cut of [Math.floor(perEpoch / 2), perEpoch, perEpoch + 2]) {
            const first = await mk(2);
            const head = await readBatches(first, cut);
            const state = first.stateDict();
            const second = await mk(3);
            second.loadStateDict(JSON.parse(JSON.stringify(state)));
            const tail = await readBatches(second, total - cut);
            expect([...head, ...tail]).toEqual(reference);
          }
        }
      }
    });
  }

  it("state is epoch + global sample offset", async () => {
    const loader = new MlmDataLoader({
      dataset: await open(),
      collator: collator(),
      batchSize: 4,
      worldSize: 2,
      rank: 1,
    });
    expect(loader.stateDict()).toEqual({ epoch: 0, sampleOffset: 0 });
    await readBatches(loader, 3);
    expect(loader.stateDict()).toEqual({ epoch: 0, sampleOffset: 3 * 4 * 2 });
    expect(loader.numSamples).toBe(TOTAL);
    expect(loader.batchesPerEpoch).toBe(Math.floor(TOTAL / 8));
    loader.setEpoch(5);
    expect(loader.stateDict()).toEqual({ epoch: 5, sampleOffset: 0 });
    expect(() => loader.loadStateDict({ epoch: -1, sampleOffset: 0 })).toThrow(/loadStateDict/);
  });

  it("ranks together read each sample of an epoch once (dropLast false)", async () => {
    const W = 3;
    const ids: number[] = [];
    for (let r = 0; r < W; r++) {
      const ds = await open();
      const loader = new MlmDataLoader({
        dataset: ds,
        collator: { collate: (s) => s.map((x) => idOf(x.inputIds)) },
        batchSize: 7,
        rank: r,
        worldSize: W,
        dropLast: false,
      });
      for await (const b of loader) ids.push(...b);
    }
    expect(ids.sort((a, b) => a - b)).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
  });
});

describe("MixedDataset", () => {
  it("follows the proportions exactly per epoch, deterministically, and resumes", async () => {
    const other = join(root, "other");
    await writeSyntheticShards(other, [30, 30]);
    const make = async () =>
      new MixedDataset({
        streams: [
          { source: await open(), proportion: 3 },
          { source: await StreamingDataset.open({ source: other, seed: 1 }), proportion: 1 },
        ],
        samplesPerEpoch: 200,
      });
    const m = await make();
    expect(Array.from(m.quotas)).toEqual([150, 50]);
    const refs = await m.fetch(
      0,
      Array.from({ length: 200 }, (_, i) => i),
    );
    const fromA = refs.filter((r) => r.key < TOTAL).length;
    expect(fromA).toBe(150);
    // Stream B has 60 samples and gets 50 per mixed epoch, so over two mixed epochs it wraps into its own epoch 1.
    const refs1 = await m.fetch(
      1,
      Array.from({ length: 200 }, (_, i) => i),
    );
    const bKeys = [...refs, ...refs1].filter((r) => r.key >= TOTAL).map((r) => `${r.epoch}:${r.key}`);
    expect(new Set(bKeys).size).toBe(100);
    const m2 = await make();
    expect((await m2.fetch(1, [5, 77, 199])).map((r) => r.key)).toEqual([
      refs1[5]!.key,
      refs1[77]!.key,
      refs1[199]!.key,
    ]);
    const mk = async (nw: number) =>
      new MlmDataLoader({ dataset: await make(), collator: collator(), batchSize: 8, numWorkers: nw });
    const ref = await readBatches(await mk(1), 40);
    const a = await mk(2);
    const head = await readBatches(a, 13);
    const b = await mk(1);
    b.loadStateDict(a.stateDict());
    expect([...head, ...(await readBatches(b, 27))]).toEqual(ref);
  });
});
