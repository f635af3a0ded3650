// Command functions wired by @mbert/cli. Each takes the arguments after the
// command name and the output streams, and resolves to an exit code:
// 0 ok, 1 a data fault (bad shard, bad input), 2 a usage error.

import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { type ParsedArgs, numberFlag, parseArgs, stringFlag } from "./args.js";
import { formatCorpusStats, type TextFormat } from "./corpus.js";
import { CorpusError, DataError, DataUsageError } from "./errors.js";
import { shard } from "./shard.js";
import { type EncoderChoice, TextTokenizer } from "./tokenizer.js";
import { verifyShards } from "./verify.js";

export type CommandFn = (
  args: string[],
  out: NodeJS.WritableStream,
  err?: NodeJS.WritableStream,
) => Promise<number>;

/** --encoder auto|fast|hf (default auto). */
function encoderFlag(p: ParsedArgs): EncoderChoice {
  const v = stringFlag(p, "encoder") ?? "auto";
  if (v !== "auto" && v !== "fast" && v !== "hf")
    throw new DataUsageError(`--encoder must be auto, fast or hf, got ${v}`);
  return v;
}

function fail(err: unknown, errOut: NodeJS.WritableStream): number {
  if (err instanceof DataUsageError) {
    errOut.write(`error: ${err.message}\n`);
    return 2;
  }
  if (err instanceof DataError) {
    errOut.write(`${err.message.startsWith(err.name) ? "" : `${err.name}: `}${err.message}\n`);
    return 1;
  }
  throw err;
}

export const TOKENIZE_USAGE =
  "usage: mbert tokenize --tokenizer <tokenizer.json> [--max-seq-len N] [--encoder auto|fast|hf] <text-file>";

/** `mbert tokenize`: one JSON array of ids per input line; a line with a tab is a pair. */
export async function tokenizeCommand(
  args: string[],
  out: NodeJS.WritableStream,
  errOut: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  try {
    const p = parseArgs(args, [], ["tokenizer", "max-seq-len", "encoder"]);
    const tokPath = stringFlag(p, "tokenizer");
    if (!tokPath || p.positional.length !== 1)
      throw new DataUsageError(`--tokenizer and one text file are required\n${TOKENIZE_USAGE}`);
    const maxLength = numberFlag(p, "max-seq-len", { integer: true, min: 3 });
    const tok = await TextTokenizer.fromFile(tokPath, { encoder: encoderFlag(p) });
    const file = p.positional[0]!;
    const input = createReadStream(file, { encoding: "utf8" });
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
    const opts = maxLength === undefined ? {} : { maxLength };
    try {
      for await (const line of lines) {
        const tab = line.indexOf("\t");
        const e =
          tab >= 0 ? tok.encode(line.slice(0, tab), line.slice(tab + 1), opts) : tok.encode(line, null, opts);
        if (!out.write(`${JSON.stringify(e.ids)}\n`)) await new Promise((r) => out.once("drain", r));
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code)
        throw new CorpusError(file, `cannot read it (${(err as Error).message})`, err);
      throw err;
    }
    return 0;
  } catch (err) {
    return fail(err, errOut);
  }
}

export const SHARD_USAGE = [
  "usage: mbert shard --tokenizer T --input <paths...|brown> --out <dir> [--max-seq-len 128]",
  "         [--shard-size-bytes N] [--workers N] [--raw-text] [--pack] [--holdout-fraction f] [--format lines|paragraphs|jsonl]",
  "         [--encoder auto|fast|hf]",
  "       mbert shard verify <dir> [--tokenizer T]",
].join("\n");

/** `mbert shard ...` and `mbert shard verify <dir>`. */
export async function shardCommand(
  args: string[],
  out: NodeJS.WritableStream,
  errOut: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  if (args[0] === "verify") return verifyCommand(args.slice(1), out, errOut);
  try {
    // --input takes one or more values up to the next flag.
    const inputs: string[] = [];
    const rest: string[] = [];
    for (let i = 0; i < args.length; i++) {
      if (args[i] === "--input") {
        while (i + 1 < args.length && !args[i + 1]!.startsWith("--")) inputs.push(args[++i]!);
      } else rest.push(args[i]!);
    }
    const p = parseArgs(
      rest,
      ["raw-text", "pack"],
      [
        "tokenizer",
        "out",
        "max-seq-len",
        "shard-size-bytes",
        "workers",
        "holdout-fraction",
        "format",
        "encoder",
      ],
    );
    const tokenizer = stringFlag(p, "tokenizer");
    const outDir = stringFlag(p, "out");
    if (!tokenizer || !outDir || inputs.length === 0)
      throw new DataUsageError(`--tokenizer, --input and --out are required\n${SHARD_USAGE}`);
    if (p.positional.length > 0)
      throw new DataUsageError(`unexpected argument ${p.positional[0]}\n${SHARD_USAGE}`);
    const format = stringFlag(p, "format");
    if (format !== undefined && !["lines", "paragraphs", "jsonl"].includes(format))
      throw new DataUsageError(`--format must be lines, paragraphs or jsonl, got ${format}`);
    const opt = <T>(v: T | undefined, k: string) => (v === undefined ? {} : { [k]: v });
    const res = await shard({
      tokenizer,
      inputs,
      outDir,
      ...opt(numberFlag(p, "max-seq-len", { integer: true, min: 3 }), "maxSeqLen"),
      ...opt(numberFlag(p, "shard-size-bytes", { integer: true, min: 1 }), "shardSizeBytes"),
      ...opt(numberFlag(p, "workers", { integer: true, min: 0 }), "workers"),
      ...opt(numberFlag(p, "holdout-fraction", { min: 0, max: 0.999999 }), "holdoutFraction"),
      ...opt(format as TextFormat | undefined, "format"),
      encoder: encoderFlag(p),
      rawText: p.flags.has("raw-text"),
      pack: p.flags.has("pack"),
      onShard: ({ split, entry }) =>
        errOut.write(
          `wrote ${split ? `${split}/` : ""}${entry.file}: ${entry.samples} samples, ${entry.tokens} tokens\n`,
        ),
    });
    errOut.write(`input: ${formatCorpusStats(res.corpus)}\n`);
    for (const s of res.splits) {
      const line = {
        split: s.split,
        dir: s.dir,
        shards: s.index.shards.length,
        samples: s.index.samples,
        tokens: s.index.tokens,
        resumed_shards: s.resumedShards,
        written_shards: s.writtenShards,
      };
      out.write(`${JSON.stringify(line)}\n`);
    }
    const mbps = res.textBytes / 1e6 / Math.max(1e-9, res.seconds);
    errOut.write(
      `tokenized ${(res.textBytes / 1e6).toFixed(1)} MB in ${res.seconds.toFixed(2)} s (${mbps.toFixed(2)} MB/s, ${res.tokenizedIn}${res.workers ? `, ${res.workers} workers` : ""})\n`,
    );
    return 0;
  } catch (err) {
    return fail(err, errOut);
  }
}

/** `mbert shard verify <dir>`: prints {"shards","samples","tokens","ok"}; exit 1 naming the bad shard. */
export async function verifyCommand(
  args: string[],
  out: NodeJS.WritableStream,
  errOut: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  try {
    const p = parseArgs(args, [], ["tokenizer"]);
    if (p.positional.length !== 1)
      throw new DataUsageError("usage: mbert shard verify <dir> [--tokenizer T]");
    const tokPath = stringFlag(p, "tokenizer");
    const tokenizerSha256 = tokPath ? (await TextTokenizer.fromFile(tokPath)).sha256 : undefined;
    const r = await verifyShards(p.positional[0]!, tokenizerSha256 ? { tokenizerSha256 } : {});
    out.write(`${JSON.stringify(r)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof DataError && !(err instanceof DataUsageError)) {
      out.write(
        `${JSON.stringify({ ok: false, file: err.file ?? null, code: err.code, error: err.message })}\n`,
      );
    }
    return fail(err, errOut);
  }
}
