// Train a BERT WordPiece vocabulary and write it as a standard tokenizer.json.
//
// Like Hugging Face's WordPiece trainer, the vocabulary is grown by pair merges
// (BPE-style) over word counts: every word starts as its characters, with the
// "##" prefix on all but the first; the most frequent adjacent pair is merged
// until the vocabulary is full. Encoding then uses greedy longest-match-first
// WordPiece over that vocabulary.

import { TextTokenizer } from "./tokenizer.js";
import { writeFileAtomic } from "./fsutil.js";

export const BERT_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] as const;

/** Words longer than this (in code points) encode as [UNK]. */
const MAX_INPUT_CHARS_PER_WORD = 100;

export interface TrainWordPieceOptions {
  /** Target vocabulary size, specials included (default 8192). */
  vocabSize?: number;
  /** Round vocabSize up to a multiple of this (default 64, for GEMM-friendly shapes; 1 disables). */
  roundTo?: number;
  /** Pairs seen fewer times than this are never merged (default 2). */
  minFrequency?: number;
  /** Keep at most this many distinct characters; rarer ones become [UNK] (default 1000). */
  limitAlphabet?: number;
  /** Special tokens, in id order (default [PAD]=0,[UNK],[CLS],[SEP],[MASK]). */
  specialTokens?: readonly string[];
  /** Lowercase and strip accents (default true: "uncased"). */
  lowercase?: boolean;
}

export interface TrainedWordPiece {
  /** The tokenizer.json object (Hugging Face layout, as bert-base-uncased). */
  json: Record<string, unknown>;
  /** Its serialized text (compact JSON, as on the hub). */
  text: string;
  /** Tokens in id order. */
  vocab: string[];
  /** Number of tokens learned (not specials, not padding). */
  learned: number;
  /** Number of "[unusedN]" tokens added to reach the rounded size when the corpus ran out of merges. */
  padded: number;
  /** Distinct words counted. */
  words: number;
}

/** The tokenizer.json object for a BERT WordPiece vocabulary, laid out like bert-base-uncased's. */
export function bertTokenizerJson(
  vocab: readonly string[],
  options: { lowercase?: boolean; specialTokens?: readonly string[] } = {},
): Record<string, unknown> {
  const lowercase = options.lowercase ?? true;
  const specials = options.specialTokens ?? BERT_SPECIAL_TOKENS;
  const vocabObj: Record<string, number> = {};
  vocab.forEach((t, i) => {
    vocabObj[t] = i;
  });
  const idOf = (t: string): number => {
    const id = vocabObj[t];
    if (id === undefined) throw new Error(`bertTokenizerJson: special token ${t} is not in the vocab`);
    return id;
  };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((content) => ({
      id: idOf(content),
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: "BertNormalizer",
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase,
    },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } },
        { SpecialToken: { id: "[SEP]", type_id: 1 } },
      ],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [idOf("[CLS]")], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [idOf("[SEP]")], tokens: ["[SEP]"] },
      },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: {
      type: "WordPiece",
      unk_token: "[UNK]",
      continuing_subword_prefix: "##",
      max_input_chars_per_word: MAX_INPUT_CHARS_PER_WORD,
      vocab: vocabObj,
    },
  };
}

/** A binary max-heap of (count, pair key) with lazy deletion. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number {
    return this.counts.length;
  }
  private better(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }
  private swap(i: number, j: number): void {
    const c = this.counts[i]!;
    this.counts[i] = this.counts[j]!;
    this.counts[j] = c;
    const k = this.keys[i]!;
    this.keys[i] = this.keys[j]!;
    this.keys[j] = k;
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.better(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] | undefined {
    const n = this.counts.length;
    if (n === 0) return undefined;
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    this.swap(0, n - 1);
    this.counts.pop();
    this.keys.pop();
    const m = n - 1;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let b = i;
      if (l < m && this.better(l, b)) b = l;
      if (r < m && this.better(r, b)) b = r;
      if (b === i) break;
      this.swap(i, b);
      i = b;
    }
    return top;
  }
}

// Pair keys pack two symbol ids (< 2^21 each) into one safe integer.
const KEY_BASE = 2 ** 21;

/**
 * Train a WordPiece vocabulary on texts (any iterable of strings: lines, documents).
 * The result loads unchanged in Hugging Face tokenizers (Python/Rust) and @huggingface/tokenizers.
 */
export async function trainWordPiece(
  texts: Iterable<string> | AsyncIterable<string>,
  options: TrainWordPieceOptions = {},
): Promise<TrainedWordPiece> {
  const specials = [...(options.specialTokens ?? BERT_SPECIAL_TOKENS)];
  const roundTo = Math.max(1, options.roundTo ?? 64);
  const vocabSize = Math.ceil((options.vocabSize ?? 8192) / roundTo) * roundTo;
  const minFrequency = options.minFrequency ?? 2;
  const limitAlphabet = options.limitAlphabet ?? 1000;
  const lowercase = options.lowercase ?? true;

  // The normalizer and pre-tokenizer of the tokenizer.json we will write, so
  // training sees exactly the words encoding will see.
  const skeleton = TextTokenizer.fromJsonText(
    JSON.stringify(bertTokenizerJson(specials, { lowercase, specialTokens: specials })),
    "<trainer>",
  );

  // 1. Word counts.
  const wordCounts = new Map<string, number>();
  for await (const text of texts as AsyncIterable<string>) {
    for (const w of skeleton.preTokenize(text)) wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  }

  // 2. Alphabet: the most frequent characters (limitAlphabet), then as a first
  // character and as a "##" continuation as they occur.
  const charCounts = new Map<string, number>();
  for (const [w, c] of wordCounts) for (const ch of w) charCounts.set(ch, (charCounts.get(ch) ?? 0) + c);
  const keptChars = new Set(
    [...charCounts.entries()]
      .sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1))
      .slice(0, limitAlphabet)
      .map((e) => e[0]),
  );

  const symbols: string[] = [];
  const symbolId = new Map<string, number>();
  const sym = (s: string): number => {
    let id = symbolId.get(s);
    if (id === undefined) {
      id = symbols.length;
      symbols.push(s);
      symbolId.set(s, id);
    }
    return id;
  };
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [w, c] of wordCounts) {
    const chars = [...w];
    if (chars.length > MAX_INPUT_CHARS_PER_WORD || chars.some((ch) => !keptChars.has(ch))) continue; // encodes as [UNK] anyway
    words.push(chars.map((ch, i) => sym(i === 0 ? ch : `##${ch}`)));
    counts.push(c);
  }
  const alphabet = [...symbols].sort((x, y) => {
    const px = x.startsWith("##") ? 1 : 0;
    const py = y.startsWith("##") ? 1 : 0;
    return px - py || (x < y ? -1 : x > y ? 1 : 0);
  });

  // 3. Pair counts and where each pair occurs.
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPair = (key: number, wi: number, c: number): void => {
    pairCount.set(key, (pairCount.get(key) ?? 0) + c);
    let s = pairWords.get(key);
    if (!s) {
      s = new Set();
      pairWords.set(key, s);
    }
    s.add(wi);
  };
  for (let wi = 0; wi < words.length; wi++) {
    const w = words[wi]!;
    for (let i = 0; i + 1 < w.length; i++) addPair(w[i]! * KEY_BASE + w[i + 1]!, wi, counts[wi]!);
  }
  const heap = new PairHeap();
  for (const [k, c] of pairCount) heap.push(c, k);

  // 4. Merge until full.
  const vocabSet = new Set<string>([...specials, ...alphabet]);
  const merged: string[] = [];
  const target = vocabSize - vocabSet.size;
  while (merged.length < target) {
    const top = heap.pop();
    if (!top) break;
    const [c, key] = top;
    if (pairCount.get(key) !== c) continue; // stale entry
    if (c < minFrequency) break;
    const a = Math.floor(key / KEY_BASE);
    const b = key - a * KEY_BASE;
    const newTok = symbols[a]! + symbols[b]!.slice(2);
    const n = sym(newTok);
    if (!vocabSet.has(newTok)) {
      vocabSet.add(newTok);
      merged.push(newTok);
    }
    const touched = new Map<number, number>();
    const where = pairWords.get(key);
    pairWords.delete(key);
    pairCount.delete(key);
    if (!where) continue;
    for (const wi of where) {
      const w = words[wi]!;
      const wc = counts[wi]!;
      let i = 0;
      while (i + 1 < w.length) {
        if (w[i] === a && w[i + 1] === b) {
          // Remove pairs around (a, b), add pairs around n.
          if (i > 0) {
            const k1 = w[i - 1]! * KEY_BASE + a;
            pairCount.set(k1, pairCount.get(k1)! - wc);
            touched.set(k1, 1);
            const k2 = w[i - 1]! * KEY_BASE + n;
            addPair(k2, wi, wc);
            touched.set(k2, 1);
          }
          if (i + 2 < w.length) {
            const k1 = b * KEY_BASE + w[i + 2]!;
            if (k1 !== key) {
              pairCount.set(k1, pairCount.get(k1)! - wc);
              touched.set(k1, 1);
            }
            const k2 = n * KEY_BASE + w[i + 2]!;
            addPair(k2, wi, wc);
            touched.set(k2, 1);
          }
          w.splice(i, 2, n);
        }
        i++;
      }
    }
    for (const k of touched.keys()) {
      if (k === key) continue;
      const cnt = pairCount.get(k) ?? 0;
      if (cnt > 0) heap.push(cnt, k);
      else pairCount.delete(k);
    }
  }

  const vocab = [...specials, ...alphabet, ...merged];
  let padded = 0;
  while (vocab.length < vocabSize) vocab.push(`[unused${padded++}]`);
  const json = bertTokenizerJson(vocab, { lowercase, specialTokens: specials });
  return { json, text: JSON.stringify(json), vocab, learned: merged.length, padded, words: wordCounts.size };
}

/** Write a trained tokenizer.json atomically. */
export async function saveTokenizerJson(path: string, trained: TrainedWordPiece): Promise<void> {
  await writeFileAtomic(path, trained.text);
}
