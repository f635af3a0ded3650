// Tokenizing and sharding plain text, and training a WordPiece vocabulary, on
// the Brown corpus (~1.1M words, embedded). Prints a table and a JSON line.
// Sharding runs with @huggingface/tokenizers ("hf") and with our fast BERT
// WordPiece encoder ("fast", chosen by "auto"); both write the same shards.
// Run: node bench/data-shard.mjs [--tokenizer path/to/tokenizer.json]
// (build first: pnpm --filter @mbert/data build)

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  TextTokenizer,
  readBrown,
  saveTokenizerJson,
  shard,
  trainWordPiece,
} from "../packages/data/dist/index.js";

const ti = process.argv.indexOf("--tokenizer");
const tokenizer =
  ti > 0 ? process.argv[ti + 1] : "../shared/data/tokenizers/bert-base-uncased/tokenizer.json";

const dir = await mkdtemp(join(tmpdir(), "mbert-bench-shard-"));
try {
  // The corpus as a plain-text file (one Brown document per paragraph), so the
  // bench measures the text path a user's corpus takes.
  const docs = [];
  let words = 0;
  for await (const d of readBrown()) {
    docs.push(d.segments.join("\n"));
    for (const s of d.segments) words += s.split(/\s+/).length;
  }
  const text = docs.join("\n\n");
  const corpus = join(dir, "brown.txt");
  await writeFile(corpus, text);
  const mb = Buffer.byteLength(text) / 1e6;

  const rows = [];
  // WordPiece training, one thread.
  {
    const lines = docs.flatMap((d) => d.split("\n"));
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const trained = await trainWordPiece(lines, { vocabSize: 8000 });
    const wall = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    await saveTokenizerJson(join(dir, "brown-tokenizer.json"), trained);
    rows.push({
      task: "train WordPiece (vocab 8000)",
      workers: 1,
      mb,
      wall_s: +wall.toFixed(2),
      cpu_s: +((c.user + c.system) / 1e6).toFixed(2),
      vocab: trained.vocab.length,
      learned: trained.learned,
    });
  }
  // Encoding alone (tokenizeToIds over every line, one thread, second pass
  // timed: the fast encoder's word cache is warm, as it is after the first MBs).
  for (const encoder of ["hf", "fast"]) {
    const tok = await TextTokenizer.fromFile(tokenizer, { encoder });
    const lines = docs.flatMap((d) => d.split("\n"));
    for (const l of lines) tok.tokenizeToIds(l);
    const t0 = performance.now();
    let tokens = 0;
    for (const l of lines) tokens += tok.tokenizeToIds(l).length;
    const wall = (performance.now() - t0) / 1000;
    rows.push({
      task: `encode only (in-thread, ${encoder})`,
      encoder,
      workers: 1,
      mb,
      wall_s: +wall.toFixed(2),
      mb_per_s: +(mb / wall).toFixed(2),
      mb_per_s_per_worker: +(mb / wall).toFixed(2),
      samples: lines.length,
      tokens,
    });
  }
  // "hf" rows: @huggingface/tokenizers, the encoder before the fast one (same ids).
  for (const [workers, label, encoder] of [
    [0, "in-thread", "hf"],
    [1, "1 worker", "hf"],
    [0, "in-thread", "auto"],
    [1, "1 worker", "auto"],
    [2, "2 workers", "auto"],
  ]) {
    const out = join(dir, `shards-${encoder}-${workers}`);
    const c0 = process.cpuUsage();
    const r = await shard({
      tokenizer,
      inputs: [corpus],
      outDir: out,
      format: "paragraphs",
      maxSeqLen: 128,
      pack: true,
      workers,
      encoder,
    });
    const c = process.cpuUsage(c0);
    const cpu = (c.user + c.system) / 1e6; // all threads of this process
    const idx = r.splits[0].index;
    rows.push({
      task: `shard --pack (${label}, ${r.encoder})`,
      encoder: r.encoder,
      workers: Math.max(1, workers),
      mb: +(r.textBytes / 1e6).toFixed(2),
      wall_s: +r.seconds.toFixed(2),
      mb_per_s: +(r.textBytes / 1e6 / r.seconds).toFixed(2),
      mb_per_s_per_worker: +(r.textBytes / 1e6 / r.seconds / Math.max(1, workers)).toFixed(2),
      cpu_s: +cpu.toFixed(2),
      mb_per_cpu_s: +(r.textBytes / 1e6 / cpu).toFixed(2),
      samples: idx.samples,
      tokens: idx.tokens,
    });
  }
  console.log(
    `Brown corpus: ${words} words, ${mb.toFixed(2)} MB of text; machine load may vary (cores: shared)`,
  );
  console.log("task                                        wall s    MB/s  MB/s/worker  MB/cpu-s   notes");
  for (const r of rows) {
    const notes = r.vocab
      ? `vocab ${r.vocab}, ${r.learned} learned, cpu ${r.cpu_s} s`
      : `${r.samples} samples, ${r.tokens} tokens`;
    console.log(
      `${r.task.padEnd(42)} ${r.wall_s.toFixed(2).padStart(7)} ${(r.mb_per_s ?? r.mb / r.wall_s).toFixed(2).padStart(7)} ${String(r.mb_per_s_per_worker ?? "").padStart(12)} ${String(r.mb_per_cpu_s ?? "").padStart(9)}   ${notes}`,
    );
  }
  console.log(JSON.stringify({ bench: "data-shard", words, mb: +mb.toFixed(3), results: rows }));
} finally {
  await rm(dir, { recursive: true, force: true });
}
