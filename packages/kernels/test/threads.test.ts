import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const here = path.dirname(fileURLToPath(import.meta.url));
const addon = path.resolve(here, "../build/mbert.node");

// A deadlock would block the calling thread inside the addon, where no test
// timeout can reach it, so the stress runs in a child process with a kill timer.
const script = `
const cpu = require(${JSON.stringify(addon)}).cpu;
const n = 1 << 15;
const x = cpu.alloc(n * 4), out = cpu.alloc(4);
cpu.randNormal(0, x, n, 1, 0, 0, 1);
for (let i = 0; i < 400; i++) {
  cpu.setNumThreads(1 + (i % 4));
  for (let j = 0; j < 3; j++) cpu.sumSquares(0, out, x, n, false);
}
cpu.setNumThreads(2);
console.log("ok");
`;

describe("thread pool", () => {
  it("survives resizing between parallel regions (no lost or double wake-ups)", () => {
    const r = spawnSync(process.execPath, ["-e", script], { timeout: 60_000, encoding: "utf8" });
    expect(r.signal, "the stress run hung and was killed").toBeNull();
    expect(r.stdout.trim()).toBe("ok");
  });
});
