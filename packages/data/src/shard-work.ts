// Turning documents into samples: the part of sharding that runs in worker
// threads (shard-worker.ts) or, when no worker script is available, in-thread.

import { type EncoderChoice, TextTokenizer } from "./tokenizer.js";

export interface TokenizeJobConfig {
  tokenizerText: string;
  tokenizerSource: string;
  maxSeqLen: number;
  pack: boolean;
  encoder?: EncoderChoice;
}

export interface ChunkDoc {
  segments: string[];
}

/** Samples of a chunk of documents, flattened for a cheap transfer between threads. */
export interface ChunkResult {
  /** Per document: number of samples. */
  docSamples: Int32Array;
  /** Per sample: length in tokens (specials included). */
  lengths: Int32Array;
  /** All tokens of all samples, in order. */
  values: Int32Array;
  /** UTF-8 bytes of text tokenized. */
  textBytes: number;
}

export class ChunkTokenizer {
  private readonly tok: TextTokenizer;
  private readonly budget: number;
  constructor(private readonly cfg: TokenizeJobConfig) {
    this.tok = TextTokenizer.fromJsonText(cfg.tokenizerText, cfg.tokenizerSource, {
      encoder: cfg.encoder ?? "auto",
    });
    this.budget = cfg.maxSeqLen - this.tok.numSpecialTokens(false);
    if (this.budget < 1) throw new Error(`maxSeqLen ${cfg.maxSeqLen} leaves no room for tokens`);
  }

  run(docs: ChunkDoc[]): ChunkResult {
    const docSamples = new Int32Array(docs.length);
    const lengths: number[] = [];
    const values: number[] = [];
    let textBytes = 0;
    const emit = (ids: number[]): void => {
      const e = this.tok.assemble(ids, null).ids;
      lengths.push(e.length);
      for (let i = 0; i < e.length; i++) values.push(e[i]!);
    };
    for (let d = 0; d < docs.length; d++) {
      const before = lengths.length;
      let cur: number[] = [];
      for (const seg of docs[d]!.segments) {
        textBytes += Buffer.byteLength(seg);
        const ids = this.tok.tokenizeToIds(seg);
        if (ids.length === 0) continue;
        if (!this.cfg.pack) {
          emit(ids.length > this.budget ? ids.slice(0, this.budget) : ids);
          continue;
        }
        // Packing: fill up to the budget with consecutive segments; a segment
        // that does not fit starts the next sample; one longer than a whole
        // sample is cut into budget-sized pieces.
        if (cur.length > 0 && cur.length + ids.length > this.budget) {
          emit(cur);
          cur = [];
        }
        let start = 0;
        while (ids.length - start > this.budget) {
          emit(ids.slice(start, start + this.budget));
          start += this.budget;
        }
        for (let i = start; i < ids.length; i++) cur.push(ids[i]!);
      }
      if (cur.length > 0) emit(cur);
      docSamples[d] = lengths.length - before;
    }
    return {
      docSamples,
      lengths: Int32Array.from(lengths),
      values: Int32Array.from(values),
      textBytes,
    };
  }
}
