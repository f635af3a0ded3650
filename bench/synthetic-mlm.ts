// Synthetic unpadded MLM batches for GPU benchmarks: B sequences of up to S
// tokens, 25% of them shorter (lengths uniform in [32, S)), [CLS]/[SEP] at the
// ends, 30% of the inner tokens masked ([MASK] = 103), ids drawn from
// [1000, V - 100). Deterministic in `seed`.

/** An unpadded MLM batch (the shape of @mbert/model's UnpaddedMlmBatch and @mbert/train's MlmBatch). */
export interface SyntheticMlmBatch {
  inputIds: Int32Array;
  tokenTypeIds: Int32Array;
  cuSeqlens: Int32Array;
  maxSeqlen: number;
  maskedPositions: Int32Array;
  labels: Int32Array;
  numSequences: number;
  numTokens: number;
}

export interface SyntheticMlmOptions {
  /** Sequences per batch. */
  batch: number;
  /** Longest sequence. */
  seq: number;
  vocabSize: number;
}

export function syntheticMlmBatch(seed: number, o: SyntheticMlmOptions): SyntheticMlmBatch {
  const { batch: B, seq: S, vocabSize: V } = o;
  let s = seed >>> 0;
  const rnd = () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 2 ** 32;
  };
  const lens = Array.from({ length: B }, () => (rnd() < 0.25 ? 32 + Math.floor(rnd() * (S - 32)) : S));
  const T = lens.reduce((a, b) => a + b, 0);
  const inputIds = new Int32Array(T);
  const cuSeqlens = new Int32Array(B + 1);
  const masked: number[] = [];
  const labels: number[] = [];
  let t = 0;
  lens.forEach((len, b) => {
    cuSeqlens[b] = t;
    for (let i = 0; i < len; i++, t++) {
      const id = i === 0 ? 101 : i === len - 1 ? 102 : 1000 + Math.floor(rnd() * (V - 1100));
      inputIds[t] = id;
      if (i > 0 && i < len - 1 && rnd() < 0.3) {
        masked.push(t);
        labels.push(id);
        inputIds[t] = 103;
      }
    }
  });
  cuSeqlens[B] = T;
  return {
    inputIds,
    tokenTypeIds: new Int32Array(T),
    cuSeqlens,
    maxSeqlen: Math.max(...lens),
    maskedPositions: Int32Array.from(masked),
    labels: Int32Array.from(labels),
    numSequences: B,
    numTokens: T,
  };
}
