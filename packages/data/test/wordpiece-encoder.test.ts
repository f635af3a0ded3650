// The fast WordPiece encoder against @huggingface/tokenizers on bert-base-uncased:
// every Brown sentence, every GLUE dev field and pair, every BMP code unit,
// and seeded synthetic hard cases must give identical ids.

import { existsSync, readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { TextTokenizer, TokenizerError, readBrown, wordPieceEncoderSpec } from "@mbert/data";
import {
  BERT_UNCASED,
  GLUE_DIR,
  codePointStrings,
  compareIds,
  comparePreTokenize,
  readGlueDev,
  syntheticStrings,
} from "./exactness.js";

const glue = readGlueDev();
if (!glue) console.warn(`SKIPPING GLUE exactness: ${GLUE_DIR} is absent (set MBERT_SHARED)`);
const haveBert = existsSync(BERT_UNCASED);
if (!haveBert)
  console.warn(`SKIPPING bert-base-uncased exactness: ${BERT_UNCASED} is absent (set MBERT_SHARED)`);

describe.skipIf(!haveBert)("fast encoder = @huggingface/tokenizers on bert-base-uncased", () => {
  let fast: TextTokenizer;
  let ref: TextTokenizer;
  let text: string;
  beforeAll(() => {
    text = readFileSync(BERT_UNCASED, "utf8");
    fast = TextTokenizer.fromJsonText(text, BERT_UNCASED, { encoder: "fast" });
    ref = TextTokenizer.fromJsonText(text, BERT_UNCASED, { encoder: "hf" });
  });

  it("auto picks the fast encoder for a BERT tokenizer.json", () => {
    expect(fast.encoder).toBe("fast");
    expect(ref.encoder).toBe("hf");
    expect(TextTokenizer.fromJsonText(text, "auto").encoder).toBe("fast");
  });

  it("every Brown sentence", async () => {
    const sentences: string[] = [];
    for await (const d of readBrown()) for (const s of d.segments) sentences.push(s);
    expect(sentences.length).toBeGreaterThan(50_000);
    const r = compareIds(fast, ref, sentences);
    expect(r.mismatches).toEqual([]);
    expect(r.compared).toBe(sentences.length);
  }, 60_000);

  it.skipIf(!glue)(
    "every GLUE dev field, and every pair with [CLS]/[SEP] and token types",
    () => {
      const g = glue!;
      expect(g.files).toBe(6);
      const r = compareIds(fast, ref, g.fields);
      expect(r.mismatches).toEqual([]);
      // Pairs against the reference's own post-processor (TemplateProcessing).
      const hf = ref as unknown as {
        hf: { encode(t: string, o: object): { ids: number[]; token_type_ids?: number[] } };
      };
      let bad = 0;
      let pairs = 0;
      for (const [a, b] of g.pairs) {
        if (b.length === 0) continue; // the reference treats an empty second text as no pair
        const x = fast.encode(a, b);
        const y = hf.hf.encode(a, { text_pair: b, return_token_type_ids: true });
        if (x.ids.join() !== y.ids.join() || x.tokenTypeIds.join() !== y.token_type_ids!.join()) bad++;
        pairs++;
      }
      expect(pairs).toBeGreaterThan(7_000);
      expect(bad).toBe(0);
    },
    60_000,
  );

  it("every BMP code unit and astral samples, in and between words", () => {
    const r = compareIds(fast, ref, codePointStrings());
    expect(r.mismatches).toEqual([]);
    expect(r.compared).toBeGreaterThan(70_000);
  }, 60_000);

  it("synthetic hard cases: accents, CJK, emoji, controls, Unicode punctuation and spaces, long words", () => {
    const texts = syntheticStrings(10_000, 7);
    expect(compareIds(fast, ref, texts).mismatches).toEqual([]);
    expect(comparePreTokenize(fast, ref, texts).mismatches).toEqual([]);
  }, 60_000);

  it("repeats a text the same way (word caches)", () => {
    const texts = syntheticStrings(500, 11);
    const first = texts.map((t) => fast.tokenizeToIds(t));
    const second = texts.map((t) => fast.tokenizeToIds(t));
    expect(second).toEqual(first);
  });
});

describe.skipIf(!haveBert)("encoder choice", () => {
  it("falls back to @huggingface/tokenizers for other structures, and refuses to force fast on them", () => {
    const json = JSON.parse(readFileSync(BERT_UNCASED, "utf8"));
    json.pre_tokenizer = { type: "Whitespace" };
    const text = JSON.stringify(json);
    const auto = TextTokenizer.fromJsonText(text, "ws.json");
    expect(auto.encoder).toBe("hf");
    expect(auto.encoderNote).toMatch(/Whitespace/);
    expect(() => TextTokenizer.fromJsonText(text, "ws.json", { encoder: "fast" })).toThrow(TokenizerError);
    expect(() => TextTokenizer.fromJsonText(text, "ws.json", { encoder: "fast" })).toThrow(
      /BertPreTokenizer/,
    );
  });

  it("names why a structure is not supported", () => {
    const json = JSON.parse(readFileSync(BERT_UNCASED, "utf8"));
    expect("unsupported" in wordPieceEncoderSpec(json)).toBe(false);
    json.added_tokens[0].normalized = true;
    expect(wordPieceEncoderSpec(json)).toEqual({
      unsupported: expect.stringMatching(/normalized/) as unknown as string,
    });
  });
});
