// @mbert/cli: the `mbert` command, and its pieces for programmatic use.
export { USAGE, main } from "./cli.js";
export {
  type LoaderConfig,
  PRETRAIN_SCHEMA,
  type PretrainConfig,
  applyOverrides,
  interpolate,
  loadPretrainConfig,
  parsePretrainConfig,
} from "./config.js";
export { DEMO_USAGE, demoCommand, demoRecipe } from "./demo.js";
export { CliError, ConfigError, UsageError } from "./errors.js";
export {
  PRETRAIN_USAGE,
  type PretrainOptions,
  type PretrainRun,
  callbacksFor,
  modelConfigFor,
  pretrainCommand,
  runPretrain,
} from "./pretrain.js";
export { htmlReport, lineChart } from "./report.js";
