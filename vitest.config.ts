import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const pkg = (name: string) => fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url));

// Tests import workspace packages from their TypeScript sources, so `pnpm test`
// does not depend on a fresh `dist/` build.
export default defineConfig({
  resolve: {
    alias: {
      "@mbert/kernels": pkg("kernels"),
      "@mbert/tensor": pkg("tensor"),
      "@mbert/model": pkg("model"),
      "@mbert/data": pkg("data"),
      "@mbert/train": pkg("train"),
      "@mbert/glue": pkg("glue"),
      "@mbert/cli": pkg("cli"),
    },
  },
  test: {
    include: ["packages/*/test/**/*.test.ts", "examples/*/test/**/*.test.ts"],
    setupFiles: ["./vitest.setup.ts"],
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
