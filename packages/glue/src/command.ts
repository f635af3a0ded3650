// `mbert glue`: finetune (or evaluate) on GLUE tasks, print a table of the
// results, then one JSON line with the whole report. Exit 0 on success, 1 when
// a run fails (bad file, bad checkpoint), 2 for bad arguments.

import { type PresetName, presetConfig } from "@mbert/model";
import { GlueUsageError } from "./errors.js";
import { evaluate, finetune } from "./finetune.js";
import { type TaskResult, formatReportTable, glueReport, writeReport } from "./report.js";
import { parseTaskList } from "./tasks.js";

export const GLUE_USAGE = `usage: mbert glue --tasks rte,mrpc|all --checkpoint <dir> --tokenizer <tokenizer.json> --data <glue_dir>
                  [--device cpu|cuda] [--out <dir>] [options]

  --checkpoint <dir>    pretrained folder (config.json + model.safetensors); its MLM head is ignored
  --preset <name>       instead of --checkpoint: a randomly initialized model (e.g. mosaic-bert-tiny)
  --eval-only           evaluate --checkpoint as an already finetuned classifier (no training)
  --seeds 19,8364       one run per seed (default 19)
  --lr, --weight-decay, --batch-size, --epochs   override the task's recipe values
  --max-duration 200ba  training length as a time string (overrides --epochs)
  --warmup 0.06dur      linear warmup (default 6% of training)
  --max-seq-len 128     tokens per sequence
  --train-limit N, --eval-limit N   use only the first N examples (smoke runs)
  --bad-rows error|report           a bad TSV row stops the run (default) or is left out and listed
  --out <dir>           write glue-report.json there (and, with --save-models, <dir>/<task>-seed<s>/)`;

type Out = NodeJS.WritableStream;

const VALUE_FLAGS = new Set([
  "tasks",
  "checkpoint",
  "preset",
  "tokenizer",
  "data",
  "device",
  "out",
  "seeds",
  "seed",
  "lr",
  "weight-decay",
  "batch-size",
  "epochs",
  "max-duration",
  "warmup",
  "max-seq-len",
  "train-limit",
  "eval-limit",
  "bad-rows",
]);
const BOOLEAN_FLAGS = new Set(["eval-only", "save-models"]);

function parse(args: string[]): { values: Map<string, string>; bools: Set<string> } {
  const values = new Map<string, string>();
  const bools = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("--")) throw new GlueUsageError(`unexpected argument "${a}"`);
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf("=");
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (BOOLEAN_FLAGS.has(name)) {
      if (value !== undefined) throw new GlueUsageError(`--${name} takes no value`);
      bools.add(name);
    } else if (VALUE_FLAGS.has(name)) {
      if (value === undefined) {
        value = args[++i];
        if (value === undefined || value.startsWith("--"))
          throw new GlueUsageError(`--${name} needs a value`);
      }
      values.set(name, value);
    } else {
      throw new GlueUsageError(`unknown option --${name}`);
    }
  }
  return { values, bools };
}

function num(values: Map<string, string>, name: string, integer: boolean): number | undefined {
  const s = values.get(name);
  if (s === undefined) return undefined;
  const v = Number(s);
  if (s.trim() === "" || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < 0) {
    throw new GlueUsageError(
      `--${name} must be a ${integer ? "non-negative integer" : "non-negative number"}, got "${s}"`,
    );
  }
  return v;
}

function required(values: Map<string, string>, name: string): string {
  const v = values.get(name);
  if (v === undefined) throw new GlueUsageError(`--${name} is required`);
  return v;
}

/** Runs `mbert glue` with the arguments after the command name; resolves to the exit code. */
export async function glueCommand(args: string[], out: Out, err: Out = process.stderr): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    out.write(`${GLUE_USAGE}\n`);
    return 0;
  }
  try {
    const { values, bools } = parse(args);
    const tasks = parseTaskList(required(values, "tasks"));
    const tokenizer = required(values, "tokenizer");
    const dataDir = required(values, "data");
    const checkpoint = values.get("checkpoint");
    const preset = values.get("preset");
    if ((checkpoint === undefined) === (preset === undefined)) {
      throw new GlueUsageError(
        "give --checkpoint <dir> (or --preset <name> for a randomly initialized model)",
      );
    }
    const evalOnly = bools.has("eval-only");
    if (evalOnly && checkpoint === undefined) throw new GlueUsageError("--eval-only needs --checkpoint");
    const device = values.get("device") ?? "cpu";
    if (device !== "cpu" && device !== "cuda")
      throw new GlueUsageError(`--device must be cpu or cuda, got "${device}"`);
    const badRows = values.get("bad-rows") ?? "error";
    if (badRows !== "error" && badRows !== "report") {
      throw new GlueUsageError(`--bad-rows must be error or report, got "${badRows}"`);
    }
    const seedList = values.get("seeds") ?? values.get("seed") ?? "19";
    const seeds = seedList.split(",").map((s) => {
      const v = Number(s);
      if (!Number.isInteger(v) || v < 0)
        throw new GlueUsageError(`--seeds: "${s}" is not a non-negative integer`);
      return v;
    });
    const outDir = values.get("out");
    if (bools.has("save-models") && outDir === undefined)
      throw new GlueUsageError("--save-models needs --out <dir>");
    const config = preset !== undefined ? presetConfig(preset as PresetName) : undefined;
    const log = (line: string) => err.write(`${line}\n`);
    const common = {
      dataDir,
      tokenizer,
      device: device as "cpu" | "cuda",
      maxSeqLen: num(values, "max-seq-len", true),
      evalLimit: num(values, "eval-limit", true),
      badRows: badRows as "error" | "report",
      log,
    };
    const results: TaskResult[] = [];
    for (const task of tasks) {
      if (evalOnly) {
        results.push(
          await evaluate({ ...common, task, checkpoint, batchSize: num(values, "batch-size", true) }),
        );
        continue;
      }
      for (const seed of seeds) {
        const r = await finetune({
          ...common,
          task,
          seed,
          ...(checkpoint !== undefined ? { checkpoint } : { config }),
          lr: num(values, "lr", false),
          weightDecay: num(values, "weight-decay", false),
          batchSize: num(values, "batch-size", true),
          epochs: num(values, "epochs", false),
          maxDuration: values.get("max-duration"),
          warmup: values.get("warmup"),
          trainLimit: num(values, "train-limit", true),
          saveDir: bools.has("save-models") ? `${outDir}/${task.name}-seed${seed}` : undefined,
        });
        delete r.loadReport;
        results.push(r);
      }
    }
    const report = glueReport(results);
    out.write(`${formatReportTable(report)}\n`);
    if (outDir !== undefined) log(`wrote ${writeReport(report, outDir)}`);
    out.write(`${JSON.stringify(report)}\n`);
    return 0;
  } catch (e) {
    if (process.env.MBERT_DEBUG === "1") throw e;
    if (e instanceof GlueUsageError) {
      err.write(`error: ${e.message}\n${GLUE_USAGE}\n`);
      return 2;
    }
    const code = (e as { code?: unknown })?.code;
    const name = e instanceof Error ? e.name : "Error";
    const message = e instanceof Error ? e.message : String(e);
    err.write(`error: ${typeof code === "string" ? `${name}: ` : ""}${message}\n`);
    return 1;
  }
}
