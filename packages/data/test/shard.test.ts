import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DataError,
  IndexInvalid,
  ShardHashMismatch,
  ShardMissing,
  ShardSizeMismatch,
  StreamingDataset,
  TokenizerError,
  TokenizerMismatch,
  TextTokenizer,
  brownFileIds,
  brownSentence,
  decodeShard,
  readBrown,
  readTextFile,
  shard,
  shardCommand,
  trainWordPiece,
  verifyShards,
  emptyCorpusStats,
} from "@mbert/data";
import { BERT_UNCASED as BERT } from "./exactness.js";
import { StringSink } from "./helpers.js";

const PKG = join(import.meta.dirname, "..");

let dir: string;
let corpus: string; // a plain-text corpus made from a Brown subset, one document per line
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mbert-data-shard-"));
  const lines: string[] = [];
  for await (const d of readBrown({ limit: 12 }))
    for (let i = 0; i < d.segments.length; i += 4) lines.push(d.segments.slice(i, i + 4).join(" "));
  corpus = join(dir, "corpus.txt");
  await writeFile(corpus, `${lines.join("\n")}\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sub = async (name: string) => {
  const d = join(dir, name);
  await mkdir(d, { recursive: true });
  return d;
};

describe("Brown reader", () => {
  it("has 500 documents and ~1.1M words, tags stripped", async () => {
    expect((await brownFileIds()).length).toBe(500);
    const first = await readBrown({ files: ["ca01"] }).next();
    const s0 = first.value!.segments[0]!;
    expect(s0).toBe(
      'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that any irregularities took place.',
    );
    expect(brownSentence("He/pps said/vbd ,/, ``/`` yes/rb ''/'' ./.")).toBe('He said, "yes".');
  });
});

describe("corpus bad lines", () => {
  it("counts empty lines and invalid UTF-8 and reports where", async () => {
    const f = join(dir, "bad.txt");
    await writeFile(
      f,
      Buffer.concat([
        Buffer.from("good one\n\n"),
        Buffer.from([0x66, 0xff, 0xfe, 0x0a]),
        Buffer.from("good two\n"),
      ]),
    );
    const stats = emptyCorpusStats();
    const docs = [];
    for await (const d of readTextFile(f, { stats })) docs.push(d);
    expect(docs.map((d) => d.segments[0])).toEqual(["good one", "good two"]);
    expect(stats.badLines.empty).toBe(1);
    expect(stats.badLines.invalidUtf8).toBe(1);
    expect(stats.badExamples).toEqual(["bad.txt:2: empty", "bad.txt:3: invalidUtf8"]);
  });
  it("JSONL: counts invalid JSON and missing text", async () => {
    const f = join(dir, "c.jsonl");
    await writeFile(f, '{"text":"a b"}\n{oops\n{"title":"x"}\n{"text":"c\\nd"}\n');
    const stats = emptyCorpusStats();
    const docs = [];
    for await (const d of readTextFile(f, { stats })) docs.push(d);
    expect(docs.map((d) => d.segments)).toEqual([["a b"], ["c", "d"]]);
    expect(stats.badLines.invalidJson).toBe(1);
    expect(stats.badLines.missingText).toBe(1);
  });
  it("shard records the bad-line counts in index.json and the command reports them", async () => {
    const f = join(dir, "bad2.txt");
    await writeFile(f, Buffer.concat([Buffer.from("hello world\n\n"), Buffer.from([0xc3, 0x28, 0x0a])]));
    const out = await sub("badout");
    const err = new StringSink();
    const code = await shardCommand(
      ["--tokenizer", BERT, "--input", f, "--out", out, "--workers", "0"],
      new StringSink(),
      err,
    );
    expect(code).toBe(0);
    expect(err.text).toMatch(/skipped 2 bad line\(s\): 1 empty, 1 invalid UTF-8/);
    const index = JSON.parse(await readFile(join(out, "index.json"), "utf8"));
    expect(index.corpus.badLines).toMatchObject({ empty: 1, invalidUtf8: 1 });
    expect(index.samples).toBe(1);
  });
});

describe("shard", () => {
  it("an unreadable tokenizer file is a TokenizerError naming it", async () => {
    const missing = join(tmpdir(), "mbert-no-such-tokenizer.json");
    const run = shard({ tokenizer: missing, inputs: [corpus], outDir: await sub("no-tok"), workers: 0 });
    await expect(run).rejects.toBeInstanceOf(TokenizerError);
    await expect(run).rejects.toMatchObject({ code: "TOKENIZER_INVALID" });
    await expect(run).rejects.toThrow(/^TokenizerError: .*mbert-no-such-tokenizer\.json: cannot read it/);
  });

  it("writes Arrow shards and an index.json that verify", async () => {
    const out = await sub("plain");
    const res = await shard({
      tokenizer: BERT,
      inputs: [corpus],
      outDir: out,
      maxSeqLen: 32,
      shardSizeBytes: 20_000,
      workers: 0,
    });
    const index = res.splits[0]!.index;
    expect(index.format).toBe("mbert-shards");
    expect(index.version).toBe(1);
    expect(index.max_seq_len).toBe(32);
    expect(index.columns).toEqual([{ name: "input_ids", type: "list<int32>" }]);
    expect(index.tokenizer!.sha256).toBe((await TextTokenizer.fromFile(BERT)).sha256);
    expect(index.shards.length).toBeGreaterThan(2);
    const v = await verifyShards(out);
    expect(v).toEqual({
      shards: index.shards.length,
      samples: index.samples,
      tokens: index.tokens,
      ok: true,
    });
    const d = decodeShard(await readFile(join(out, index.shards[0]!.file)), index.shards[0]!.file);
    for (let i = 0; i < d.numSamples; i++) {
      const s = d.values.subarray(d.offsets[i]!, d.offsets[i + 1]!);
      expect(s.length).toBeLessThanOrEqual(32);
      expect(s[0]).toBe(101);
      expect(s[s.length - 1]).toBe(102);
    }
    const sink = new StringSink();
    expect(await shardCommand(["verify", out], sink)).toBe(0);
    expect(JSON.parse(sink.text)).toEqual({
      shards: index.shards.length,
      samples: index.samples,
      tokens: index.tokens,
      ok: true,
    });
  });

  it("packs consecutive segments up to max-seq-len", async () => {
    // Documents of one sentence per line, separated by blank lines.
    const paras = join(dir, "paras.txt");
    const docs: string[] = [];
    for await (const d of readBrown({ limit: 6 })) docs.push(d.segments.join("\n"));
    await writeFile(paras, docs.join("\n\n"));
    const out = await sub("packed");
    const res = await shard({
      tokenizer: BERT,
      inputs: [paras],
      outDir: out,
      maxSeqLen: 64,
      pack: true,
      workers: 0,
      format: "paragraphs",
    });
    const index = res.splits[0]!.index;
    expect(index.packed).toBe(true);
    const d = decodeShard(await readFile(join(out, index.shards[0]!.file)), "x");
    for (let i = 0; i < d.numSamples; i++) expect(d.offsets[i + 1]! - d.offsets[i]!).toBeLessThanOrEqual(64);
    // Whole sentences (~25 tokens in Brown) packed greedily into 64 tokens.
    const fill = index.tokens / (index.samples * 64);
    expect(fill).toBeGreaterThan(0.75);
    const unpacked = await shard({
      tokenizer: BERT,
      inputs: [paras],
      outDir: await sub("unpacked"),
      maxSeqLen: 64,
      workers: 0,
      format: "paragraphs",
    });
    expect(unpacked.splits[0]!.index.samples).toBeGreaterThan(1.5 * index.samples);
  });

  it("splits held-out documents deterministically by document hash", async () => {
    const a = await shard({
      tokenizer: BERT,
      inputs: [corpus],
      outDir: await sub("ho1"),
      holdoutFraction: 0.2,
      workers: 0,
    });
    const b = await shard({
      tokenizer: BERT,
      inputs: [corpus],
      outDir: await sub("ho2"),
      holdoutFraction: 0.2,
      workers: 0,
    });
    expect(a.splits.map((s) => s.split)).toEqual(["train", "val"]);
    const [train, val] = a.splits.map((s) => s.index);
    const frac = val!.samples / (train!.samples + val!.samples);
    expect(frac).toBeGreaterThan(0.08);
    expect(frac).toBeLessThan(0.35);
    expect(b.splits.map((s) => s.index.shards.map((e) => e.sha256))).toEqual(
      a.splits.map((s) => s.index.shards.map((e) => e.sha256)),
    );
    expect(existsSync(join(dir, "ho1", "train", "index.json"))).toBe(true);
    expect((await verifyShards(join(dir, "ho1"))).ok).toBe(true);
  });

  it("raw-text mode stores text and the reader tokenizes it", async () => {
    const out = await sub("raw");
    const res = await shard({ tokenizer: BERT, inputs: [corpus], outDir: out, rawText: true, maxSeqLen: 16 });
    expect(res.splits[0]!.index.columns).toEqual([{ name: "text", type: "utf8" }]);
    const tok = await TextTokenizer.fromFile(BERT);
    const ds = await StreamingDataset.open({ source: out, tokenizer: tok, shuffle: false });
    const [s0] = await ds.fetch(0, [0]);
    const firstLine = (await readFile(corpus, "utf8")).split("\n")[0]!;
    expect(Array.from(s0!.inputIds)).toEqual(tok.encode(firstLine, null, { maxLength: 16 }).ids);
    await ds.close();
  });

  it("resumes an interrupted run, keeping verified shards, with identical output", async () => {
    const ref = await shard({
      tokenizer: BERT,
      inputs: [corpus],
      outDir: await sub("ref"),
      shardSizeBytes: 15_000,
      workers: 0,
    });
    const out = await sub("resume");
    let n = 0;
    await expect(
      shard({
        tokenizer: BERT,
        inputs: [corpus],
        outDir: out,
        shardSizeBytes: 15_000,
        workers: 0,
        onShard: () => {
          if (++n === 3) throw new Error("interrupted");
        },
      }),
    ).rejects.toThrow("interrupted");
    expect(existsSync(join(out, "index.json"))).toBe(false);
    const res = await shard({
      tokenizer: BERT,
      inputs: [corpus],
      outDir: out,
      shardSizeBytes: 15_000,
      workers: 0,
    });
    expect(res.splits[0]!.resumedShards).toBe(3);
    expect(res.splits[0]!.index.shards).toEqual(ref.splits[0]!.index.shards);
    // A complete output is not rewritten at all.
    const again = await shard({
      tokenizer: BERT,
      inputs: [corpus],
      outDir: out,
      shardSizeBytes: 15_000,
      workers: 0,
    });
    expect(again.splits[0]!.writtenShards).toBe(0);
  });

  it("worker threads produce the same shards as in-thread tokenization", async () => {
    // Build the worker entry the way the package build does, then run both paths.
    const { build } = await import("tsup");
    const outDir = join(PKG, "node_modules", ".cache", "shard-worker-test");
    await build({
      entry: [join(PKG, "src", "shard-worker.ts")],
      outDir,
      format: ["esm"],
      target: "node20",
      silent: true,
      clean: true,
      dts: false,
      sourcemap: false,
      external: ["apache-arrow", "@huggingface/tokenizers"],
    });
    const script = pathToFileURL(join(outDir, "shard-worker.js"));
    const t = await shard({
      tokenizer: BERT,
      inputs: [corpus],
      outDir: await sub("threads"),
      workers: 2,
      workerScript: script,
      shardSizeBytes: 20_000,
    });
    const i = await shard({
      tokenizer: BERT,
      inputs: [corpus],
      outDir: await sub("inline"),
      workers: 0,
      shardSizeBytes: 20_000,
    });
    expect(t.tokenizedIn).toBe("threads");
    expect(i.tokenizedIn).toBe("inline");
    expect(t.splits[0]!.index.shards).toEqual(i.splits[0]!.index.shards);
  });
});

describe("faults are typed errors naming the file", () => {
  let good: string;
  beforeAll(async () => {
    good = await sub("faults-src");
    await shard({ tokenizer: BERT, inputs: [corpus], outDir: good, shardSizeBytes: 20_000, workers: 0 });
  });
  const copy = async (name: string) => {
    const d = await sub(name);
    const index = JSON.parse(await readFile(join(good, "index.json"), "utf8"));
    await writeFile(join(d, "index.json"), JSON.stringify(index));
    for (const s of index.shards) await writeFile(join(d, s.file), await readFile(join(good, s.file)));
    return { d, index };
  };

  it("a flipped byte: ShardHashMismatch, exit code 1 naming the shard", async () => {
    const { d, index } = await copy("flip");
    const f = join(d, index.shards[1].file);
    const bytes = await readFile(f);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    await writeFile(f, bytes);
    await expect(verifyShards(d)).rejects.toBeInstanceOf(ShardHashMismatch);
    await expect(verifyShards(d)).rejects.toThrow(/shard-00001\.arrow: sha256 differs from index.json/);
    const out = new StringSink();
    const err = new StringSink();
    expect(await shardCommand(["verify", d], out, err)).toBe(1);
    expect(JSON.parse(out.text)).toMatchObject({
      ok: false,
      file: "shard-00001.arrow",
      code: "SHARD_HASH_MISMATCH",
    });
    expect(err.text).toMatch(/shard-00001\.arrow/);
    const ds = await StreamingDataset.open({ source: d, shuffle: false });
    await expect(ds.fetch(0, [index.shards[0].samples])).rejects.toBeInstanceOf(ShardHashMismatch);
    await ds.close();
  });

  it("a truncated shard: ShardSizeMismatch", async () => {
    const { d, index } = await copy("trunc");
    const f = join(d, index.shards[0].file);
    await truncate(f, (await stat(f)).size - 100);
    await expect(verifyShards(d)).rejects.toBeInstanceOf(ShardSizeMismatch);
    await expect(verifyShards(d)).rejects.toThrow(/shard-00000\.arrow/);
  });

  it("a missing shard: ShardMissing", async () => {
    const { d, index } = await copy("missing");
    await rm(join(d, index.shards[2].file));
    await expect(verifyShards(d)).rejects.toBeInstanceOf(ShardMissing);
    const ds = await StreamingDataset.open({ source: d, shuffle: false });
    const start = index.shards[0].samples + index.shards[1].samples;
    await expect(ds.fetch(0, [start])).rejects.toThrow(/ShardMissing: shard-00002\.arrow/);
    await ds.close();
  });

  it("a malformed index.json: IndexInvalid", async () => {
    const { d, index } = await copy("badindex");
    await writeFile(join(d, "index.json"), "{ not json");
    await expect(verifyShards(d)).rejects.toBeInstanceOf(IndexInvalid);
    await expect(StreamingDataset.open({ source: d })).rejects.toThrow(/index\.json: not valid JSON/);
    await writeFile(join(d, "index.json"), JSON.stringify({ ...index, format: "other" }));
    await expect(verifyShards(d)).rejects.toThrow(/format is "other"/);
    await writeFile(
      join(d, "index.json"),
      JSON.stringify({ ...index, shards: [{ ...index.shards[0], sha256: "zz" }] }),
    );
    await expect(verifyShards(d)).rejects.toThrow(/shards\[0\]\.sha256/);
    await rm(join(d, "index.json"));
    await expect(verifyShards(d)).rejects.toThrow(/index\.json: cannot read it/);
  });

  it("a tokenizer that does not match the shards: TokenizerMismatch", async () => {
    const other = await trainWordPiece(["a tiny corpus"], { vocabSize: 64 });
    const otherSha = TextTokenizer.fromJsonText(other.text).sha256;
    await expect(verifyShards(good, { tokenizerSha256: otherSha })).rejects.toBeInstanceOf(TokenizerMismatch);
    await expect(StreamingDataset.open({ source: good, tokenizerSha256: otherSha })).rejects.toThrow(
      /TokenizerMismatch: .*index\.json/,
    );
    const p = join(dir, "other-tokenizer.json");
    await writeFile(p, other.text);
    const err = new StringSink();
    expect(await shardCommand(["verify", good, "--tokenizer", p], new StringSink(), err)).toBe(1);
    expect(err.text).toMatch(/TokenizerMismatch/);
  });

  it("errors carry a code and are DataErrors", async () => {
    const { d } = await copy("codes");
    await rm(join(d, "shard-00000.arrow"));
    const e = await verifyShards(d).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DataError);
    expect((e as DataError).code).toBe("SHARD_MISSING");
    expect((e as DataError).file).toBe("shard-00000.arrow");
  });
});
