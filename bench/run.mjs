#!/usr/bin/env node
// `pnpm bench`: the CPU benchmarks that run on any machine (matmul GFLOP/s,
// shard reading + MLM collation, tokenization). GPU benchmarks run on the
// device through scripts/device-bundle.mjs (see docs/performance.md).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const suites = ["matmul.mjs", "data-loader.mjs", "data-shard.mjs"].filter((f) =>
  fs.existsSync(path.join(here, f)),
);
let failed = 0;
for (const s of suites) {
  console.log(`\n== bench/${s}`);
  const r = spawnSync(process.execPath, [path.join(here, s), ...process.argv.slice(2)], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
