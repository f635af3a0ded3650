/**
 * The `mbert` command: dispatches to subcommands and turns typed errors into
 * one clean line (exit 2 for bad input, 1 for failures). Stack traces are
 * printed only for unexpected errors, or with MBERT_DEBUG=1.
 */
import { SHARD_USAGE, TOKENIZE_USAGE, shardCommand, tokenizeCommand, verifyCommand } from "@mbert/data";
import { GLUE_USAGE, glueCommand } from "@mbert/glue";
import { checkParityCommand } from "@mbert/model";
import { CliError } from "./errors.js";
import { DEMO_USAGE, demoCommand } from "./demo.js";
import { PRETRAIN_USAGE, pretrainCommand } from "./pretrain.js";

export const USAGE = `usage: mbert <command> [options]

commands:
  demo                      train a small MosaicBERT on the bundled Brown corpus (no download)
  pretrain <config.yaml>    pretrain with a Composer-style recipe (--set key=value overrides)
  shard                     tokenize text into Arrow shards (shard verify <dir> checks them)
  tokenize                  print token ids for each line of a text file
  glue                      finetune and evaluate a checkpoint on GLUE tasks
  check-parity              compare the model against the reference fixtures

Run 'mbert <command> --help' for a command's options.`;

type Out = NodeJS.WritableStream;

const COMMANDS: Record<
  string,
  { usage: string; run: (args: string[], out: Out, err: Out) => Promise<number> }
> = {
  demo: { usage: DEMO_USAGE, run: (a, o) => demoCommand(a, o) },
  pretrain: { usage: PRETRAIN_USAGE, run: (a, o) => pretrainCommand(a, o) },
  shard: {
    usage: `${SHARD_USAGE}\n       mbert shard verify <dir>`,
    run: (a, o, e) => (a[0] === "verify" ? verifyCommand(a.slice(1), o, e) : shardCommand(a, o, e)),
  },
  tokenize: { usage: TOKENIZE_USAGE, run: (a, o, e) => tokenizeCommand(a, o, e) },
  glue: { usage: GLUE_USAGE, run: (a, o, e) => glueCommand(a, o, e) },
  "check-parity": {
    usage:
      "usage: mbert check-parity <case-dir> [--device cpu|cuda] [--layout padded|unpadded] [--dtype float32|bfloat16]\n\n" +
      "Compares the model with a reference fixture (../shared/fixtures/<case>); prints one JSON line, exit 0 when it passes.",
    run: (a, o) => checkParityCommand(a, o),
  },
};

function isTypedError(e: unknown): e is Error & { code: string } {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && typeof code === "string" && !/^E[A-Z]+$/.test(code);
}

/** Runs the CLI; returns the exit code (never throws for user errors). */
export async function main(
  argv: string[],
  out: Out = process.stdout,
  err: Out = process.stderr,
): Promise<number> {
  const [cmd, ...args] = argv;
  if (cmd === undefined || cmd === "--help" || cmd === "-h" || cmd === "help") {
    out.write(`${USAGE}\n`);
    return cmd === undefined ? 2 : 0;
  }
  const c = COMMANDS[cmd];
  if (!c) {
    err.write(`error: unknown command '${cmd}'\n${USAGE}\n`);
    return 2;
  }
  if (args.includes("--help") || args.includes("-h")) {
    out.write(`${c.usage}\n`);
    return 0;
  }
  try {
    return await c.run(args, out, err);
  } catch (e) {
    if (process.env.MBERT_DEBUG === "1") throw e;
    if (e instanceof CliError) {
      err.write(`error: ${e.message}\n`);
      return e.exitCode;
    }
    if (isTypedError(e)) {
      // A typed error of one of our packages: a user-facing message with a code.
      err.write(`error: ${e.name}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
