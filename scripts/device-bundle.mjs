#!/usr/bin/env node
// Bundles GPU entry points (checks and benchmarks written in TypeScript) into
// single ESM files under .device/, next to a copy of the native addon, so a
// GPU machine with only Node.js can run them:
//   node scripts/device-bundle.mjs packages/tensor/gpu/check.ts bench/pretrain.ts
//   ../shared/device/stage   (adds node + on-device.sh)   then run with carry [".device"]
//   MBERT_ADDON=.device/mbert.node bash .device/on-device.sh node .device/check.mjs
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const entries = process.argv.slice(2);
if (entries.length === 0) {
  console.error("usage: node scripts/device-bundle.mjs <entry.ts> [...]");
  process.exit(2);
}
const out = path.join(root, ".device");
fs.mkdirSync(out, { recursive: true });
const alias = Object.fromEntries(
  ["kernels", "tensor", "model", "data", "train", "glue", "cli"].map((p) => [
    `@mbert/${p}`,
    path.join(root, `packages/${p}/src/index.ts`),
  ]),
);
for (const entry of entries) {
  const name = path.basename(entry).replace(/\.ts$/, ".mjs");
  const dest = path.join(
    out,
    name === "check.mjs" ? `${path.basename(path.dirname(path.dirname(entry)))}-check.mjs` : name,
  );
  await build({
    entryPoints: [path.resolve(root, entry)],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile: dest,
    alias,
    external: ["*.node"],
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
    logLevel: "warning",
  });
  console.log(`bundled ${entry} -> ${path.relative(root, dest)}`);
}
fs.copyFileSync(path.join(root, "packages/kernels/build/mbert.node"), path.join(out, "mbert.node"));
console.log("copied packages/kernels/build/mbert.node -> .device/mbert.node");
