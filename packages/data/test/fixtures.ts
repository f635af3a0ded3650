// Small shard sets for tests, written directly (no tokenization) so tests stay fast.

import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SHARD_FORMAT, SHARD_FORMAT_VERSION, encodeShard, shardFileName, type ShardIndex } from "@mbert/data";

export const FAKE_TOKENIZER_SHA = "a".repeat(64);

/**
 * Write shards whose sample with global id g is [2, 1000 + g % 20000, ..., 3]:
 * its second token identifies it, and its length varies with g (3..12 tokens).
 */
export async function writeSyntheticShards(dir: string, samplesPerShard: number[]): Promise<ShardIndex> {
  await mkdir(dir, { recursive: true });
  const shards: ShardIndex["shards"] = [];
  let g = 0;
  for (const [i, n] of samplesPerShard.entries()) {
    const offsets = new Int32Array(n + 1);
    const values: number[] = [];
    for (let k = 0; k < n; k++, g++) {
      const len = 3 + (g % 10);
      values.push(2, 1000 + (g % 20000));
      for (let t = 2; t < len - 1; t++) values.push(10 + ((g * 7 + t) % 500));
      values.push(3);
      offsets[k + 1] = values.length;
    }
    const bytes = encodeShard({ offsets, values: Int32Array.from(values) });
    const file = shardFileName(i);
    await writeFile(join(dir, file), bytes);
    shards.push({
      file,
      samples: n,
      tokens: values.length,
      bytes: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
    });
  }
  const index: ShardIndex = {
    format: SHARD_FORMAT,
    version: SHARD_FORMAT_VERSION,
    split: null,
    columns: [{ name: "input_ids", type: "list<int32>" }],
    tokenizer: { sha256: FAKE_TOKENIZER_SHA, vocab_size: 30522 },
    max_seq_len: 16,
    packed: false,
    raw_text: false,
    samples: g,
    tokens: shards.reduce((a, s) => a + s.tokens, 0),
    shards,
  };
  await writeFile(join(dir, "index.json"), JSON.stringify(index, null, 2));
  return index;
}

/** The global id a synthetic sample carries. */
export function idOf(inputIds: ArrayLike<number>): number {
  return inputIds[1]! - 1000;
}
