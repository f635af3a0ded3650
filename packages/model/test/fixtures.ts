// Where the parity fixtures live: $MBERT_FIXTURES, else ../shared/fixtures
// beside the repository (CI clones shared/ there).
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

let warned = false;

/** The fixtures folder, or undefined (after a loud warning) when it is absent. */
export function fixturesDir(): string | undefined {
  const dir = process.env.MBERT_FIXTURES ?? path.resolve(repoRoot, "../shared/fixtures");
  if (fs.existsSync(dir)) return dir;
  if (!warned) {
    console.warn(
      `\n!!! parity fixtures not found at ${dir}: fixture tests are SKIPPED. Set MBERT_FIXTURES or clone shared/ beside the repo.\n`,
    );
    warned = true;
  }
  return undefined;
}

/** Case folder names under the fixtures folder. */
export function fixtureCases(): string[] {
  const dir = fixturesDir();
  if (dir === undefined) return [];
  return fs
    .readdirSync(dir)
    .filter((n) => fs.existsSync(path.join(dir, n, "meta.json")))
    .sort();
}
