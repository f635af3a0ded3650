// Reads the GLUE TSV files. Fields are split on tabs with no quoting (as the
// GLUE script writes them and the reference readers parse them: quotes are
// text). Every row is checked — field count, label in the task's label set,
// score a number in range — and a bad row is an error naming file:line, or,
// when asked, a reported (never silent) omission.

import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { type BadRow, GlueFileError, GlueRowError } from "./errors.js";
import { type ColumnRef, type GlueSplitSpec, type GlueTask, splitSpec } from "./tasks.js";

/** One labelled example. */
export interface GlueExample {
  /** 1-based line in the file, for messages. */
  line: number;
  textA: string;
  /** The second text of a pair task; null for single-sentence tasks. */
  textB: string | null;
  /** Class id (index into task.labels), or the score for regression. */
  label: number;
}

/** The examples of one split of one task. */
export interface GlueSplitData {
  task: GlueTask;
  split: string;
  file: string;
  examples: GlueExample[];
  /** Rows left out (only with `badRows: "report"`); empty otherwise. */
  badRows: BadRow[];
}

export interface ReadGlueOptions {
  /**
   * "error" (default): any bad row throws GlueRowError, after the whole file is
   * read so the error lists up to `maxReported` of them. "report": bad rows are
   * left out and listed in `badRows`, for the caller to print.
   */
  badRows?: "error" | "report";
  /** Bad rows listed in an error (default 20). */
  maxReported?: number;
  /** Read at most this many examples (from the top of the file). */
  limit?: number;
}

const BOM = "\ufeff";
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

function columnIndex(ref: ColumnRef, spec: GlueSplitSpec, file: string): number {
  if (typeof ref === "number") return ref;
  const i = spec.header?.indexOf(ref) ?? -1;
  if (i < 0) throw new GlueFileError("GLUE_HEADER", file, `the task format has no column "${ref}"`);
  return i;
}

/** The lines of a file: a trailing newline ends the last line (CoLA's dev.tsv has none), CRLF is accepted. */
function splitLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  for (let i = 0; i < lines.length; i++) if (lines[i]!.endsWith("\r")) lines[i] = lines[i]!.slice(0, -1);
  return lines;
}

/** Parses the text of one GLUE TSV file of `task` in the layout of `spec`. */
export function parseGlueTsv(
  text: string,
  task: GlueTask,
  spec: GlueSplitSpec,
  file: string,
  opts: ReadGlueOptions = {},
): GlueSplitData {
  const lines = splitLines(text.startsWith(BOM) ? text.slice(1) : text);
  let first = 0;
  if (spec.header !== null) {
    const got = lines[0]?.split("\t") ?? [];
    const want = spec.header;
    if (got.length !== want.length || got.some((h, i) => h !== want[i])) {
      throw new GlueFileError(
        "GLUE_HEADER",
        file,
        `line 1 is not the ${task.displayName} ${spec.split} header: expected "${want.join("\\t")}", got "${(lines[0] ?? "").slice(0, 200).replaceAll("\t", "\\t")}"`,
      );
    }
    first = 1;
  }
  const ia = columnIndex(task.textA, spec, file);
  const ib = task.textB === null ? -1 : columnIndex(task.textB, spec, file);
  const il = columnIndex(task.label, spec, file);
  const mode = opts.badRows ?? "error";
  const maxReported = opts.maxReported ?? 20;
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  const examples: GlueExample[] = [];
  const bad: BadRow[] = [];
  let badCount = 0;
  const refuse = (row: BadRow) => {
    badCount++;
    if (mode === "report" || bad.length < maxReported) bad.push(row);
  };
  for (let i = first; i < lines.length && examples.length < limit; i++) {
    const lineNo = i + 1;
    const fields = lines[i]!.split("\t");
    if (fields.length !== spec.numColumns) {
      refuse({
        file,
        line: lineNo,
        kind: "COLUMNS",
        detail: `${fields.length} tab-separated field${fields.length === 1 ? "" : "s"}, ${task.displayName} ${spec.split} rows have ${spec.numColumns}`,
      });
      continue;
    }
    const raw = fields[il]!;
    let label: number;
    if (task.kind === "regression") {
      const v = Number(raw);
      const [lo, hi] = task.scoreRange ?? [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY];
      if (!NUMBER.test(raw.trim()) || !Number.isFinite(v) || v < lo || v > hi) {
        refuse({
          file,
          line: lineNo,
          kind: "SCORE",
          detail: `score "${raw}" is not a number in [${lo}, ${hi}]`,
        });
        continue;
      }
      label = v;
    } else {
      label = task.labels.indexOf(raw);
      if (label < 0) {
        refuse({
          file,
          line: lineNo,
          kind: "LABEL",
          detail: `label "${raw}" is not one of ${task.labels.map((l) => `"${l}"`).join(", ")}`,
        });
        continue;
      }
    }
    examples.push({ line: lineNo, textA: fields[ia]!, textB: ib < 0 ? null : fields[ib]!, label });
  }
  if (badCount > 0 && mode === "error") throw new GlueRowError(bad, badCount);
  return { task, split: spec.split, file, examples, badRows: mode === "report" ? bad : [] };
}

/** The path of a split's file in a GLUE data folder (`<dataDir>/<Task>/<file>`). */
export function glueFilePath(dataDir: string, task: GlueTask, split: string): string {
  return path.join(dataDir, task.dir, splitSpec(task, split).file);
}

/** Reads one split of a task from a GLUE data folder, e.g. `readGlueSplit("glue_data", getTask("rte"), "dev")`. */
export async function readGlueSplit(
  dataDir: string,
  task: GlueTask,
  split: string,
  opts: ReadGlueOptions = {},
): Promise<GlueSplitData> {
  const spec = splitSpec(task, split);
  const file = glueFilePath(dataDir, task, split);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new GlueFileError(
        "GLUE_FILE_MISSING",
        file,
        `not found; a GLUE data folder holds ${task.dir}/${spec.file} (as the GLUE download script writes it)`,
      );
    }
    throw new GlueFileError("GLUE_FILE_UNREADABLE", file, `cannot read it (${(e as Error).message})`);
  }
  return parseGlueTsv(text, task, spec, file, opts);
}
