// The fast WordPiece encoder against @huggingface/tokenizers on vocabularies
// trained by trainWordPiece, cased and uncased.

import { beforeAll, describe, expect, it } from "vitest";
import { TextTokenizer, readBrown, trainWordPiece } from "@mbert/data";
import {
  GLUE_DIR,
  codePointStrings,
  compareIds,
  comparePreTokenize,
  every,
  readGlueDev,
  syntheticStrings,
} from "./exactness.js";

const glue = readGlueDev();
if (!glue) console.warn(`SKIPPING GLUE exactness: ${GLUE_DIR} is absent (set MBERT_SHARED)`);

let brown: string[] = [];
beforeAll(async () => {
  for await (const d of readBrown()) for (const s of d.segments) brown.push(s);
  brown = brown.filter(Boolean);
});

for (const lowercase of [true, false]) {
  describe(`fast encoder = @huggingface/tokenizers on a trained ${lowercase ? "uncased" : "cased"} vocabulary`, () => {
    let fast: TextTokenizer;
    let ref: TextTokenizer;
    beforeAll(async () => {
      // A small vocabulary trained on part of Brown, so other text breaks into many pieces and [UNK]s.
      const trained = await trainWordPiece(every(brown, 3), { vocabSize: 3000, lowercase });
      fast = TextTokenizer.fromJsonText(trained.text, "trained", { encoder: "fast" });
      ref = TextTokenizer.fromJsonText(trained.text, "trained", { encoder: "hf" });
      expect(TextTokenizer.fromJsonText(trained.text, "trained").encoder).toBe("fast");
    }, 60_000);

    it("a sixth of Brown (sentences it was not trained on)", () => {
      const r = compareIds(fast, ref, every(brown, 6, 1));
      expect(r.mismatches).toEqual([]);
    }, 60_000);

    it.skipIf(!glue)(
      "every GLUE dev field",
      () => {
        const r = compareIds(fast, ref, glue!.fields);
        expect(r.mismatches).toEqual([]);
      },
      60_000,
    );

    it("synthetic hard cases and code units (sampled)", () => {
      const texts = [
        ...syntheticStrings(3_000, lowercase ? 3 : 5),
        ...every(codePointStrings(), 4, lowercase ? 0 : 2),
      ];
      expect(compareIds(fast, ref, texts).mismatches).toEqual([]);
      expect(comparePreTokenize(fast, ref, texts).mismatches).toEqual([]);
    }, 60_000);
  });
}
