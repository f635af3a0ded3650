// @mbert/data: tokenizers, Arrow shards, a resumable streaming dataset and the MLM collator.

export * from "./errors.js";
export { TextTokenizer, loadTokenizer, truncatePair } from "./tokenizer.js";
export type {
  EncodeOptions,
  Encoded,
  SpecialIds,
  TruncationStrategy,
  EncoderChoice,
  TokenizerOptions,
} from "./tokenizer.js";
export { WordPieceEncoder, wordPieceEncoderSpec } from "./wordpiece-encoder.js";
export type { WordPieceEncoderSpec, BertNormalizerOptions } from "./wordpiece-encoder.js";
export {
  trainWordPiece,
  saveTokenizerJson,
  bertTokenizerJson,
  BERT_SPECIAL_TOKENS,
} from "./wordpiece-trainer.js";
export type { TrainWordPieceOptions, TrainedWordPiece } from "./wordpiece-trainer.js";
export {
  readCorpus,
  readTextFile,
  readBrown,
  brownFileIds,
  brownSentence,
  parseBrownFile,
  emptyCorpusStats,
  badLineCount,
  formatCorpusStats,
} from "./corpus.js";
export type {
  Document,
  CorpusStats,
  BadLineKind,
  TextFormat,
  ReadCorpusOptions,
  BrownOptions,
} from "./corpus.js";
export {
  SHARD_FORMAT,
  SHARD_FORMAT_VERSION,
  encodeShard,
  decodeShard,
  parseIndex,
  shardFileName,
} from "./shard-format.js";
export type { ShardIndex, ShardEntry, ShardData, ColumnSpec, ShardColumns } from "./shard-format.js";
export { shard, holdoutSplit, defaultShardWorkerUrl } from "./shard.js";
export type { ShardOptions, ShardResult, SplitResult } from "./shard.js";
export { verifyShards, readShardIndex } from "./verify.js";
export type { VerifyResult, VerifyOptions } from "./verify.js";
export { StreamingDataset, numBatches, batchPositions } from "./streaming.js";
export type { StreamingDatasetOptions, SampleRef, SampleDataset, PartitionOptions } from "./streaming.js";
export { MixedDataset } from "./mixed.js";
export type { MixedDatasetOptions, MixedStream } from "./mixed.js";
export { MlmCollator, toPadded } from "./collator.js";
export type { UnpaddedMlmBatch, PaddedMlmBatch, MlmCollatorOptions } from "./collator.js";
export { MlmDataLoader } from "./loader.js";
export type { MlmDataLoaderOptions, DataLoaderState, Collator } from "./loader.js";
export { fetchBytes } from "./remote.js";
export type { RetryOptions } from "./remote.js";
export { tokenizeCommand, shardCommand, verifyCommand, TOKENIZE_USAGE, SHARD_USAGE } from "./commands.js";
export type { CommandFn } from "./commands.js";
