// CPU matmul throughput of @mbert/kernels (float32 unless noted).
// Run after `pnpm run build:native`:  node bench/matmul.mjs [--threads N] [--quick]
import { createRequire } from "node:module";
import os from "node:os";

const require = createRequire(import.meta.url);
const native = require("../packages/kernels/build/mbert.node");
const cpu = native.cpu;

const args = process.argv.slice(2);
const threadsArg = args.indexOf("--threads");
const threads = threadsArg >= 0 ? Number(args[threadsArg + 1]) : 2;
const quick = args.includes("--quick");
cpu.setNumThreads(threads);

const F32 = 0;
const F64 = 1;

// [label, M, N, K, transA, transB, dtype]; T = 4096 tokens (e.g. 32 x 128 unpadded), C = 768.
const shapes = [
  ["square 1024^3", 1024, 1024, 1024, false, false, F32],
  ["square 1024^3 (A^T)", 1024, 1024, 1024, true, false, F32],
  ["square 1024^3 (B^T)", 1024, 1024, 1024, false, true, F32],
  ["qkv proj T=2048 C=768 -> 3C", 2048, 2304, 768, false, true, F32],
  ["attn out T=2048 C=768", 2048, 768, 768, false, true, F32],
  ["geglu up T=2048 768 -> 2*3072", 2048, 6144, 768, false, true, F32],
  ["mlp down T=2048 3072 -> 768", 2048, 768, 3072, false, true, F32],
  ["dW = dy^T x (768x3072, T=2048)", 768, 3072, 2048, true, false, F32],
  ["square 512^3 float64", 512, 512, 512, false, false, F64],
];

function bench([label, M, N, K, ta, tb, dtype]) {
  const bytes = dtype === F64 ? 8 : 4;
  const a = cpu.alloc(M * K * bytes);
  const b = cpu.alloc(K * N * bytes);
  const c = cpu.alloc(M * N * bytes);
  cpu.fill(dtype, a, M * K, 0.5);
  cpu.fill(dtype, b, K * N, 0.25);
  const run = () => cpu.matmul(dtype, dtype, c, a, b, 1, M, N, K, ta, tb, 1, 0, 0, 0, 0);
  run();
  const flops = 2 * M * N * K;
  const minSeconds = quick ? 0.2 : 1;
  let iters = 0;
  let best = Number.POSITIVE_INFINITY;
  const t0 = performance.now();
  while (iters < 3 || (performance.now() - t0) / 1000 < minSeconds) {
    const s = performance.now();
    run();
    best = Math.min(best, (performance.now() - s) / 1000);
    iters++;
  }
  cpu.free(a);
  cpu.free(b);
  cpu.free(c);
  return {
    label,
    M,
    N,
    K,
    transA: ta,
    transB: tb,
    dtype: dtype === F64 ? "float64" : "float32",
    ms: best * 1000,
    gflops: flops / best / 1e9,
    iters,
  };
}

const results = (quick ? shapes.slice(0, 1) : shapes).map(bench);
console.log(`cpu matmul, ${threads} thread(s), ${os.cpus()[0]?.model ?? "unknown cpu"}`);
console.log(
  `${"shape".padEnd(34)} ${"M".padStart(5)} ${"N".padStart(5)} ${"K".padStart(5)}  ${"ms".padStart(8)}  ${"GFLOP/s".padStart(8)}`,
);
for (const r of results) {
  console.log(
    `${r.label.padEnd(34)} ${String(r.M).padStart(5)} ${String(r.N).padStart(5)} ${String(r.K).padStart(5)}  ${r.ms.toFixed(2).padStart(8)}  ${r.gflops.toFixed(1).padStart(8)}`,
  );
}
console.log(JSON.stringify({ bench: "cpu-matmul", threads, square1024Gflops: results[0].gflops, results }));
