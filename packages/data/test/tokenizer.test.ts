import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  TextTokenizer,
  TokenizerError,
  readBrown,
  saveTokenizerJson,
  tokenizeCommand,
  trainWordPiece,
  truncatePair,
} from "@mbert/data";
import { BERT_UNCASED as BERT } from "./exactness.js";
import { StringSink } from "./helpers.js";

// Expected ids are line numbers - 1 in bert-base-uncased vocab.txt.
const V = {
  cls: 101,
  sep: 102,
  hello: 7592,
  world: 2088,
  how: 2129,
  are: 2024,
  you: 2017,
  i: 1045,
  am: 2572,
  fine: 2986,
  the: 1996,
  quick: 4248,
  brown: 2829,
  fox: 4419,
  is: 2003,
  a: 1037,
  test: 3231,
  comma: 1010,
  period: 1012,
  bang: 999,
  question: 1029,
};

let dir: string;
let bert: TextTokenizer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mbert-data-tok-"));
  bert = await TextTokenizer.fromFile(BERT);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("bert-base-uncased", () => {
  it("encodes single texts with [CLS]/[SEP]", () => {
    expect(bert.encode("hello world").ids).toEqual([V.cls, V.hello, V.world, V.sep]);
    expect(bert.encode("Hello, World!").ids).toEqual([V.cls, V.hello, V.comma, V.world, V.bang, V.sep]);
    expect(bert.encode("The quick brown fox is a test.").ids).toEqual([
      V.cls,
      V.the,
      V.quick,
      V.brown,
      V.fox,
      V.is,
      V.a,
      V.test,
      V.period,
      V.sep,
    ]);
    expect(bert.vocabSize).toBe(30522);
    expect(bert.specialIds).toEqual({ pad: 0, unk: 100, cls: 101, sep: 102, mask: 103 });
  });

  it("encodes a pair with token type ids", () => {
    const e = bert.encode("How are you?", "I am fine.");
    expect(e.ids).toEqual([
      V.cls,
      V.how,
      V.are,
      V.you,
      V.question,
      V.sep,
      V.i,
      V.am,
      V.fine,
      V.period,
      V.sep,
    ]);
    expect(e.tokenTypeIds).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
  });

  it("truncates to maxLength including specials", () => {
    expect(bert.encode("the quick brown fox", null, { maxLength: 4 }).ids).toEqual([
      V.cls,
      V.the,
      V.quick,
      V.sep,
    ]);
    const p = bert.encode("the quick brown fox", "how are you", { maxLength: 7 });
    // 4 + 3 tokens, budget 4: longest first -> 2 + 2
    expect(p.ids).toEqual([V.cls, V.the, V.quick, V.sep, V.how, V.are, V.sep]);
    expect(p.tokenTypeIds).toEqual([0, 0, 0, 0, 1, 1, 1]);
    expect(() => bert.encode("x", null, { maxLength: 2 })).toThrow(TokenizerError);
  });

  it("truncatePair matches one-at-a-time longest-first removal", () => {
    for (let na = 0; na < 12; na++)
      for (let nb = 0; nb < 12; nb++)
        for (let budget = 1; budget < 16; budget++) {
          let a = na;
          let b = nb;
          while (a + b > budget) {
            if (a > b) a--;
            else b--;
          }
          expect(truncatePair(na, nb, budget, "longest_first")).toEqual([a, b]);
        }
  });

  it("encodeBatch mixes singles and pairs", () => {
    const out = bert.encodeBatch(["hello world", ["hello", "world"]]);
    expect(out[0]!.ids).toEqual([V.cls, V.hello, V.world, V.sep]);
    expect(out[1]!.ids).toEqual([V.cls, V.hello, V.sep, V.world, V.sep]);
  });

  it("rejects a file that is not a tokenizer.json, naming it", async () => {
    const bad = join(dir, "bad.json");
    await writeFile(bad, "{not json");
    await expect(TextTokenizer.fromFile(bad)).rejects.toThrow(/bad\.json/);
  });
});

describe("tokenizeCommand", () => {
  it("prints one JSON array per line, pairs on tabs", async () => {
    const input = join(dir, "in.txt");
    await writeFile(input, "hello world\nhello\tworld\n");
    const out = new StringSink();
    const code = await tokenizeCommand(["--tokenizer", BERT, input], out);
    expect(code).toBe(0);
    expect(
      out.text
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l)),
    ).toEqual([
      [101, 7592, 2088, 102],
      [101, 7592, 102, 2088, 102],
    ]);
  });
  it("returns 2 on missing arguments", async () => {
    const out = new StringSink();
    const err = new StringSink();
    expect(await tokenizeCommand([], out, err)).toBe(2);
    expect(err.text).toMatch(/--tokenizer/);
  });
});

describe("trainWordPiece", () => {
  it("trains on Brown, rounds to 64, and reloads unchanged in @huggingface/tokenizers", async () => {
    const texts: string[] = [];
    for await (const d of readBrown({ limit: 40 })) texts.push(...d.segments);
    const trained = await trainWordPiece(texts, { vocabSize: 1000 });
    expect(trained.vocab.length).toBe(1024);
    expect(trained.vocab.slice(0, 5)).toEqual(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
    const path = join(dir, "tokenizer.json");
    await saveTokenizerJson(path, trained);
    const text = await readFile(path, "utf8");
    // Same top-level layout as bert-base-uncased's tokenizer.json.
    const ref = JSON.parse(await readFile(BERT, "utf8"));
    const ours = JSON.parse(text);
    expect(Object.keys(ours)).toEqual(Object.keys(ref));
    expect(ours.normalizer).toEqual(ref.normalizer);
    expect(ours.pre_tokenizer).toEqual(ref.pre_tokenizer);
    expect(ours.decoder).toEqual(ref.decoder);
    expect(ours.post_processor.type).toBe("TemplateProcessing");
    // Loads directly in the reference JS implementation; no [UNK] on training text.
    const hf = new HfTokenizer(ours, {});
    const sentence = texts[3]!;
    const ids = hf.encode(sentence).ids;
    expect(ids[0]).toBe(2);
    expect(ids.at(-1)).toBe(3);
    expect(ids).not.toContain(1);
    const ourTok = TextTokenizer.fromJsonText(text);
    expect(ourTok.encode(sentence).ids).toEqual(ids);
    // Decoding gives the text back up to spacing around quotes.
    const squash = (x: string) => x.toLowerCase().replace(/\s+/g, "");
    expect(squash(hf.decode(ids, { skip_special_tokens: true }))).toBe(squash(sentence));
  });

  it("pads with [unusedN] when the corpus runs out of merges", async () => {
    const trained = await trainWordPiece(["ab ab ab", "ba"], { vocabSize: 60 });
    expect(trained.vocab.length).toBe(64);
    expect(trained.padded).toBeGreaterThan(0);
    expect(trained.vocab.at(-1)).toMatch(/^\[unused\d+\]$/);
    const tok = TextTokenizer.fromJsonText(trained.text);
    expect(tok.encode("ab").ids).toEqual([2, trained.vocab.indexOf("ab"), 3]);
  });
});
