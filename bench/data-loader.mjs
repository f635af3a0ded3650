// Reading local shards and collating 128-token MLM batches on one core.
// Prints a table and a JSON line. Run: node bench/data-loader.mjs [--samples N]
// (build first: pnpm --filter @mbert/data build)

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  MlmCollator,
  MlmDataLoader,
  SHARD_FORMAT,
  SHARD_FORMAT_VERSION,
  StreamingDataset,
  encodeShard,
  shardFileName,
} from "../packages/data/dist/index.js";

const argSamples = process.argv.indexOf("--samples");
const TOTAL = argSamples > 0 ? Number(process.argv[argSamples + 1]) : 400_000;
const SEQ = 128;
const PER_SHARD = 50_000;
const BATCH = 256;

const dir = await mkdtemp(join(tmpdir(), "mbert-bench-data-"));
try {
  // Synthetic shards of full 128-token samples (bert-base vocab ids).
  const shards = [];
  let rng = 12345;
  for (let s = 0; s * PER_SHARD < TOTAL; s++) {
    const n = Math.min(PER_SHARD, TOTAL - s * PER_SHARD);
    const offsets = new Int32Array(n + 1);
    const values = new Int32Array(n * SEQ);
    for (let i = 0; i < n; i++) {
      offsets[i + 1] = (i + 1) * SEQ;
      values[i * SEQ] = 101;
      for (let t = 1; t < SEQ - 1; t++) {
        rng = (Math.imul(rng, 1103515245) + 12345) >>> 0;
        values[i * SEQ + t] = 1000 + (rng % 29000);
      }
      values[i * SEQ + SEQ - 1] = 102;
    }
    const bytes = encodeShard({ offsets, values });
    const file = shardFileName(s);
    await writeFile(join(dir, file), bytes);
    shards.push({
      file,
      samples: n,
      tokens: n * SEQ,
      bytes: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
    });
  }
  const index = {
    format: SHARD_FORMAT,
    version: SHARD_FORMAT_VERSION,
    split: null,
    columns: [{ name: "input_ids", type: "list<int32>" }],
    tokenizer: null,
    max_seq_len: SEQ,
    packed: true,
    raw_text: false,
    samples: TOTAL,
    tokens: TOTAL * SEQ,
    shards,
  };
  await writeFile(join(dir, "index.json"), JSON.stringify(index));

  // Epoch 0 is cold (each shard read, sha256-verified, decoded); later epochs
  // reuse the decoded shards. CPU seconds (user+sys of this process) are
  // reported beside wall time: the machine may be shared, and the claim is
  // about one core's work.
  const rows = [];
  for (const numWorkers of [1, 2]) {
    const dataset = await StreamingDataset.open({ source: dir, seed: 1 });
    const collator = new MlmCollator({
      vocabSize: 30522,
      specialIds: { pad: 0, unk: 100, cls: 101, sep: 102, mask: 103 },
    });
    const loader = new MlmDataLoader({ dataset, collator, batchSize: BATCH, numWorkers });
    for (let epoch = 0; epoch < 3; epoch++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      let samples = 0;
      let tokens = 0;
      let masked = 0;
      for await (const b of loader) {
        samples += b.numSequences;
        tokens += b.numTokens;
        masked += b.maskedPositions.length;
      }
      const wall = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      const cpu = (c.user + c.system) / 1e6;
      rows.push({
        workers: numWorkers,
        epoch,
        cold: epoch === 0,
        samples,
        wall_s: +wall.toFixed(3),
        cpu_s: +cpu.toFixed(3),
        samples_per_s: Math.round(samples / wall),
        samples_per_cpu_s: Math.round(samples / cpu),
        tokens_per_s: Math.round(tokens / wall),
        mask_rate: +(masked / tokens).toFixed(4),
      });
    }
    await dataset.close();
  }
  console.log("workers epoch  cold   samples   wall s    cpu s   samples/s  samples/cpu-s   masked/token");
  for (const r of rows)
    console.log(
      `${String(r.workers).padStart(7)} ${String(r.epoch).padStart(5)} ${String(r.cold).padStart(5)} ${String(r.samples).padStart(9)} ${r.wall_s.toFixed(3).padStart(8)} ${r.cpu_s.toFixed(3).padStart(8)} ${String(r.samples_per_s).padStart(11)} ${String(r.samples_per_cpu_s).padStart(14)} ${String(r.mask_rate).padStart(14)}`,
    );
  console.log(JSON.stringify({ bench: "data-loader", seq_len: SEQ, batch_size: BATCH, results: rows }));
} finally {
  await rm(dir, { recursive: true, force: true });
}
