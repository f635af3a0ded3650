import { TextTokenizer } from "@mbert/data";
import { describe, expect, it } from "vitest";
import { ClassificationCollator, padGlueBatch, splitGlueBatch } from "../src/index.js";
import { BERT_TOKENIZER, HAVE_SHARED, tinyTokenizer } from "./helpers.js";

describe("ClassificationCollator", () => {
  it("encodes pairs with token types and lays sequences end to end", () => {
    const tok = tinyTokenizer();
    const c = new ClassificationCollator({ tokenizer: tok });
    const cls = tok.tokenToId("[CLS]")!;
    const sep = tok.tokenToId("[SEP]")!;
    const w = (s: string) => tok.tokenToId(s)!;
    const a = c.encode({ textA: "w1 w2", textB: "w3", label: 1 });
    expect([...a.ids]).toEqual([cls, w("w1"), w("w2"), sep, w("w3"), sep]);
    expect([...a.typeIds]).toEqual([0, 0, 0, 0, 1, 1]);
    const b = c.encode({ textA: "good", textB: null, label: 0 });
    expect([...b.ids]).toEqual([cls, w("good"), sep]);
    const batch = c.collate([a, b]);
    expect([...batch.cuSeqlens]).toEqual([0, 6, 9]);
    expect(batch.maxSeqlen).toBe(6);
    expect(batch.numSequences).toBe(2);
    expect(batch.numTokens).toBe(9);
    expect([...batch.inputIds]).toEqual([...a.ids, ...b.ids]);
    expect([...batch.tokenTypeIds]).toEqual([0, 0, 0, 0, 1, 1, 0, 0, 0]);
    expect(batch.labels).toBeInstanceOf(Int32Array);
    expect([...batch.labels]).toEqual([1, 0]);
  });

  it("truncates to maxSeqLen (longest first) and keeps regression scores as floats", () => {
    const tok = tinyTokenizer();
    const c = new ClassificationCollator({ tokenizer: tok, maxSeqLen: 8, kind: "regression" });
    const long = Array.from({ length: 20 }, (_, i) => `w${i}`).join(" ");
    const e = c.encode({ textA: long, textB: "w1 w2", label: 3.25 });
    expect(e.ids.length).toBe(8); // [CLS] 3 [SEP] 2 [SEP]
    expect([...e.typeIds]).toEqual([0, 0, 0, 0, 0, 1, 1, 1]);
    const batch = c.collate([e]);
    expect(batch.labels).toBeInstanceOf(Float32Array);
    expect(batch.labels[0]).toBeCloseTo(3.25);
  });

  it("padded form: [B, S] with pad ids, a mask and token types", () => {
    const c = new ClassificationCollator({ tokenizer: tinyTokenizer() });
    const batch = c.collate([
      c.encode({ textA: "w1", textB: "w2", label: 0 }),
      c.encode({ textA: "w1", textB: null, label: 1 }),
    ]);
    const p = padGlueBatch(batch, { padId: 0 });
    expect(p.batchSize).toBe(2);
    expect(p.seqLen).toBe(5);
    expect([...p.attentionMask!]).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    expect([...p.tokenTypeIds!]).toEqual([0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
    expect([...p.inputIds.slice(5)]).toEqual([...batch.inputIds.slice(5), 0, 0]);
    expect(() => padGlueBatch(batch, { seqLen: 3 })).toThrowError(/shorter than the longest/);
  });

  it("splits a batch into microbatches by whole sequences", () => {
    const c = new ClassificationCollator({ tokenizer: tinyTokenizer() });
    const batch = c.collate(
      ["w1", "w2 w3", "w4 w5 w6"].map((t, i) => c.encode({ textA: t, textB: null, label: i % 2 })),
    );
    const [a, b] = splitGlueBatch(batch, 2);
    expect([...a!.cuSeqlens]).toEqual([0, 3, 7]);
    expect([...b!.cuSeqlens]).toEqual([0, 5]);
    expect(b!.maxSeqlen).toBe(5);
    expect([...a!.labels, ...b!.labels]).toEqual([0, 1, 0]);
    expect([...a!.inputIds, ...b!.inputIds]).toEqual([...batch.inputIds]);
  });

  it.skipIf(!HAVE_SHARED)("bert-base-uncased: an RTE-like pair never exceeds 128 tokens", async () => {
    const tok = await TextTokenizer.fromFile(BERT_TOKENIZER);
    const c = new ClassificationCollator({ tokenizer: tok });
    const long = "The quick brown fox jumps over the lazy dog. ".repeat(40);
    const e = c.encode({ textA: long, textB: "Is the fox quick?", label: 0 });
    expect(e.ids.length).toBe(128);
    expect(e.ids[0]).toBe(tok.tokenToId("[CLS]"));
    expect(tok.decode(e.ids.slice(-7))).toBe("is the fox quick?");
    expect(e.typeIds[127]).toBe(1);
  });
});
