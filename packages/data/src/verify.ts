// Re-check shards against their index.json: presence, size, sha256, and that
// each decodes to the recorded sample and token counts.

import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  DataError,
  IndexInvalid,
  ShardCorrupt,
  ShardHashMismatch,
  ShardMissing,
  ShardSizeMismatch,
  TokenizerMismatch,
} from "./errors.js";
import { sha256Bytes } from "./hash.js";
import { type ShardData, type ShardEntry, type ShardIndex, decodeShard, parseIndex } from "./shard-format.js";

export interface VerifyResult {
  shards: number;
  samples: number;
  tokens: number;
  ok: boolean;
}

export interface VerifyOptions {
  /** Expected tokenizer sha256 (e.g. TextTokenizer.sha256); a different one is a TokenizerMismatch. */
  tokenizerSha256?: string;
}

/** Read and validate <dir>/index.json. */
export async function readShardIndex(dir: string): Promise<ShardIndex> {
  const file = join(dir, "index.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new IndexInvalid(
      file,
      `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      err,
    );
  }
  return parseIndex(text, file);
}

/**
 * Check one shard's bytes against its index entry and return them decoded;
 * throws the typed error naming the file.
 */
export function checkShardBytes(bytes: Uint8Array, entry: ShardEntry, index: ShardIndex): ShardData {
  if (bytes.length !== entry.bytes) throw new ShardSizeMismatch(entry.file, entry.bytes, bytes.length);
  const h = sha256Bytes(bytes);
  if (h !== entry.sha256) throw new ShardHashMismatch(entry.file, entry.sha256, h);
  return decodeShardEntry(bytes, entry, index);
}

/** Decode bytes whose size and sha256 already match the entry, checking the sample and token counts. */
export function decodeShardEntry(bytes: Uint8Array, entry: ShardEntry, index: ShardIndex): ShardData {
  const data = decodeShard(bytes, entry.file);
  if (data.numSamples !== entry.samples)
    throw new ShardCorrupt(entry.file, `holds ${data.numSamples} samples, index.json says ${entry.samples}`);
  if (!index.raw_text) {
    const tokens = data.offsets[data.numSamples]! - data.offsets[0]!;
    if (tokens !== entry.tokens)
      throw new ShardCorrupt(entry.file, `holds ${tokens} tokens, index.json says ${entry.tokens}`);
  }
  return data;
}

/**
 * Verify every shard of a shard folder. A folder without index.json but with
 * train/ and val/ (a split corpus) verifies both. Throws the first fault as a
 * typed DataError naming the shard.
 */
export async function verifyShards(dir: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const dirs: string[] = [];
  try {
    await stat(join(dir, "index.json"));
    dirs.push(dir);
  } catch {
    for (const sub of ["train", "val"]) {
      try {
        await stat(join(dir, sub, "index.json"));
        dirs.push(join(dir, sub));
      } catch {}
    }
    if (dirs.length === 0) dirs.push(dir); // let readShardIndex report the missing index.json
  }
  const total: VerifyResult = { shards: 0, samples: 0, tokens: 0, ok: true };
  for (const d of dirs) {
    const index = await readShardIndex(d);
    if (options.tokenizerSha256 && index.tokenizer && index.tokenizer.sha256 !== options.tokenizerSha256)
      throw new TokenizerMismatch(join(d, "index.json"), index.tokenizer.sha256, options.tokenizerSha256);
    for (const entry of index.shards) {
      const path = join(d, entry.file);
      let bytes: Uint8Array;
      try {
        bytes = await readFile(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new ShardMissing(entry.file, d);
        throw new DataError(
          "SHARD_UNREADABLE",
          `${entry.file}: cannot read it (${(err as Error).message})`,
          entry.file,
          { cause: err },
        );
      }
      checkShardBytes(bytes, entry, index);
      total.shards++;
      total.samples += entry.samples;
      total.tokens += entry.tokens;
    }
  }
  return total;
}
