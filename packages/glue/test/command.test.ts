import * as fs from "node:fs";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { bertTokenizerJson, BERT_SPECIAL_TOKENS } from "@mbert/data";
import { describe, expect, it } from "vitest";
import { glueCommand } from "../src/index.js";
import { SIGNAL, WORDS, tmpDir, writeSignalSst2 } from "./helpers.js";

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let buf = "";
  stream.on("data", (d) => {
    buf += d.toString();
  });
  return { stream, text: () => buf };
}

function tokenizerFile(dir: string): string {
  const file = path.join(dir, "tokenizer.json");
  fs.writeFileSync(file, JSON.stringify(bertTokenizerJson([...BERT_SPECIAL_TOKENS, ...WORDS, SIGNAL])));
  return file;
}

describe("mbert glue", () => {
  it("finetunes, prints a table and a last JSON line, writes the report", async () => {
    const dir = tmpDir();
    writeSignalSst2(dir, 64, 32);
    const outDir = path.join(dir, "out");
    const out = capture();
    const err = capture();
    const code = await glueCommand(
      [
        "--tasks",
        "sst2",
        "--preset",
        "mosaic-bert-tiny",
        "--tokenizer",
        tokenizerFile(dir),
        "--data",
        dir,
        "--max-duration=8ba",
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
        "--seeds",
        "1,2",
        "--out",
        outDir,
      ],
      out.stream,
      err.stream,
    );
    expect(err.text()).not.toMatch(/error/);
    expect(code).toBe(0);
    const lines = out.text().trimEnd().split("\n");
    expect(lines[0]).toMatch(/^task\s+seed\s+eval\s+metrics/);
    expect(out.text()).toMatch(/SST-2\s+2\s+dev\s+accuracy \d+\.\d\d/);
    const report = JSON.parse(lines.at(-1)!);
    expect(report.results).toHaveLength(2);
    expect(report.results[0].steps).toBe(8);
    expect(report.glue).toBeNull();
    expect(report.missingTasks).toHaveLength(7);
    expect(JSON.parse(fs.readFileSync(path.join(outDir, "glue-report.json"), "utf8")).results).toHaveLength(
      2,
    );
  });

  it("a bad row stops the run with exit 1 and one clean line naming file:line", async () => {
    const dir = tmpDir();
    writeSignalSst2(dir, 16, 8);
    fs.appendFileSync(path.join(dir, "SST-2", "train.tsv"), "w1 w2\tpositive\n");
    const out = capture();
    const err = capture();
    const code = await glueCommand(
      ["--tasks", "sst2", "--preset", "mosaic-bert-tiny", "--tokenizer", tokenizerFile(dir), "--data", dir],
      out.stream,
      err.stream,
    );
    expect(code).toBe(1);
    expect(err.text()).toMatch(/^error: GlueRowError: .*SST-2\/train\.tsv:18: label "positive"/);
    expect(err.text().trim().split("\n")).toHaveLength(1);
  });

  it("bad arguments: exit 2 with the usage; a missing checkpoint: exit 1", async () => {
    const err = capture();
    expect(await glueCommand(["--tasks", "rte"], capture().stream, err.stream)).toBe(2);
    expect(err.text()).toMatch(/^error: --tokenizer is required\nusage: mbert glue/);
    const err2 = capture();
    expect(
      await glueCommand(
        ["--tasks", "nope", "--tokenizer", "t", "--data", "d", "--checkpoint", "c"],
        capture().stream,
        err2.stream,
      ),
    ).toBe(1);
    expect(err2.text()).toMatch(/unknown GLUE task "nope"/);
    const dir = tmpDir();
    writeSignalSst2(dir, 16, 8);
    const err3 = capture();
    const code = await glueCommand(
      [
        "--tasks",
        "sst2",
        "--checkpoint",
        path.join(dir, "none"),
        "--tokenizer",
        tokenizerFile(dir),
        "--data",
        dir,
      ],
      capture().stream,
      err3.stream,
    );
    expect(code).toBe(1);
    expect(err3.text()).toMatch(/^error: GlueCheckpointError: .*none: is not a folder/);
  });
});
