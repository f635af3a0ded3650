// The data and model commands as the `mbert` binary runs them: exact token ids
// from the bert-base-uncased tokenizer, shard + verify (and a corrupted shard
// named on exit 1), check-parity on a reference fixture and on a broken case.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { main } from "../src/index.js";
import { sink } from "./sink.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const shared = process.env.MBERT_SHARED ?? path.resolve(repoRoot, "../shared");
const tokenizerJson = path.join(shared, "data/tokenizers/bert-base-uncased/tokenizer.json");
const fixture = path.join(shared, "fixtures/mosaic-bert-mlm-tiny");
const haveTokenizer = fs.existsSync(tokenizerJson);
const haveFixture = fs.existsSync(path.join(fixture, "model.safetensors"));
if (!haveTokenizer) console.warn(`SKIPPED tokenize/shard command tests: no tokenizer at ${tokenizerJson}`);
if (!haveFixture) console.warn(`SKIPPED check-parity command tests: no fixture at ${fixture}`);

async function run(argv: string[]) {
  const out = sink();
  const err = sink();
  const code = await main(argv, out, err);
  return { code, out: out.text, err: err.text };
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "mbert-cmd-"));

describe.skipIf(!haveTokenizer)("mbert tokenize / shard", () => {
  it("tokenize prints the bert-base-uncased ids of each line", async () => {
    const dir = tmp();
    const text = path.join(dir, "in.txt");
    fs.writeFileSync(text, "hello world\nHello, World!\n");
    const r = await run(["tokenize", "--tokenizer", tokenizerJson, text]);
    expect(r.code).toBe(0);
    const lines = r.out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as number[]);
    expect(lines[0]).toEqual([101, 7592, 2088, 102]);
    expect(lines[1]).toEqual([101, 7592, 1010, 2088, 999, 102]);
    const missing = await run(["tokenize", "--tokenizer", tokenizerJson]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/^error: --tokenizer and one text file are required/);
  });

  it("shard writes shards that verify ok; a flipped byte fails verify naming the shard", async () => {
    const dir = tmp();
    const corpus = path.join(dir, "corpus.txt");
    const lines: string[] = [];
    for (let i = 0; i < 200; i++)
      lines.push(`sentence number ${i} says the quick brown fox jumps over ${i % 7} dogs.`);
    fs.writeFileSync(corpus, `${lines.join("\n")}\n`);
    const outDir = path.join(dir, "shards");
    const s = await run([
      "shard",
      "--tokenizer",
      tokenizerJson,
      "--input",
      corpus,
      "--out",
      outDir,
      "--max-seq-len",
      "32",
      "--shard-size-bytes",
      "4000",
      "--workers",
      "0",
    ]);
    expect(s.code, s.err).toBe(0);
    const written = JSON.parse(s.out.trim().split("\n")[0]!) as { shards: number; samples: number };
    expect(written.samples).toBe(200);
    expect(written.shards).toBeGreaterThan(1);

    const ok = await run(["shard", "verify", outDir]);
    expect(ok.code, ok.err).toBe(0);
    const report = JSON.parse(ok.out.trim()) as { ok: boolean; shards: number; samples: number };
    expect(report).toMatchObject({ ok: true, shards: written.shards, samples: 200 });

    const index = JSON.parse(fs.readFileSync(path.join(outDir, "index.json"), "utf8")) as {
      shards: { file: string }[];
    };
    const victim = index.shards[1]!.file;
    const file = path.join(outDir, victim);
    const bytes = fs.readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    fs.writeFileSync(file, bytes);
    const bad = await run(["shard", "verify", outDir]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain(victim);
    expect(bad.err).not.toMatch(/\n\s+at /);
    expect(JSON.parse(bad.out.trim())).toMatchObject({ ok: false });
  });
});

describe.skipIf(!haveFixture)("mbert check-parity", () => {
  it("passes on the MosaicBERT MLM fixture", async () => {
    const r = await run(["check-parity", fixture]);
    const lines = r.out.trim().split("\n");
    const last = JSON.parse(lines.at(-1)!) as { pass: boolean; case: string };
    expect(last.pass).toBe(true);
    expect(last.case).toBe("mosaic-bert-mlm-tiny");
    expect(r.code).toBe(0);
  });

  it("a broken case folder exits nonzero with a one-line message", async () => {
    const dir = path.join(tmp(), "broken-case");
    fs.mkdirSync(dir);
    for (const f of fs.readdirSync(fixture)) fs.copyFileSync(path.join(fixture, f), path.join(dir, f));
    const weights = path.join(dir, "model.safetensors");
    fs.truncateSync(weights, Math.floor(fs.statSync(weights).size / 2));
    const r = await run(["check-parity", dir]);
    expect(r.code).not.toBe(0);
    const line = JSON.parse(r.out.trim()) as { pass: boolean; error: string; case: string };
    expect(line).toMatchObject({ pass: false, case: "broken-case" });
    expect(line.error).toMatch(/model\.safetensors/);
    expect(r.out + r.err).not.toMatch(/\n\s+at /);

    const missing = await run(["check-parity", path.join(dir, "nope")]);
    expect(missing.code).not.toBe(0);
    expect((JSON.parse(missing.out.trim()) as { pass: boolean }).pass).toBe(false);
    expect(missing.out + missing.err).not.toMatch(/\n\s+at /);
  });
});

describe("mbert glue", () => {
  it("--help prints its usage", async () => {
    const r = await run(["glue", "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^usage: mbert glue/);
  });
});
