import { defineConfig } from "tsup";

export default defineConfig({
  // shard-worker is its own entry: the shard writer starts it with new Worker().
  entry: ["src/index.ts", "src/shard-worker.ts"],
  format: ["esm"],
  dts: { entry: "src/index.ts" },
  sourcemap: true,
  clean: true,
  target: "node20",
});
