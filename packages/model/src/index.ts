// @mbert/model: BERT and MosaicBERT, their configs and heads, and Hugging Face
// checkpoints (safetensors + config.json).

export { alibiSlopes } from "./alibi.js";
export {
  type IntArray,
  type PaddedBatch,
  type Unpadded,
  type UnpaddedBatch,
  type UnpaddedClassificationBatch,
  type UnpaddedMlmBatch,
  checkIds,
  unpadBatch,
  validateBatch,
} from "./batch.js";
export {
  type BertConfig,
  type ModelFamily,
  type ParamCounts,
  type PresetName,
  PRESETS,
  configFromHf,
  configToHf,
  countParameters,
  presetConfig,
  readConfig,
  validateConfig,
  writeConfig,
} from "./config.js";
export {
  BatchError,
  CheckpointError,
  ConfigError,
  ModelError,
  type SafetensorsFault,
  SafetensorsError,
  StateDictMismatch,
  type StateDictReport,
  TokenIdOutOfRange,
} from "./errors.js";
export { type AdamWSettings, type ParityCase, loadParityCase } from "./fixture.js";
export { decoderBiasName, detectFamily, detectHead, stripComposerPrefix } from "./names.js";
export {
  type SafetensorsArray,
  type SafetensorsContents,
  type SafetensorsDtype,
  type SafetensorsEntry,
  type SafetensorsInput,
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  serializeSafetensors,
  toFloat32,
  toInt32,
  writeFileAtomic,
  writeSafetensors,
} from "./safetensors.js";
export { BertEmbeddings, BertEncoder, BertLayer } from "./bert.js";
export { PARITY_THRESHOLDS, type ParityThresholds, relErr } from "./metrics.js";
export {
  type AnyBertModel,
  BertForMaskedLM,
  BertForSequenceClassification,
  BertLMPredictionHead,
  BertModel,
  BertPooler,
  type ForwardOptions,
  type ModelOutput,
  createModel,
} from "./model.js";
export {
  BertGatedLinearUnitMLP,
  MosaicBertEmbeddings,
  MosaicBertEncoder,
  MosaicBertLayer,
} from "./mosaic_bert.js";
export {
  type ParityOptions,
  type ParityResult,
  adamwStep,
  checkParity,
  checkParityCommand,
} from "./parity.js";
export {
  type LoadPretrainedOptions,
  type PretrainedModel,
  type StateDictSource,
  loadPretrained,
  loadStateDict,
  normalizeStateDict,
  readCheckpointWeights,
  savePretrained,
} from "./pretrained.js";
export type { ClassificationModel, MlmModel, TrainableModel } from "./protocol.js";
