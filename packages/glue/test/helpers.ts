// Shared helpers of the @mbert/glue tests: where the real GLUE files are, a
// tiny word-level tokenizer, and a synthetic-but-learnable task in a GLUE format.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { BERT_SPECIAL_TOKENS, TextTokenizer, bertTokenizerJson } from "@mbert/data";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/** The shared data folder (real GLUE files, the bert-base-uncased tokenizer). */
export const SHARED = process.env.MBERT_SHARED ?? path.resolve(repoRoot, "../shared");
export const GLUE_DIR = path.join(SHARED, "data", "glue");
export const BERT_TOKENIZER = path.join(SHARED, "data", "tokenizers", "bert-base-uncased", "tokenizer.json");
export const HAVE_SHARED = fs.existsSync(GLUE_DIR);
if (!HAVE_SHARED) {
  console.warn(
    `\n!!! ${GLUE_DIR} is absent: the tests on the real GLUE files are SKIPPED. Set MBERT_SHARED to the shared folder.\n`,
  );
}

export function tmpDir(prefix = "mbert-glue-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Words of the synthetic tasks; "good" is the signal word. */
export const WORDS = Array.from({ length: 40 }, (_, i) => `w${i}`);
export const SIGNAL = "good";

/** A word-level BERT tokenizer over the specials, WORDS and SIGNAL (46 ids). */
export function tinyTokenizer(): TextTokenizer {
  const vocab = [...BERT_SPECIAL_TOKENS, ...WORDS, SIGNAL];
  return TextTokenizer.fromJsonText(JSON.stringify(bertTokenizerJson(vocab)), "<tiny tokenizer>");
}

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n sentences of 4-9 random words; label 1 exactly when SIGNAL is among them (half of them). */
export function signalSentences(n: number, seed: number): { text: string; label: number }[] {
  const r = rng(seed);
  const out: { text: string; label: number }[] = [];
  for (let i = 0; i < n; i++) {
    const len = 4 + Math.floor(r() * 6);
    const words = Array.from({ length: len }, () => WORDS[Math.floor(r() * WORDS.length)]!);
    const label = i % 2;
    if (label === 1) words[Math.floor(r() * len)] = SIGNAL;
    out.push({ text: words.join(" "), label });
  }
  return out;
}

/** Writes an SST-2-format folder (`SST-2/train.tsv`, `SST-2/dev.tsv`) of the signal task. */
export function writeSignalSst2(dir: string, nTrain: number, nDev: number): void {
  fs.mkdirSync(path.join(dir, "SST-2"), { recursive: true });
  const write = (file: string, rows: { text: string; label: number }[]) =>
    fs.writeFileSync(
      path.join(dir, "SST-2", file),
      `sentence\tlabel\n${rows.map((r) => `${r.text}\t${r.label}`).join("\n")}\n`,
    );
  write("train.tsv", signalSentences(nTrain, 1));
  write("dev.tsv", signalSentences(nDev, 2));
}
