// BERT-style tokenizers loaded from a Hugging Face tokenizer.json.
//
// Normalization, pre-tokenization and the WordPiece model come from our own
// encoder (wordpiece-encoder.ts) when the file is BERT-style (BertNormalizer +
// BertPreTokenizer + WordPiece, which it reproduces id for id, many times
// faster), and from @huggingface/tokenizers otherwise. What that package does
// not do — truncation, and a post-processor we can budget for — is done here:
// each text is encoded without special tokens, truncated to fit, then assembled
// with the template from tokenizer.json's post_processor ([CLS] A [SEP] B [SEP]
// for BERT).

import { readFile } from "node:fs/promises";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { TokenizerError } from "./errors.js";
import { sha256Bytes } from "./hash.js";
import { WordPieceEncoder, wordPieceEncoderSpec } from "./wordpiece-encoder.js";

/**
 * Which implementation turns text into ids: "fast" is our BERT WordPiece
 * encoder, "hf" is @huggingface/tokenizers; "auto" (the default) takes "fast"
 * when the tokenizer.json is BERT-style and "hf" otherwise.
 */
export type EncoderChoice = "auto" | "fast" | "hf";

export interface TokenizerOptions {
  /** Default "auto". "fast" on a tokenizer.json it cannot reproduce is a TokenizerError saying why. */
  encoder?: EncoderChoice;
}

/** One piece of a post-processing template: a special token or one of the input sequences. */
type TemplatePiece =
  | { kind: "special"; ids: number[]; typeId: number }
  | { kind: "seq"; seq: "A" | "B"; typeId: number };

export type TruncationStrategy = "longest_first" | "only_first" | "only_second";

export interface EncodeOptions {
  /** Truncate so the whole encoding (special tokens included) has at most this many tokens. */
  maxLength?: number;
  /** Add [CLS]/[SEP] (default true). */
  addSpecialTokens?: boolean;
  /** How a pair is shortened (default "longest_first", as Hugging Face does). */
  truncation?: TruncationStrategy;
}

export interface Encoded {
  ids: number[];
  tokenTypeIds: number[];
}

/** The special-token ids the MLM collator and the shard writer need. */
export interface SpecialIds {
  pad: number;
  unk: number;
  cls: number;
  sep: number;
  mask: number;
}

interface TokenizerJson {
  added_tokens?: Array<{ id: number; content: string; special?: boolean }>;
  post_processor?: unknown;
  model?: { vocab?: Record<string, number> | unknown[] };
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  decoder?: unknown;
}

export class TextTokenizer {
  /** sha256 of the tokenizer.json bytes; index.json records it so shards and tokenizer stay paired. */
  readonly sha256: string;
  /** Where it came from (file path or a label), for error messages. */
  readonly source: string;
  readonly vocabSize: number;
  /** Ids of all tokens marked special in added_tokens, ascending. */
  readonly specialTokenIds: Int32Array;
  /** The implementation in use ("fast" or "hf"), and why not "fast" when it is "hf" under "auto". */
  readonly encoder: "fast" | "hf";
  readonly encoderNote: string;
  private readonly hf: HfTokenizer;
  private readonly fast: WordPieceEncoder | null;
  private readonly single: TemplatePiece[];
  private readonly pair: TemplatePiece[];
  private readonly special: Partial<SpecialIds>;

  private constructor(text: string, source: string, options: TokenizerOptions) {
    this.source = source;
    this.sha256 = sha256Bytes(text);
    let json: TokenizerJson;
    try {
      json = JSON.parse(text) as TokenizerJson;
    } catch (err) {
      throw new TokenizerError(source, "not valid JSON; pass a Hugging Face tokenizer.json", err);
    }
    try {
      this.hf = new HfTokenizer(json, {});
    } catch (err) {
      throw new TokenizerError(
        source,
        `@huggingface/tokenizers cannot load it (${(err as Error).message}); pass a Hugging Face tokenizer.json`,
        err,
      );
    }
    const choice = options.encoder ?? "auto";
    if (choice !== "auto" && choice !== "fast" && choice !== "hf")
      throw new TokenizerError(source, `encoder must be auto, fast or hf, got ${String(choice)}`);
    const spec = choice === "hf" ? { unsupported: "encoder hf was asked for" } : wordPieceEncoderSpec(json);
    if ("unsupported" in spec) {
      if (choice === "fast")
        throw new TokenizerError(
          source,
          `the fast encoder cannot reproduce it: ${spec.unsupported}; use encoder "auto" or "hf"`,
        );
      this.fast = null;
      this.encoder = "hf";
      this.encoderNote = spec.unsupported;
    } else {
      this.fast = new WordPieceEncoder(spec);
      this.encoder = "fast";
      this.encoderNote = "BERT WordPiece";
    }
    const vocab = this.hf.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    const specials: number[] = [];
    for (const t of json.added_tokens ?? []) if (t.special) specials.push(t.id);
    this.specialTokenIds = Int32Array.from(specials.sort((a, b) => a - b));
    const find = (...names: string[]): number | undefined => {
      for (const n of names) {
        const id = this.hf.token_to_id(n);
        if (id !== undefined) return id;
      }
      return undefined;
    };
    const special: Partial<SpecialIds> = {};
    const pad = find("[PAD]", "<pad>");
    const unk = find("[UNK]", "<unk>");
    const cls = find("[CLS]", "<s>");
    const sep = find("[SEP]", "</s>");
    const mask = find("[MASK]", "<mask>");
    if (pad !== undefined) special.pad = pad;
    if (unk !== undefined) special.unk = unk;
    if (cls !== undefined) special.cls = cls;
    if (sep !== undefined) special.sep = sep;
    if (mask !== undefined) special.mask = mask;
    this.special = special;
    const templates = parsePostProcessor(json.post_processor, (tok) => {
      const id = this.hf.token_to_id(tok);
      if (id === undefined)
        throw new TokenizerError(source, `post_processor names token ${tok} that is not in the vocab`);
      return id;
    });
    this.single = templates.single;
    this.pair = templates.pair;
  }

  /** Load a tokenizer.json from disk. */
  static async fromFile(path: string, options: TokenizerOptions = {}): Promise<TextTokenizer> {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      throw new TokenizerError(path, `cannot read it (${(err as Error).message})`, err);
    }
    return new TextTokenizer(text, path, options);
  }

  /** Build from tokenizer.json text (the sha256 is of exactly this text). */
  static fromJsonText(
    text: string,
    source = "<tokenizer.json>",
    options: TokenizerOptions = {},
  ): TextTokenizer {
    return new TextTokenizer(text, source, options);
  }

  /** The special ids; throws a TokenizerError naming the missing one. */
  get specialIds(): SpecialIds {
    const s = this.special;
    for (const k of ["pad", "unk", "cls", "sep", "mask"] as const) {
      if (s[k] === undefined)
        throw new TokenizerError(this.source, `has no ${k} token ([${k.toUpperCase()}]); MLM needs it`);
    }
    return s as SpecialIds;
  }

  /** Token ids of one text, no special tokens, no truncation. */
  tokenizeToIds(text: string): number[] {
    if (this.fast) return this.fast.encode(text);
    return this.hf.encode(text, { add_special_tokens: false }).ids;
  }

  /** How many tokens the post-processor adds for a single text or a pair. */
  numSpecialTokens(pair: boolean): number {
    let n = 0;
    for (const p of pair ? this.pair : this.single) if (p.kind === "special") n += p.ids.length;
    return n;
  }

  /** Encode a text or a pair: truncation first, then the post-processor template. */
  encode(text: string, pair?: string | null, options: EncodeOptions = {}): Encoded {
    const a = this.tokenizeToIds(text);
    const b = pair === undefined || pair === null ? null : this.tokenizeToIds(pair);
    return this.assemble(a, b, options);
  }

  /** Encode many texts (a [text, pair] tuple is a pair). */
  encodeBatch(inputs: Array<string | [string, string]>, options: EncodeOptions = {}): Encoded[] {
    return inputs.map((x) =>
      typeof x === "string" ? this.encode(x, null, options) : this.encode(x[0], x[1], options),
    );
  }

  /** Truncate already-tokenized ids and add the special tokens. */
  assemble(a: number[], b: number[] | null, options: EncodeOptions = {}): Encoded {
    const addSpecial = options.addSpecialTokens ?? true;
    const isPair = b !== null;
    let bb: number[] = b ?? [];
    if (options.maxLength !== undefined) {
      const budget = options.maxLength - (addSpecial ? this.numSpecialTokens(isPair) : 0);
      if (budget < (isPair ? 2 : 1))
        throw new TokenizerError(this.source, `maxLength ${options.maxLength} leaves no room for text`);
      if (!isPair) {
        if (a.length > budget) a = a.slice(0, budget);
      } else {
        const [na, nb] = truncatePair(a.length, bb.length, budget, options.truncation ?? "longest_first");
        if (na < a.length) a = a.slice(0, na);
        if (nb < bb.length) bb = bb.slice(0, nb);
      }
    }
    if (!addSpecial) {
      const ids = isPair ? a.concat(bb) : a;
      const types = new Array<number>(ids.length).fill(0);
      if (isPair) types.fill(1, a.length);
      return { ids, tokenTypeIds: types };
    }
    const ids: number[] = [];
    const tokenTypeIds: number[] = [];
    for (const p of isPair ? this.pair : this.single) {
      const src = p.kind === "special" ? p.ids : p.seq === "A" ? a : bb;
      for (const id of src) {
        ids.push(id);
        tokenTypeIds.push(p.typeId);
      }
    }
    return { ids, tokenTypeIds };
  }

  decode(ids: ArrayLike<number>, skipSpecialTokens = true): string {
    return this.hf.decode(Array.from(ids), { skip_special_tokens: skipSpecialTokens });
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /** The normalizer + pre-tokenizer of this tokenizer.json: the words WordPiece would see. */
  preTokenize(text: string): string[] {
    if (this.fast) return this.fast.preTokenize(text);
    const normalized = this.hf.normalizer ? this.hf.normalizer(text) : text;
    return this.hf.pre_tokenizer
      ? this.hf.pre_tokenizer(normalized)
      : normalized.split(/\s+/).filter(Boolean);
  }
}

/**
 * Lengths after truncating a pair to `budget` tokens. "longest_first" removes one
 * token at a time from the longer sequence (from the second on ties), in closed form.
 */
export function truncatePair(
  na: number,
  nb: number,
  budget: number,
  strategy: TruncationStrategy,
): [number, number] {
  if (na + nb <= budget) return [na, nb];
  if (strategy === "only_first") {
    if (nb >= budget)
      throw new TokenizerError("<pair>", `second text alone has ${nb} tokens; cannot fit ${budget}`);
    return [budget - nb, nb];
  }
  if (strategy === "only_second") {
    if (na >= budget)
      throw new TokenizerError("<pair>", `first text alone has ${na} tokens; cannot fit ${budget}`);
    return [na, budget - na];
  }
  const short = Math.min(na, nb);
  if (budget - short >= short) return na <= nb ? [na, budget - na] : [budget - nb, nb];
  return [Math.ceil(budget / 2), Math.floor(budget / 2)];
}

function parsePostProcessor(
  pp: unknown,
  idOf: (token: string) => number,
): { single: TemplatePiece[]; pair: TemplatePiece[] } {
  const seq = (s: "A" | "B", typeId: number): TemplatePiece => ({ kind: "seq", seq: s, typeId });
  if (pp === null || pp === undefined) return { single: [seq("A", 0)], pair: [seq("A", 0), seq("B", 1)] };
  const p = pp as Record<string, unknown>;
  if (p.type === "TemplateProcessing") {
    const specials = (p.special_tokens ?? {}) as Record<string, { ids: number[] }>;
    const conv = (items: unknown[]): TemplatePiece[] =>
      items.map((it) => {
        const o = it as Record<string, { id: string; type_id: number }>;
        if (o.SpecialToken) {
          const st = specials[o.SpecialToken.id];
          return {
            kind: "special",
            ids: st ? st.ids : [idOf(o.SpecialToken.id)],
            typeId: o.SpecialToken.type_id,
          };
        }
        return seq(o.Sequence!.id === "B" ? "B" : "A", o.Sequence!.type_id);
      });
    return { single: conv(p.single as unknown[]), pair: conv(p.pair as unknown[]) };
  }
  if (p.type === "BertProcessing" || p.type === "RobertaProcessing") {
    const cls = (p.cls as [string, number])[1];
    const sep = (p.sep as [string, number])[1];
    const sp = (id: number, typeId: number): TemplatePiece => ({ kind: "special", ids: [id], typeId });
    if (p.type === "BertProcessing")
      return {
        single: [sp(cls, 0), seq("A", 0), sp(sep, 0)],
        pair: [sp(cls, 0), seq("A", 0), sp(sep, 0), seq("B", 1), sp(sep, 1)],
      };
    return {
      single: [sp(cls, 0), seq("A", 0), sp(sep, 0)],
      pair: [sp(cls, 0), seq("A", 0), sp(sep, 0), sp(sep, 0), seq("B", 0), sp(sep, 0)],
    };
  }
  // Other post-processors: no specials added by us.
  return { single: [seq("A", 0)], pair: [seq("A", 0), seq("B", 1)] };
}

/** Load a tokenizer.json from a path. */
export function loadTokenizer(path: string, options: TokenizerOptions = {}): Promise<TextTokenizer> {
  return TextTokenizer.fromFile(path, options);
}
