#!/usr/bin/env node
// prepack: copies the monorepo's native/ sources into the package so a
// published @mbert/kernels builds its addon at install time (no prebuilt
// binaries are shipped). `--clean` (postpack) removes the copy again.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dest = path.join(pkgDir, "native");
fs.rmSync(dest, { recursive: true, force: true });
if (!process.argv.includes("--clean")) {
  fs.cpSync(path.resolve(pkgDir, "../../native"), dest, {
    recursive: true,
    filter: (src) => !src.includes(`${path.sep}test${path.sep}`) && !src.endsWith(`${path.sep}test`),
  });
  console.log(`pack-native: copied native/ into ${path.relative(process.cwd(), dest) || "."}`);
}
