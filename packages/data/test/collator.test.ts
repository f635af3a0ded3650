import { describe, expect, it } from "vitest";
import { DataUsageError, MlmCollator, type SampleRef, toPadded } from "@mbert/data";

const SPECIAL = { pad: 0, unk: 100, cls: 101, sep: 102, mask: 103 };
const V = 30522;

function sample(key: number, len: number, epoch = 0): SampleRef {
  const ids = new Int32Array(len);
  ids[0] = 101;
  for (let t = 1; t < len - 1; t++) ids[t] = 1000 + ((key * 31 + t * 7) % 20000);
  ids[len - 1] = 102;
  return { inputIds: ids, tokenTypeIds: null, key, epoch };
}

describe("MlmCollator", () => {
  it("emits a consistent unpadded batch", () => {
    const c = new MlmCollator({ vocabSize: V, specialIds: SPECIAL, seed: 1 });
    const samples = [sample(0, 10), sample(1, 128), sample(2, 3)];
    const b = c.collate(samples);
    expect(b.numSequences).toBe(3);
    expect(b.numTokens).toBe(141);
    expect(Array.from(b.cuSeqlens)).toEqual([0, 10, 138, 141]);
    expect(b.maxSeqlen).toBe(128);
    expect(b.inputIds.length).toBe(141);
    expect(b.tokenTypeIds.length).toBe(141);
    expect(b.labels.length).toBe(b.maskedPositions.length);
    const orig = new Int32Array(141);
    samples.forEach((s, i) => {
      orig.set(s.inputIds, b.cuSeqlens[i]!);
    });
    for (let m = 0; m < b.maskedPositions.length; m++) {
      if (m > 0) expect(b.maskedPositions[m]!).toBeGreaterThan(b.maskedPositions[m - 1]!);
      expect(b.labels[m]).toBe(orig[b.maskedPositions[m]!]);
    }
    // Unmasked positions are untouched.
    const masked = new Set(b.maskedPositions);
    for (let t = 0; t < 141; t++) if (!masked.has(t)) expect(b.inputIds[t]).toBe(orig[t]);
  });

  it("masks ~30% of non-special tokens, 80/10/10, never specials", () => {
    const c = new MlmCollator({ vocabSize: V, specialIds: SPECIAL, seed: 3 });
    const samples = Array.from({ length: 400 }, (_, k) => sample(k, 128));
    const b = c.collate(samples);
    const orig = new Int32Array(b.numTokens);
    samples.forEach((s, i) => {
      orig.set(s.inputIds, b.cuSeqlens[i]!);
    });
    const maskable = 400 * 126;
    const M = b.maskedPositions.length;
    expect(M / maskable).toBeGreaterThan(0.29);
    expect(M / maskable).toBeLessThan(0.31);
    let asMask = 0;
    let random = 0;
    let same = 0;
    for (let m = 0; m < M; m++) {
      const p = b.maskedPositions[m]!;
      expect([101, 102]).not.toContain(orig[p]);
      const now = b.inputIds[p]!;
      if (now === 103) asMask++;
      else if (now === orig[p]) same++;
      else {
        random++;
        expect([0, 100, 101, 102, 103]).not.toContain(now);
        expect(now).toBeLessThan(V);
      }
    }
    expect(asMask / M).toBeGreaterThan(0.78);
    expect(asMask / M).toBeLessThan(0.82);
    expect(random / M).toBeGreaterThan(0.085);
    expect(same / M).toBeGreaterThan(0.085);
  });

  it("masks a sample the same way whatever batch it is in; differently in another epoch", () => {
    const c = new MlmCollator({ vocabSize: V, specialIds: SPECIAL, seed: 9 });
    const alone = c.collate([sample(42, 64)]);
    const inBatch = c.collate([sample(7, 20), sample(42, 64), sample(8, 33)]);
    const off = inBatch.cuSeqlens[1]!;
    expect(Array.from(inBatch.inputIds.subarray(off, off + 64))).toEqual(Array.from(alone.inputIds));
    const nextEpoch = c.collate([sample(42, 64, 1)]);
    expect(Array.from(nextEpoch.maskedPositions)).not.toEqual(Array.from(alone.maskedPositions));
    const otherSeed = new MlmCollator({ vocabSize: V, specialIds: SPECIAL, seed: 10 }).collate([
      sample(42, 64),
    ]);
    expect(Array.from(otherSeed.maskedPositions)).not.toEqual(Array.from(alone.maskedPositions));
  });

  it("a batch with nothing masked is legal", () => {
    const c = new MlmCollator({ vocabSize: V, specialIds: SPECIAL, mlmProbability: 0 });
    const b = c.collate([sample(1, 12)]);
    expect(b.maskedPositions.length).toBe(0);
    expect(b.labels.length).toBe(0);
    const empty = c.collate([]);
    expect(empty.numSequences).toBe(0);
    expect(Array.from(empty.cuSeqlens)).toEqual([0]);
    expect(() => new MlmCollator({ vocabSize: V, specialIds: SPECIAL, mlmProbability: 1.5 })).toThrow(
      DataUsageError,
    );
  });

  it("eval probability 0.15", () => {
    const c = new MlmCollator({ vocabSize: V, specialIds: SPECIAL, mlmProbability: 0.15 });
    const b = c.collate(Array.from({ length: 200 }, (_, k) => sample(k, 128)));
    const r = b.maskedPositions.length / (200 * 126);
    expect(r).toBeGreaterThan(0.14);
    expect(r).toBeLessThan(0.16);
  });

  it("toPadded gives classic BERT tensors", () => {
    const c = new MlmCollator({ vocabSize: V, specialIds: SPECIAL, seed: 2 });
    const samples = [sample(0, 5), sample(1, 3)];
    samples[1]!.tokenTypeIds = Int8Array.from([0, 1, 1]);
    const b = c.collate(samples);
    const p = toPadded(b, 6);
    expect(p.batchSize).toBe(2);
    expect(p.seqLen).toBe(6);
    expect(Array.from(p.attentionMask)).toEqual([1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0]);
    expect(Array.from(p.tokenTypeIds)).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0]);
    for (let r = 0; r < 2; r++)
      for (let t = 0; t < 6; t++) {
        const inRow = t < (r === 0 ? 5 : 3);
        const flat = b.cuSeqlens[r]! + t;
        if (!inRow) {
          expect(p.inputIds[r * 6 + t]).toBe(0);
          expect(p.labels[r * 6 + t]).toBe(-100);
        } else {
          expect(p.inputIds[r * 6 + t]).toBe(b.inputIds[flat]);
          const m = Array.from(b.maskedPositions).indexOf(flat);
          expect(p.labels[r * 6 + t]).toBe(m >= 0 ? b.labels[m] : -100);
        }
      }
    expect(() => toPadded(b, 4)).toThrow(/padTo 4/);
  });
});
