// Inputs for the exactness tests of the fast WordPiece encoder: the same
// strings go through it and through @huggingface/tokenizers, and every id
// must agree.

import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TextTokenizer } from "@mbert/data";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
/** The shared data folder (GLUE, tokenizers): MBERT_SHARED, else ../shared beside the repository. */
export const SHARED = process.env.MBERT_SHARED ?? resolve(repoRoot, "../shared");
export const GLUE_DIR = join(SHARED, "data", "glue");
export const BERT_UNCASED = join(SHARED, "data", "tokenizers", "bert-base-uncased", "tokenizer.json");

/** Pair columns of the GLUE pair tasks' dev.tsv (0-based), header row skipped. */
const PAIR_COLUMNS: Record<string, [number, number]> = {
  MRPC: [3, 4],
  QNLI: [1, 2],
  RTE: [1, 2],
  "STS-B": [7, 8],
};

export interface GlueDev {
  /** Every tab-separated field of every line of every dev.tsv (sentences, headers, ids, labels). */
  fields: string[];
  /** The sentence pairs of the pair tasks. */
  pairs: Array<[string, string]>;
  files: number;
}

/** GLUE dev sets, or null when the folder is absent. */
export function readGlueDev(): GlueDev | null {
  if (!existsSync(GLUE_DIR)) return null;
  const fields: string[] = [];
  const pairs: Array<[string, string]> = [];
  let files = 0;
  for (const task of readdirSync(GLUE_DIR).sort()) {
    const file = join(GLUE_DIR, task, "dev.tsv");
    if (!existsSync(file)) continue;
    files++;
    const lines = readFileSync(file, "utf8").split(/\r?\n/);
    const cols = PAIR_COLUMNS[task];
    lines.forEach((line, i) => {
      const f = line.split("\t");
      for (const x of f) fields.push(x);
      if (cols && i > 0 && f.length > cols[1]) pairs.push([f[cols[0]]!, f[cols[1]]!]);
    });
  }
  return { fields, pairs, files };
}

/** sfc32, so the synthetic strings are the same every run. */
function rng(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  return () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/** Pieces the synthetic texts are made of: each exercises one rule of normalization or pre-tokenization. */
const PIECES: string[] = [
  // plain words, case, digits, ASCII punctuation
  "the",
  "The",
  "THE",
  "Hello",
  "world",
  "unaffable",
  "tokenization",
  "don't",
  "U.S.A.",
  "e-mail",
  "3.14159",
  "1,000,000",
  "$5",
  "a+b=c",
  "x<y>z",
  "#hashtag",
  "@user",
  "foo_bar",
  "~tilde",
  "`tick`",
  "[",
  "]",
  "(",
  ")",
  "{",
  "}",
  "|",
  "\\",
  "/",
  "^",
  "&",
  "*",
  "%",
  "!",
  "?",
  ".",
  ",",
  ";",
  ":",
  "'",
  '"',
  // accents, precomposed and combining; ligatures; special casing
  "café",
  "CAFÉ",
  "naïve",
  "Ångström",
  "e\u0301",
  "E\u0301",
  "\u0301",
  "a\u0308\u0323",
  "a\u0323\u0308",
  "résumé",
  "Straße",
  "ẞ",
  "ﬁnance",
  "ǅemal",
  "İstanbul",
  "I\u0307",
  "Kelvin\u212A",
  "\u212Bngstrom",
  "ΟΔΟΣ",
  "ΣΑΣ.Α",
  "σς",
  "Σ",
  "ὈΔΥΣΣΕΎΣ",
  "Ωmega",
  "ﬃ",
  "Ⅻ",
  "①",
  "²",
  "½",
  // CJK (BMP, compatibility, astral), Hangul, kana
  "中文",
  "漢字テスト",
  "㐀㐁",
  "\uF900\uFA0B",
  "𠀀𠀁",
  "한국어",
  "カタカナ",
  "ｶﾀｶﾅ",
  "ひらがな",
  // other scripts (Mc combining marks, RTL)
  "हिन्दी",
  "தமிழ்",
  "العربية",
  "עברית",
  "ไทย",
  "Việt Nam",
  "Ελληνικά",
  "русский",
  "ՀԱՅ",
  // emoji: ZWJ sequences, modifiers, flags, tag sequences, keycaps
  "😀",
  "👍🏽",
  "👨\u200D👩\u200D👧",
  "🇫🇷",
  "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
  "1\uFE0F\u20E3",
  // controls and format characters
  "\u0000",
  "\u0001",
  "\u0007",
  "\u001F",
  "\u007F",
  "\u0085",
  "\u009F",
  "\uFFFD",
  "\u200B",
  "\u200D",
  "\u00AD",
  "\uFEFF",
  "\u2060",
  "\u061C",
  "\uE000",
  "\u{F0000}",
  "\u{E0001}",
  "\uD800",
  "\uDC00",
  "a\uD83Db",
  // Unicode punctuation and symbols
  "“quoted”",
  "‘single’",
  "—",
  "–",
  "…",
  "«guillemets»",
  "¿qué?",
  "¡sí!",
  "、",
  "。",
  "・",
  "‐",
  "‧",
  "§",
  "¶",
  "†",
  "‰",
  "⁂",
  "\u{10100}",
  "\u{1F000}",
  "€",
  "£",
  "±",
  "™",
  "©",
  "°",
  "√",
  "∞",
  "←",
  "♥",
  // added tokens inside text
  "[CLS]",
  "[SEP]",
  "[MASK]",
  "[mask]",
  "[UNK]",
  "[PAD]",
  "x[MASK]y",
  "[MA\u0000SK]",
  "[[MASK]]",
  "[MASK",
];
const SPACES = [
  " ",
  " ",
  " ",
  "  ",
  "\t",
  "\n",
  "\r\n",
  "\u000B",
  "\u000C",
  "\u00A0",
  "\u1680",
  "\u2000",
  "\u2003",
  "\u200A",
  "\u2028",
  "\u2029",
  "\u202F",
  "\u205F",
  "\u3000",
  "",
];

/** Seeded synthetic hard cases, plus fixed edge cases (empty, whitespace only, long words). */
export function syntheticStrings(count: number, seed = 1): string[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const out: string[] = [
    "",
    " ",
    "\t\n\r ",
    "\u00A0\u3000",
    "\u0000\u0001",
    "\uFFFD",
    "a".repeat(99),
    "a".repeat(100),
    "a".repeat(101),
    "x".repeat(5000),
    `${"é".repeat(100)}`,
    `${"e\u0301".repeat(100)}`,
    `${"E\u0301".repeat(60)} end`,
    `${"😀".repeat(100)}`,
    `${"😀".repeat(101)}`,
    `${"中".repeat(300)}`,
    `${"ab".repeat(60)}-${"cd".repeat(60)}`,
    "[MA\u0000SK]",
    "[CLS]",
    " [SEP] ",
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
  ];
  while (out.length < count) {
    const n = 1 + Math.floor(r() * 24);
    let s = "";
    for (let i = 0; i < n; i++) {
      const p = pick(PIECES);
      // Glue pieces together sometimes, to make new words around the rules.
      s += r() < 0.3 ? p : p + pick(SPACES);
    }
    out.push(s);
  }
  return out;
}

/** One string per BMP code unit, and astral code points (emoji and tag blocks whole, the rest sampled). */
export function codePointStrings(): string[] {
  const out: string[] = [];
  for (let u = 0; u < 0x10000; u++) {
    const c = String.fromCharCode(u);
    out.push(`Ab${c}cD ${c}`);
  }
  const astral = (cp: number): void => {
    const c = String.fromCodePoint(cp);
    out.push(`Ab${c}cD ${c}`);
  };
  for (let cp = 0x1f000; cp < 0x1fb00; cp++) astral(cp);
  for (let cp = 0xe0000; cp < 0xe0080; cp++) astral(cp);
  for (let cp = 0x10000; cp < 0x110000; cp += 97) astral(cp);
  return out;
}

export interface Mismatch {
  text: string;
  fast: number[] | string[];
  reference: number[] | string[];
}

interface Comparison {
  compared: number;
  mismatches: Mismatch[];
  mismatchCount: number;
}

/** Run `f` on every string with both tokenizers; the mismatches (at most `keep`) and how many were compared. */
function compareWith(
  f: (tok: TextTokenizer, text: string) => number[] | string[],
  fast: TextTokenizer,
  reference: TextTokenizer,
  texts: readonly string[],
  keep: number,
): Comparison {
  const mismatches: Mismatch[] = [];
  let mismatchCount = 0;
  for (const text of texts) {
    const a = f(fast, text);
    const b = f(reference, text);
    if (!sameArray<number | string>(a, b)) {
      mismatchCount++;
      if (mismatches.length < keep) mismatches.push({ text, fast: a, reference: b });
    }
  }
  return { compared: texts.length, mismatches, mismatchCount };
}

/** Encode every string with both tokenizers and compare the ids. */
export function compareIds(
  fast: TextTokenizer,
  reference: TextTokenizer,
  texts: readonly string[],
  keep = 5,
): Comparison {
  return compareWith((tok, text) => tok.tokenizeToIds(text), fast, reference, texts, keep);
}

/** The same for the words of the pre-tokenizer (normalizer included). */
export function comparePreTokenize(
  fast: TextTokenizer,
  reference: TextTokenizer,
  texts: readonly string[],
  keep = 5,
): Comparison {
  return compareWith((tok, text) => tok.preTokenize(text), fast, reference, texts, keep);
}

export function sameArray<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Every k-th element. */
export function every<T>(xs: readonly T[], k: number, offset = 0): T[] {
  const out: T[] = [];
  for (let i = offset; i < xs.length; i += k) out.push(xs[i]!);
  return out;
}
