import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../src/index.js";
import { sink } from "./sink.js";

describe("mbert", () => {
  it("prints help for the command and each subcommand", async () => {
    const out = sink();
    expect(await main(["--help"], out, sink())).toBe(0);
    expect(out.text).toMatch(/demo[\s\S]*pretrain[\s\S]*shard[\s\S]*tokenize[\s\S]*check-parity/);
    for (const cmd of ["demo", "pretrain", "shard", "tokenize", "glue", "check-parity"]) {
      const o = sink();
      expect(await main([cmd, "--help"], o, sink())).toBe(0);
      expect(o.text).toMatch(/usage: mbert/);
    }
  });

  it("turns user errors into one line and exit code 2", async () => {
    const err = sink();
    expect(await main(["frobnicate"], sink(), err)).toBe(2);
    expect(err.text).toMatch(/^error: unknown command 'frobnicate'/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mbert-cli-"));
    const bad = path.join(dir, "bad.yaml");
    fs.writeFileSync(bad, "max_seq_len: many\n");
    const err2 = sink();
    expect(await main(["pretrain", bad], sink(), err2)).toBe(2);
    expect(err2.text).toMatch(
      /^error: .*bad.yaml: \d+ problems\n {2}max_seq_len: got "many"; expected an integer >= 1/,
    );
    expect(err2.text).not.toMatch(/\n\s+at /); // no stack trace
    const err4 = sink();
    expect(await main(["demo", "--set", "optimizer.lr=fast"], sink(), err4)).toBe(2);
    expect(err4.text).toMatch(
      /^error: demo recipe: 1 problem\n {2}optimizer.lr: got "fast"; expected a number > 0/,
    );
    const err5 = sink();
    expect(await main(["demo", "--frobnicate"], sink(), err5)).toBe(2);
    expect(err5.text).toMatch(/^error: unknown option --frobnicate/);
    const err3 = sink();
    expect(await main(["pretrain", path.join(dir, "missing.yaml")], sink(), err3)).toBe(2);
    expect(err3.text).toMatch(/missing.yaml: 1 problem\n {2}\(file\): no such file/);
  });

  it("says a hub tokenizer name is not a file instead of trying to download it", async () => {
    const err = sink();
    const recipe = path.resolve(__dirname, "../../../examples/configs/mosaic-bert-base.yaml");
    expect(await main(["pretrain", recipe, "--set", "data_local=/nonexistent"], sink(), err)).toBe(2);
    expect(err.text).toMatch(/tokenizer_name: 'bert-base-uncased' is not a file/);
  });
});
