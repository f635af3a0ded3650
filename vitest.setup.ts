// Tests that read the shared reference data (parity fixtures, GLUE files, the
// bert-base-uncased tokenizer) skip with a warning when it is absent, so a
// checkout without it still runs. In CI it must be there: a missing folder
// fails the run instead of silently skipping those checks.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(fileURLToPath(import.meta.url));
const shared = process.env.MBERT_SHARED ?? path.resolve(root, "../shared");
const required = ["fixtures", "data/glue", "data/tokenizers/bert-base-uncased/tokenizer.json"];

if (process.env.CI) {
  const missing = required.filter((p) => !fs.existsSync(path.join(shared, p)));
  if (missing.length) {
    throw new Error(
      `CI requires the shared reference data: missing ${missing.map((p) => path.join(shared, p)).join(", ")} (set MBERT_SHARED)`,
    );
  }
}
