import { readdir, readFile, mkdtemp, rm } from "node:fs/promises";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DownloadError,
  MlmCollator,
  MlmDataLoader,
  ShardHashMismatch,
  StreamingDataset,
  fetchBytes,
} from "@mbert/data";
import { idOf, writeSyntheticShards } from "./fixtures.js";

type Behavior = "ok" | "drop" | "bad" | "hang" | "404";

let root: string;
let dir: string;
let server: Server;
let base: string;
/** Per path: behaviors for successive requests (then "ok"). */
let plan = new Map<string, Behavior[]>();
const requests: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "mbert-data-remote-"));
  dir = join(root, "shards");
  await writeSyntheticShards(dir, [40, 40, 40, 40, 40, 40]);
  server = createServer(async (req, res) => {
    const path = decodeURIComponent(req.url ?? "/").slice(1);
    requests.push(path);
    const queue = plan.get(path);
    const behavior: Behavior = queue && queue.length > 0 ? queue.shift()! : "ok";
    if (behavior === "hang") return; // never answers; the client must time out
    if (behavior === "404") {
      res.writeHead(404).end();
      return;
    }
    let body: Buffer;
    try {
      body = await readFile(join(dir, path));
    } catch {
      res.writeHead(404).end();
      return;
    }
    if (behavior === "drop") {
      res.writeHead(200, { "content-length": body.length });
      res.write(body.subarray(0, body.length >> 1));
      req.socket.destroy();
      return;
    }
    if (behavior === "bad") {
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0x40;
    }
    res.writeHead(200, { "content-length": body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(root, { recursive: true, force: true });
});

const fast = { retries: 3, backoffMs: 5, timeoutMs: 2000 };

describe("remote StreamingDataset", () => {
  it("retries dropped connections and bad bytes, verifies sha256, and matches the local order", async () => {
    plan = new Map([
      ["index.json", ["drop"]],
      ["shard-00000.arrow", ["drop", "bad"]],
      ["shard-00003.arrow", ["bad"]],
    ]);
    requests.length = 0;
    const cacheDir = join(root, "cache1");
    const remote = await StreamingDataset.open({
      source: base,
      cacheDir,
      seed: 4,
      shuffleBlockSize: 50,
      ...fast,
    });
    const local = await StreamingDataset.open({ source: dir, seed: 4, shuffleBlockSize: 50 });
    const all = Array.from({ length: 240 }, (_, i) => i);
    const r = (await remote.fetch(0, all)).map((s) => idOf(s.inputIds));
    const l = (await local.fetch(0, all)).map((s) => idOf(s.inputIds));
    expect(r).toEqual(l);
    expect(requests.filter((p) => p === "shard-00000.arrow").length).toBe(3);
    expect(requests.filter((p) => p === "shard-00003.arrow").length).toBe(2);
    // The cache is per dataset (a folder named by the source) under the given root.
    const sub = await readdir(cacheDir);
    expect(sub.length).toBe(1);
    expect((await readdir(join(cacheDir, sub[0]!))).filter((f) => f.endsWith(".arrow")).length).toBe(6);
    await remote.close();
    await local.close();
  });

  it("a shard that stays corrupt fails with ShardHashMismatch after bounded retries", async () => {
    plan = new Map([["shard-00001.arrow", ["bad", "bad", "bad", "bad"]]]);
    requests.length = 0;
    const ds = await StreamingDataset.open({ source: base, seed: 0, shuffle: false, ...fast });
    await expect(ds.fetch(0, [45])).rejects.toBeInstanceOf(ShardHashMismatch);
    await expect(ds.fetch(0, [45])).resolves.toHaveLength(1); // server healed: a later read succeeds
    expect(requests.filter((p) => p === "shard-00001.arrow").length).toBe(5);
    await ds.close();
  });

  it("timeouts and HTTP errors are DownloadErrors naming the URL, without hanging", async () => {
    plan = new Map([["index.json", ["hang", "hang"]]]);
    const t0 = Date.now();
    const err = await StreamingDataset.open({ source: base, retries: 1, timeoutMs: 150, backoffMs: 5 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as Error).message).toMatch(
      /index\.json: failed after 2 attempt\(s\): timed out after 150 ms/,
    );
    expect(Date.now() - t0).toBeLessThan(3000);
    plan = new Map([["nope.arrow", ["404"]]]);
    await expect(fetchBytes(`${base}/nope.arrow`, fast)).rejects.toThrow(
      /nope\.arrow: failed after 1 attempt\(s\): HTTP 404/,
    );
  });

  it("keeps the disk cache under its limit by evicting least-recently-used shards not in use", async () => {
    plan = new Map();
    const shardBytes = (await readFile(join(dir, "shard-00000.arrow"))).length;
    const ds = await StreamingDataset.open({
      source: base,
      cacheDir: join(root, "cache2"),
      cacheLimitBytes: Math.floor(shardBytes * 2.5),
      seed: 1,
      shuffleBlockSize: 20,
      prefetchShards: 1,
      ...fast,
    });
    const loader = new MlmDataLoader({
      dataset: ds,
      collator: new MlmCollator({
        vocabSize: 30522,
        specialIds: { pad: 0, unk: 1, cls: 2, sep: 3, mask: 4 },
      }),
      batchSize: 10,
    });
    let maxOnDisk = 0;
    let n = 0;
    for await (const b of loader) {
      n += b.numSequences;
      maxOnDisk = Math.max(maxOnDisk, ds.shardsOnDisk);
    }
    expect(n).toBe(240);
    expect(maxOnDisk).toBeLessThanOrEqual(2);
    await ds.close();
  });

  it("prefetches the next epoch's first shards before the current epoch ends", async () => {
    plan = new Map();
    const ds = await StreamingDataset.open({
      source: base,
      seed: 2,
      shuffleBlockSize: 40,
      prefetchShards: 2,
      ...fast,
    });
    const loader = new MlmDataLoader({ dataset: ds, collator: { collate: (s) => s.length }, batchSize: 40 });
    requests.length = 0;
    for await (const _ of loader) {
      // read all of epoch 0
    }
    // Epoch 1's first block lives in one shard; it was requested while epoch 0 was read.
    const next = ds.sampleIdAt(1, 0);
    const shardOfNext = `shard-${String(Math.floor(next / 40)).padStart(5, "0")}.arrow`;
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && !requests.includes(shardOfNext))
      await new Promise((r) => setTimeout(r, 10));
    expect(requests).toContain(shardOfNext);
    const tmpCache = ds.cacheDir!;
    expect(tmpCache.startsWith(tmpdir())).toBe(true);
    await ds.close();
    await expect(readdir(tmpCache)).rejects.toThrow(); // a cache the dataset made itself is removed
  });
});
