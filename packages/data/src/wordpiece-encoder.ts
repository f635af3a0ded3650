// A fast encoder for BERT-style tokenizer.json files: BertNormalizer +
// BertPreTokenizer + WordPiece, producing the ids @huggingface/tokenizers
// produces for the same file (tokenizer.ts checks the file has exactly this
// structure; anything else stays on @huggingface/tokenizers).
//
// Where the time goes and how it is saved:
// - Most text is ASCII. A text with no character >= 0x80 (and, with
//   clean_text, no ASCII control) is scanned once by char code: words are
//   slices between whitespace and punctuation, looked up in a word -> ids
//   cache keyed by the raw slice (lowercasing happens only on a miss).
// - Other text is normalized as a whole, in the reference's order (remove
//   controls, space out CJK ideographs, toLowerCase, NFD + drop Mn), with the
//   native string functions and each step only when the text needs it; then
//   the same scan, with a cache keyed by normalized word.
// - WordPiece (greedy longest-match-first) runs only on a cache miss; by
//   Zipf's law the cache answers almost every word.
//
// Exactness notes (tests compare with @huggingface/tokenizers on large corpora):
// - Character classes come from the JavaScript engine's own Unicode tables
//   (the regexes the reference uses: \s, \p{P}, \p{Cc}|\p{Cf}|\p{Co}|\p{Cs}),
//   tabulated once for the BMP; astral code points are tested on demand.
// - Normalization is applied to the whole text, never word by word, because
//   toLowerCase (final sigma) and NFD (canonical reordering) look at context.
// - The reference's CJK test reads UTF-16 code units, so ideographs outside
//   the BMP (U+20000…) are not spaced out; we do the same.
// - Added tokens with normalized: false (BERT's [CLS], [MASK], …) are split
//   out of the raw text first, as the reference does; each piece between them
//   is encoded on its own.

/** The BertNormalizer options of a tokenizer.json. */
export interface BertNormalizerOptions {
  cleanText: boolean;
  handleChineseChars: boolean;
  /** null: follow lowercase. */
  stripAccents: boolean | null;
  lowercase: boolean;
}

export interface WordPieceEncoderSpec {
  normalizer: BertNormalizerOptions;
  /** token -> id, added tokens included (they override the model vocab, as in the reference). */
  vocab: Map<string, number>;
  unkId: number;
  continuingSubwordPrefix: string;
  maxInputCharsPerWord: number;
  /** Added tokens matched in the raw text, before normalization. */
  addedTokens: Array<{ content: string; id: number; lstrip: boolean; rstrip: boolean }>;
}

// Character classes (bit flags).
const WS = 1; // JavaScript \s: a separator for the pre-tokenizer
const PUNCT = 2; // \p{P} or ASCII punctuation: a token of its own
const CTRL = 4; // removed by clean_text: \p{Cc}|\p{Cf}|\p{Co}|\p{Cs} but \t \n \r; also U+0000, U+FFFD
const CJK = 8; // spaced out by handle_chinese_chars (BMP code units only, as the reference)

const RE_PUNCT = /^[\p{P}\u0021-\u002F\u003A-\u0040\u005B-\u0060\u007B-\u007E]$/u;
const RE_WS = /^\s$/u;
const RE_CTRL = /^[\p{Cc}\p{Cf}\p{Co}\p{Cs}]$/u;
const RE_MN = /\p{Mn}/gu;

function classify(s: string, cp: number): number {
  let c = 0;
  if (RE_WS.test(s)) c |= WS;
  if (RE_PUNCT.test(s)) c |= PUNCT;
  if (cp === 0 || cp === 0xfffd || (RE_CTRL.test(s) && cp !== 9 && cp !== 10 && cp !== 13)) c |= CTRL;
  if ((cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0xf900 && cp <= 0xfaff))
    c |= CJK;
  return c;
}

let bmpTable: Uint8Array | null = null;
/** Classes of every BMP code unit (lone surrogates are \p{Cs}); built once, ~20 ms. */
function bmpClasses(): Uint8Array {
  if (bmpTable) return bmpTable;
  const t = new Uint8Array(0x10000);
  for (let u = 0; u < 0x10000; u++) t[u] = classify(String.fromCharCode(u), u);
  bmpTable = t;
  return t;
}

/** The code point of the surrogate pair at s[i] (u = s.charCodeAt(i)), or -1 when no valid pair starts there. */
function pairAt(s: string, i: number, u: number): number {
  if (u < 0xd800 || u > 0xdbff || i + 1 >= s.length) return -1;
  const lo = s.charCodeAt(i + 1);
  return lo >= 0xdc00 && lo <= 0xdfff ? ((u - 0xd800) << 10) + (lo - 0xdc00) + 0x10000 : -1;
}

const astralClasses = new Map<number, number>();
function astralClass(cp: number): number {
  let c = astralClasses.get(cp);
  if (c === undefined) {
    c = classify(String.fromCodePoint(cp), cp);
    astralClasses.set(cp, c);
  }
  return c;
}

/** Word caches are cleared when they reach this many entries (memory stays bounded on huge corpora). */
const CACHE_LIMIT = 1 << 20;

/** A word's ids: one number for the common single-token word, else an array. */
type WordIds = number | number[];

// FNV-1a, 32 bits, over UTF-16 code units.
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/**
 * Normalized ASCII word -> ids, an open-addressing hash table probed with a
 * word still in its text (text[start..end) folded by `fold`): a hit compares
 * char codes and allocates nothing.
 */
class AsciiWordCache {
  private mask = 0;
  private size = 0;
  private hashes = new Int32Array(0);
  private keys: Array<string | undefined> = [];
  private values: WordIds[] = [];

  constructor(
    private readonly fold: Uint8Array,
    private readonly wordPiece: (word: string) => WordIds,
  ) {
    this.reset(1 << 14);
  }

  private reset(capacity: number): void {
    this.mask = capacity - 1;
    this.size = 0;
    this.hashes = new Int32Array(capacity);
    this.keys = new Array<string | undefined>(capacity).fill(undefined);
    this.values = new Array<WordIds>(capacity).fill(0);
  }

  /** Append the ids of text[start..end) (hash h) to out. */
  emit(text: string, start: number, end: number, h: number, out: number[]): void {
    const len = end - start;
    const fold = this.fold;
    let slot = h & this.mask;
    for (;;) {
      const key = this.keys[slot];
      if (key === undefined) break;
      if (this.hashes[slot] === h && key.length === len) {
        let j = 0;
        while (j < len && key.charCodeAt(j) === fold[text.charCodeAt(start + j)]) j++;
        if (j === len) {
          const ids = this.values[slot]!;
          if (typeof ids === "number") out.push(ids);
          else for (let q = 0; q < ids.length; q++) out.push(ids[q]!);
          return;
        }
      }
      slot = (slot + 1) & this.mask;
    }
    let word = text.slice(start, end);
    if (fold[65] !== 65) word = word.toLowerCase();
    const ids = this.wordPiece(word);
    if (typeof ids === "number") out.push(ids);
    else for (let q = 0; q < ids.length; q++) out.push(ids[q]!);
    this.insert(word, h, ids);
  }

  private insert(word: string, h: number, ids: WordIds): void {
    if (2 * (this.size + 1) > this.mask + 1) {
      const keys = this.keys;
      const hashes = this.hashes;
      const values = this.values;
      const capacity = this.mask + 1;
      // Grow up to the limit; past it, start over (memory stays bounded on huge corpora).
      this.reset(capacity * 2 <= 2 * CACHE_LIMIT ? capacity * 2 : capacity);
      if (capacity * 2 <= 2 * CACHE_LIMIT)
        for (let s = 0; s < capacity; s++) {
          const k = keys[s];
          if (k !== undefined) this.place(k, hashes[s]!, values[s]!);
        }
    }
    this.place(word, h, ids);
  }

  private place(word: string, h: number, ids: WordIds): void {
    let slot = h & this.mask;
    while (this.keys[slot] !== undefined) slot = (slot + 1) & this.mask;
    this.keys[slot] = word;
    this.hashes[slot] = h;
    this.values[slot] = ids;
    this.size++;
  }
}

export class WordPieceEncoder {
  private readonly norm: BertNormalizerOptions;
  private readonly strip: boolean;
  private readonly vocab: Map<string, number>;
  private readonly unkId: number;
  private readonly prefix: string;
  private readonly maxChars: number;
  /** Longest vocab entry in UTF-16 code units: no longer match is tried. */
  private readonly maxTokenLen: number;
  private readonly added: WordPieceEncoderSpec["addedTokens"];
  private readonly addedByContent: Map<string, WordPieceEncoderSpec["addedTokens"][number]>;
  private readonly addedIds: Map<string, number>;
  private readonly addedMaxLen: number;
  /** First code units of the added tokens: a text without any of them has none to split out. */
  private readonly addedFirst: Set<number>;
  /** Class of each ASCII code under this normalizer (clean_text decides what controls are). */
  private readonly ascii: Uint8Array;
  private readonly table: Uint8Array;
  /** ASCII code -> the code the normalizer makes of it (lowercase or itself). */
  private readonly fold: Uint8Array;
  /** Normalized ASCII word -> ids. */
  private readonly asciiCache: AsciiWordCache;
  /** Normalized word -> ids. */
  private readonly wordCache = new Map<string, WordIds>();

  constructor(spec: WordPieceEncoderSpec) {
    this.norm = spec.normalizer;
    this.strip = spec.normalizer.stripAccents ?? spec.normalizer.lowercase;
    this.vocab = spec.vocab;
    this.unkId = spec.unkId;
    this.prefix = spec.continuingSubwordPrefix;
    this.maxChars = spec.maxInputCharsPerWord;
    let maxLen = 0;
    for (const t of spec.vocab.keys()) if (t.length > maxLen) maxLen = t.length;
    this.maxTokenLen = maxLen;
    this.added = spec.addedTokens;
    this.addedByContent = new Map(spec.addedTokens.map((t) => [t.content, t]));
    this.addedIds = new Map();
    this.addedFirst = new Set();
    let addedMaxLen = 0;
    for (const t of spec.addedTokens) {
      if (t.content.length === 0) continue;
      this.addedIds.set(t.content, t.id);
      this.addedFirst.add(t.content.charCodeAt(0));
      if (t.content.length > addedMaxLen) addedMaxLen = t.content.length;
    }
    this.addedMaxLen = addedMaxLen;
    this.table = bmpClasses();
    this.ascii = new Uint8Array(128);
    for (let c = 0; c < 128; c++) {
      let k = this.table[c]!;
      // Without clean_text a control is an ordinary character: \v and \f
      // separate (they are \s), the others are part of words.
      if (!this.norm.cleanText) k &= ~CTRL;
      this.ascii[c] = k;
    }
    this.fold = new Uint8Array(128);
    for (let c = 0; c < 128; c++) this.fold[c] = this.norm.lowercase && c >= 65 && c <= 90 ? c + 32 : c;
    this.asciiCache = new AsciiWordCache(this.fold, (w) => this.wordPiece(w));
  }

  /** Token ids of a text: no special tokens, no truncation. */
  encode(text: string, out: number[] = []): number[] {
    if (this.addedFirst.size > 0 && this.mayHoldAddedToken(text)) {
      for (const section of this.splitAddedTokens(text)) {
        if (section.length === 0) continue;
        const id = this.addedIds.get(section);
        if (id !== undefined) out.push(id);
        else this.encodeSection(section, out);
      }
      return out;
    }
    this.encodeSection(text, out);
    return out;
  }

  /** The words WordPiece sees for a text (normalizer + pre-tokenizer; added tokens are not split out). */
  preTokenize(text: string): string[] {
    const words: string[] = [];
    const s = this.normalize(text);
    this.scan(s, (start, end) => {
      words.push(s.slice(start, end));
    });
    return words;
  }

  /** The normalized text, as BertNormalizer gives it. */
  normalize(text: string): string {
    const t = this.table;
    let needClean = false;
    let needCjk = false;
    let max = 0;
    for (let i = 0; i < text.length; i++) {
      const u = text.charCodeAt(i);
      if (u > max) max = u;
      if (u < 0x80 && (t[u]! & CTRL) === 0) continue;
      const k = t[u]!;
      if (k & CTRL) {
        // A valid surrogate pair is one astral code point, tested as such.
        const cp = pairAt(text, i, u);
        if (cp >= 0) {
          if (astralClass(cp) & CTRL) needClean = true;
          i++;
          continue;
        }
        needClean = true;
      }
      if (k & CJK) needCjk = true;
    }
    let s = text;
    if ((needClean && this.norm.cleanText) || (needCjk && this.norm.handleChineseChars))
      s = this.cleanAndSpace(s);
    if (this.norm.lowercase) s = s.toLowerCase();
    // Below U+00C0 NFD changes nothing and there are no combining marks.
    if (this.strip && max >= 0xc0) s = s.normalize("NFD").replace(RE_MN, "");
    return s;
  }

  /** clean_text (drop controls) and handle_chinese_chars (spaces around ideographs) in one pass. */
  private cleanAndSpace(text: string): string {
    const t = this.table;
    const clean = this.norm.cleanText;
    const cjk = this.norm.handleChineseChars;
    const parts: string[] = [];
    let from = 0;
    for (let i = 0; i < text.length; i++) {
      const u = text.charCodeAt(i);
      const cp = pairAt(text, i, u);
      const k = cp >= 0 ? astralClass(cp) : t[u]!;
      const width = cp >= 0 ? 2 : 1;
      if (clean && k & CTRL) {
        if (i > from) parts.push(text.slice(from, i));
        from = i + width;
      } else if (cjk && k & CJK) {
        if (i > from) parts.push(text.slice(from, i));
        parts.push(" ", text[i]!, " ");
        from = i + 1;
      }
      i += width - 1;
    }
    if (from === 0) return text;
    if (from < text.length) parts.push(text.slice(from));
    return parts.join("");
  }

  /**
   * The pre-tokenizer: calls word(start, end) for each word of a normalized
   * text: a run of characters that are neither whitespace nor punctuation, or
   * one punctuation character.
   */
  private scan(s: string, word: (start: number, end: number) => void): void {
    const t = this.table;
    let start = -1;
    for (let i = 0; i < s.length; i++) {
      const u = s.charCodeAt(i);
      const cp = pairAt(s, i, u);
      const k = cp >= 0 ? astralClass(cp) : t[u]!;
      const width = cp >= 0 ? 2 : 1;
      if (k & (WS | PUNCT)) {
        if (start >= 0) word(start, i);
        start = -1;
        if (k & PUNCT) word(i, i + width);
      } else if (start < 0) start = i;
      i += width - 1;
    }
    if (start >= 0) word(start, s.length);
  }

  private encodeSection(text: string, out: number[]): void {
    if (this.encodeAscii(text, out)) return;
    const s = this.normalize(text);
    if (s.length === 0) return;
    if (s.length <= this.addedMaxLen) {
      // The reference maps a normalized piece equal to an added token to that token.
      const id = this.addedIds.get(s);
      if (id !== undefined) {
        out.push(id);
        return;
      }
    }
    const cache = this.wordCache;
    this.scan(s, (start, end) => {
      const w = s.slice(start, end);
      let ids = cache.get(w);
      if (ids === undefined) {
        ids = this.wordPiece(w);
        if (cache.size >= CACHE_LIMIT) cache.clear();
        cache.set(w, ids);
      }
      if (typeof ids === "number") out.push(ids);
      else for (let j = 0; j < ids.length; j++) out.push(ids[j]!);
    });
  }

  /**
   * The ASCII path. Returns false, having written nothing, when the text needs
   * the general path (a character >= 0x80, or a control that clean_text drops).
   * Words are hashed while scanned and looked up in place: no string is made
   * for a word the cache already holds.
   */
  private encodeAscii(text: string, out: number[]): boolean {
    const a = this.ascii;
    const n = text.length;
    for (let i = 0; i < n; i++) {
      const u = text.charCodeAt(i);
      if (u >= 0x80 || a[u]! & CTRL) return false;
    }
    if (n <= this.addedMaxLen) {
      const s = this.norm.lowercase ? text.toLowerCase() : text;
      const id = this.addedIds.get(s);
      if (id !== undefined) {
        out.push(id);
        return true;
      }
    }
    const fold = this.fold;
    const cache = this.asciiCache;
    let start = -1;
    let h = 0;
    for (let i = 0; i < n; i++) {
      const u = text.charCodeAt(i);
      const k = a[u]!;
      if ((k & (WS | PUNCT)) === 0) {
        if (start < 0) {
          start = i;
          h = FNV_OFFSET;
        }
        h = Math.imul(h ^ fold[u]!, FNV_PRIME);
        continue;
      }
      if (start >= 0) {
        cache.emit(text, start, i, h, out);
        start = -1;
      }
      if (k & PUNCT) cache.emit(text, i, i + 1, Math.imul(FNV_OFFSET ^ u, FNV_PRIME), out);
    }
    if (start >= 0) cache.emit(text, start, n, h, out);
    return true;
  }

  /** Greedy longest-match-first WordPiece of one normalized word. */
  private wordPiece(word: string): WordIds {
    // Boundaries between code points (pieces never split a surrogate pair).
    let bounds: number[] | null = null;
    for (let i = 0; i < word.length; i++) {
      if (pairAt(word, i, word.charCodeAt(i)) >= 0) {
        bounds = [];
        break;
      }
    }
    if (bounds) {
      for (let i = 0; i < word.length; i++) {
        bounds.push(i);
        if (pairAt(word, i, word.charCodeAt(i)) >= 0) i++;
      }
      bounds.push(word.length);
    }
    const chars = bounds ? bounds.length - 1 : word.length;
    if (chars > this.maxChars) return this.unkId;
    const at = (c: number): number => (bounds ? bounds[c]! : c);
    const ids: number[] = [];
    let start = 0;
    while (start < chars) {
      const from = at(start);
      const pre = start > 0 ? this.prefix : "";
      let end = chars;
      while (end > start && at(end) - from + pre.length > this.maxTokenLen) end--;
      let id: number | undefined;
      for (; end > start; end--) {
        id = this.vocab.get(pre + word.slice(from, at(end)));
        if (id !== undefined) break;
      }
      if (id === undefined) return this.unkId;
      ids.push(id);
      start = end;
    }
    return ids.length === 1 ? ids[0]! : ids;
  }

  private mayHoldAddedToken(text: string): boolean {
    for (const c of this.addedFirst) if (text.indexOf(String.fromCharCode(c)) >= 0) return true;
    return false;
  }

  /**
   * Split out added tokens, longest match first, scanning left to right; an
   * lstrip/rstrip token trims the whitespace of its neighbours (as the reference).
   */
  private splitAddedTokens(text: string): string[] {
    const sections: string[] = [];
    let from = 0;
    let i = 0;
    while (i < text.length) {
      let match: string | null = null;
      if (this.addedFirst.has(text.charCodeAt(i))) {
        for (const t of this.added) {
          if (t.content.length > (match?.length ?? 0) && text.startsWith(t.content, i)) match = t.content;
        }
      }
      if (match === null) {
        i++;
        continue;
      }
      if (i > from) sections.push(text.slice(from, i));
      sections.push(match);
      i += match.length;
      from = i;
    }
    if (from < text.length) sections.push(text.slice(from));
    for (let j = 0; j < sections.length; j++) {
      const t = this.addedByContent.get(sections[j]!);
      if (!t) continue;
      if (t.lstrip && j > 0) sections[j - 1] = sections[j - 1]!.trimEnd();
      if (t.rstrip && j < sections.length - 1) sections[j + 1] = sections[j + 1]!.trimStart();
    }
    return sections;
  }
}

/**
 * The encoder spec of a parsed tokenizer.json, or why this encoder cannot
 * reproduce it (then the caller keeps @huggingface/tokenizers).
 */
export function wordPieceEncoderSpec(json: unknown): WordPieceEncoderSpec | { unsupported: string } {
  const no = (why: string): { unsupported: string } => ({ unsupported: why });
  if (typeof json !== "object" || json === null) return no("not an object");
  const j = json as Record<string, unknown>;
  const n = j.normalizer as Record<string, unknown> | null | undefined;
  if (n?.type !== "BertNormalizer" || !n) return no(`normalizer is ${describeType(n)}, not BertNormalizer`);
  for (const k of ["clean_text", "handle_chinese_chars", "lowercase"])
    if (typeof n[k] !== "boolean") return no(`BertNormalizer.${k} is not a boolean`);
  if (n.strip_accents !== null && typeof n.strip_accents !== "boolean")
    return no("BertNormalizer.strip_accents is not a boolean or null");
  const p = j.pre_tokenizer as Record<string, unknown> | null | undefined;
  if (p?.type !== "BertPreTokenizer") return no(`pre_tokenizer is ${describeType(p)}, not BertPreTokenizer`);
  const m = j.model as Record<string, unknown> | null | undefined;
  // Older files (bert-base-uncased's) have no model.type: a vocab object with
  // unk_token and continuing_subword_prefix and no merges is WordPiece.
  const untypedWordPiece =
    m && m.type === undefined && "unk_token" in m && "continuing_subword_prefix" in m && !("merges" in m);
  if (!m || (m.type !== "WordPiece" && !untypedWordPiece))
    return no(`model is ${describeType(m)}, not WordPiece`);
  if (typeof m.vocab !== "object" || m.vocab === null || Array.isArray(m.vocab))
    return no("model.vocab is not an object of token -> id");
  if (typeof m.unk_token !== "string") return no("model.unk_token is not a string");
  if (typeof m.continuing_subword_prefix !== "string")
    return no("model.continuing_subword_prefix is not a string");
  const maxChars = m.max_input_chars_per_word ?? 100;
  if (typeof maxChars !== "number") return no("model.max_input_chars_per_word is not a number");
  const pp = j.post_processor as Record<string, unknown> | null | undefined;
  if (pp && pp.type !== "TemplateProcessing" && pp.type !== "BertProcessing")
    return no(`post_processor is ${describeType(pp)}, not TemplateProcessing or BertProcessing`);

  const vocab = new Map<string, number>();
  for (const [t, id] of Object.entries(m.vocab as Record<string, unknown>)) {
    if (typeof id !== "number") return no(`model.vocab[${JSON.stringify(t)}] is not a number`);
    vocab.set(t, id);
  }
  const addedTokens: WordPieceEncoderSpec["addedTokens"] = [];
  const added = j.added_tokens ?? [];
  if (!Array.isArray(added)) return no("added_tokens is not an array");
  for (const a of added as Array<Record<string, unknown>>) {
    if (typeof a.content !== "string" || typeof a.id !== "number")
      return no("an added token lacks content or id");
    const special = Boolean(a.special ?? false);
    const normalized = a.normalized ?? !special;
    if (normalized) return no(`added token ${a.content} is normalized (only normalized: false is supported)`);
    if (a.content.length === 0) return no("an added token is empty");
    // clean_text turns whitespace into " " before the reference compares a
    // normalized piece with added tokens; we skip that rewrite (it never
    // changes words), so such tokens stay with the reference.
    if (/\s/u.test(a.content)) return no(`added token ${JSON.stringify(a.content)} contains whitespace`);
    vocab.set(a.content, a.id);
    addedTokens.push({ content: a.content, id: a.id, lstrip: Boolean(a.lstrip), rstrip: Boolean(a.rstrip) });
  }
  const unkId = vocab.get(m.unk_token);
  if (unkId === undefined) return no(`unk_token ${m.unk_token} is not in the vocab`);
  return {
    normalizer: {
      cleanText: n.clean_text as boolean,
      handleChineseChars: n.handle_chinese_chars as boolean,
      stripAccents: n.strip_accents as boolean | null,
      lowercase: n.lowercase as boolean,
    },
    vocab,
    unkId,
    continuingSubwordPrefix: m.continuing_subword_prefix,
    maxInputCharsPerWord: maxChars,
    addedTokens,
  };
}

function describeType(x: Record<string, unknown> | null | undefined): string {
  if (x === null || x === undefined) return "absent";
  return typeof x.type === "string" ? x.type : "of no known type";
}
