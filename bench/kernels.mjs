// Kernel benchmark at MosaicBERT-base shapes, microbatch 256 x 128 tokens:
// T = 32768 tokens, C = 768, I = 3072, V = 30528, masked rows R = 0.3 T.
// Times every GEMM of a layer (forward, dX, dW), LayerNorm, GeGLU,
// cross-entropy, embedding gather/scatter and AdamW over 137M parameters with
// CUDA events (median of repeats after warm-up, inputs random, never zeros),
// and the PyTorch equivalent in the same run (bench/kernels_torch.py):
// torch.matmul, F.layer_norm, F.gelu(x1) * x2, F.cross_entropy, F.embedding,
// torch.optim.AdamW(fused=True).
// Usage: node bench/kernels.mjs [--no-torch] [--quick]
//   prints a table; writes $OUT/kernels_bench.json and $OUT/kernels_bench.md
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const addon = createRequire(import.meta.url)("../packages/kernels/build/mbert.node");
const cu = addon.cuda;
const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const withTorch = !argv.includes("--no-torch");

const F32 = 0;
const BF16 = 2;
const T = 32768;
const C = 768;
const I = 3072;
const V = 30528;
const R = Math.round(0.3 * T);
const NADAM = 137_000_000;
// MosaicBERT-base's parameter tensors (element counts): embeddings, 12 layers, MLM head.
const BASE_TENSORS = (() => {
  const [c, i, v] = [768, 3072, 30528];
  const layer = [3 * c * c, 3 * c, c * c, c, c, c, 2 * i * c, c * i, c, c, c];
  return [v * c, 2 * c, c, c, ...Array.from({ length: 12 }, () => layer).flat(), c * c, c, c, c, v];
})();
const PEAK_BW = 3.0e12; // measured device-to-device copy on this H100 (bytes read + written per second)
const REPEATS = quick ? 5 : 15;
const ITERS = quick ? 2 : 5;

const status = addon.cudaStatus();
if (!status.available) {
  console.error(`no usable CUDA device: ${status.reason}`);
  process.exit(1);
}

let seedCounter = 1;
function randBuf(dtype, n, std = 1) {
  const p = cu.alloc(n * (dtype === BF16 ? 2 : 4));
  cu.randNormal(dtype, p, n, 1234 + seedCounter++, 0, 0, std);
  return p;
}
function intBuf(n, hi) {
  const h = new Int32Array(n);
  for (let i = 0; i < n; ++i) h[i] = Math.floor(Math.random() * hi);
  const p = cu.alloc(n * 4);
  cu.upload(p, 0, h);
  return { p, h };
}

// Median milliseconds per call of fn: ITERS calls between two events, REPEATS times.
function time(fn) {
  for (let i = 0; i < 3; ++i) fn();
  cu.synchronize();
  const samples = [];
  for (let r = 0; r < REPEATS; ++r) {
    const e0 = cu.eventRecord();
    for (let i = 0; i < ITERS; ++i) fn();
    const e1 = cu.eventRecord();
    samples.push(cu.eventElapsed(e0, e1) / ITERS);
    cu.eventDestroy(e0);
    cu.eventDestroy(e1);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

const rows = [];
function add(name, kind, ms, work) {
  const row = { name, kind, ms };
  if (kind === "gemm") row.tflops = work / (ms * 1e-3) / 1e12;
  else row.gbs = work / (ms * 1e-3) / 1e9;
  row.work = work;
  rows.push(row);
  const rate = kind === "gemm" ? `${row.tflops.toFixed(0)} TFLOP/s` : `${row.gbs.toFixed(0)} GB/s`;
  console.log(`${name.padEnd(20)} ${ms.toFixed(3).padStart(8)} ms  ${rate}`);
}

// ---- GEMMs: weights (out, in) like torch.nn.Linear; y = x W^T ----------------------------
// [name, outFeatures, inFeatures]
const linears = [
  ["Wqkv", 3 * C, C],
  ["attn_out", C, C],
  ["gated_layers", 2 * I, C],
  ["wo", C, I],
];
for (const [lname, nOut, nIn] of linears) {
  const x = randBuf(BF16, T * nIn);
  const w = randBuf(BF16, nOut * nIn, 0.02);
  const y = cu.alloc(T * nOut * 2);
  const dy = randBuf(BF16, T * nOut);
  const dx = cu.alloc(T * nIn * 2);
  const dw = cu.alloc(nOut * nIn * 4);
  const dwb = cu.alloc(nOut * nIn * 2);
  cu.fill(F32, dw, nOut * nIn, 0);
  const flops = 2 * T * nOut * nIn;
  // forward: y(T, out) = x(T, in) @ W^T
  add(
    `${lname}.fwd`,
    "gemm",
    time(() => cu.matmul(BF16, BF16, y, x, w, 1, T, nOut, nIn, false, true, 1, 0, 0, 0, 0)),
    flops,
  );
  // the same with the layer's bias, added in cuBLASLt's epilogue (torch: F.linear)
  const bias = randBuf(BF16, nOut, 0.1);
  add(
    `${lname}.fwd+bias`,
    "gemm",
    time(() => cu.matmul(BF16, BF16, y, x, w, 1, T, nOut, nIn, false, true, 1, 0, 0, 0, 0, bias)),
    flops,
  );
  cu.free(bias);
  // dX(T, in) = dy(T, out) @ W(out, in)
  add(
    `${lname}.dX`,
    "gemm",
    time(() => cu.matmul(BF16, BF16, dx, dy, w, 1, T, nIn, nOut, false, false, 1, 0, 0, 0, 0)),
    flops,
  );
  // dW(out, in) = dy^T @ x, bf16 out (as torch.matmul) and fp32 accumulate (beta = 1)
  add(
    `${lname}.dW`,
    "gemm",
    time(() => cu.matmul(BF16, BF16, dwb, dy, x, 1, nOut, nIn, T, true, false, 1, 0, 0, 0, 0)),
    flops,
  );
  add(
    `${lname}.dW+=f32`,
    "gemm",
    time(() => cu.matmul(BF16, F32, dw, dy, x, 1, nOut, nIn, T, true, false, 1, 1, 0, 0, 0)),
    flops,
  );
  for (const p of [x, w, y, dy, dx, dw, dwb]) cu.free(p);
}

// ---- memory-bound kernels -----------------------------------------------------------
{
  const x = randBuf(BF16, T * C);
  const res = randBuf(BF16, T * C);
  const out = cu.alloc(T * C * 2);
  const resOut = cu.alloc(T * C * 2);
  const w = randBuf(BF16, C, 0.1);
  const b = randBuf(BF16, C, 0.1);
  const mean = cu.alloc(T * 4);
  const rstd = cu.alloc(T * 4);
  const dy = randBuf(BF16, T * C);
  const dx = cu.alloc(T * C * 2);
  const dw = cu.alloc(C * 4);
  const db = cu.alloc(C * 4);
  const tc = T * C * 2;
  add(
    "layernorm.fwd",
    "mem",
    time(() => cu.layernormForward(BF16, out, mean, rstd, x, 0, 0, w, b, T, C, 1e-12, 0, 0, 0)),
    2 * tc + T * 8,
  );
  add(
    "layernorm.fwd+res",
    "mem",
    time(() => cu.layernormForward(BF16, out, mean, rstd, x, res, resOut, w, b, T, C, 1e-12, 0, 0, 0)),
    4 * tc + T * 8,
  );
  add(
    "layernorm.fwd+res+dropout",
    "mem",
    time(() => cu.layernormForward(BF16, out, mean, rstd, x, res, resOut, w, b, T, C, 1e-12, 0.1, 7, 0)),
    4 * tc + T * 8,
  );
  add(
    "layernorm.bwd",
    "mem",
    time(() => cu.layernormBackward(BF16, F32, dx, dw, db, dy, x, mean, rstd, w, T, C, true, 0, 0, 0, 0)),
    3 * tc + T * 8,
  );
  const dxd = cu.alloc(T * C * 2);
  add(
    "layernorm.bwd+dropout",
    "mem",
    time(() => cu.layernormBackward(BF16, F32, dx, dw, db, dy, x, mean, rstd, w, T, C, true, dxd, 0.1, 7, 0)),
    4 * tc + T * 8,
  );
  cu.free(dxd);
  for (const p of [x, res, out, resOut, w, b, mean, rstd, dy, dx, dw, db]) cu.free(p);
}
{
  const x = randBuf(BF16, T * 2 * I);
  const out = cu.alloc(T * I * 2);
  const dy = randBuf(BF16, T * I);
  const dx = cu.alloc(T * 2 * I * 2);
  const ti = T * I * 2;
  add(
    "geglu.fwd",
    "mem",
    time(() => cu.gegluForward(BF16, out, x, T, I, 0, 0, 0)),
    3 * ti,
  );
  add(
    "geglu.bwd",
    "mem",
    time(() => cu.gegluBackward(BF16, dx, dy, x, T, I, 0, 0, 0)),
    5 * ti,
  );
  add(
    "geglu.fwd+dropout",
    "mem",
    time(() => cu.gegluForward(BF16, out, x, T, I, 0.1, 7, 0)),
    3 * ti,
  );
  add(
    "geglu.bwd+dropout",
    "mem",
    time(() => cu.gegluBackward(BF16, dx, dy, x, T, I, 0.1, 7, 0)),
    5 * ti,
  );

  for (const p of [x, out, dy, dx]) cu.free(p);
}
{
  const logits = randBuf(BF16, R * V, 2);
  const { p: labels } = intBuf(R, V);
  const loss = cu.alloc(R * 4);
  const lse = cu.alloc(R * 4);
  const dl = cu.alloc(R * V * 2);
  add(
    "cross_entropy.fwd",
    "mem",
    time(() => cu.crossEntropyForward(BF16, loss, lse, logits, labels, R, V, -100)),
    R * V * 2 + R * 12,
  );
  add(
    "cross_entropy.bwd",
    "mem",
    time(() => cu.crossEntropyBackward(BF16, dl, logits, lse, labels, R, V, -100, 1 / R)),
    2 * R * V * 2 + R * 8,
  );
  for (const p of [logits, labels, loss, lse, dl]) cu.free(p);
}
{
  const table = randBuf(BF16, V * C);
  const { p: ids, h } = intBuf(T, V);
  const out = cu.alloc(T * C * 2);
  const grad = cu.alloc(V * C * 4);
  cu.fill(F32, grad, V * C, 0);
  const unique = new Set(h).size;
  add(
    "embedding.fwd",
    "mem",
    time(() => cu.indexSelect(BF16, out, table, ids, T, C, V)),
    2 * T * C * 2 + T * 4,
  );
  add(
    "embedding.bwd",
    "mem",
    time(() => cu.indexAdd(BF16, F32, grad, out, ids, T, C, V)),
    T * C * 2 + 2 * unique * C * 4 + T * 16,
  );
  // The token-type embedding's gradient: two rows, every position on the first (no sort:
  // the ids are read once).
  const tt = cu.alloc(T * 4);
  cu.upload(tt, 0, new Int32Array(T));
  const ttGrad = cu.alloc(2 * C * 4);
  cu.fill(F32, ttGrad, 2 * C, 0);
  add(
    "embedding.bwd(2 rows)",
    "mem",
    time(() => cu.indexAdd(BF16, F32, ttGrad, out, tt, T, C, 2)),
    T * C * 2 + 2 * 2 * C * 4 + T * 4,
  );
  for (const p of [table, ids, out, grad, tt, ttGrad]) cu.free(p);
}
{
  const n = NADAM;
  const param = randBuf(F32, n, 0.02);
  const grad = randBuf(F32, n, 0.001);
  const m = randBuf(F32, n, 0.001);
  const v = cu.alloc(n * 4);
  cu.fill(F32, v, n, 1e-6);
  const copy = cu.alloc(n * 2);
  let step = 1;
  add(
    "adamw(137M)+bf16copy",
    "mem",
    time(() => cu.adamw(F32, F32, param, grad, m, v, n, 5e-4, 0.9, 0.98, 1e-6, 5e-9, step++, 1, BF16, copy)),
    n * 30,
  );
  add(
    "adamw(137M)",
    "mem",
    time(() => cu.adamw(F32, F32, param, grad, m, v, n, 5e-4, 0.9, 0.98, 1e-6, 5e-9, step++, 1, BF16, 0)),
    n * 28,
  );
  for (const p of [param, grad, m, v, copy]) cu.free(p);
}
{
  // The same step over MosaicBERT-base's own tensors, one adamwList launch, against
  // torch's fused AdamW over the same tensor list (plus a foreach copy to bf16).
  const sizes = BASE_TENSORS;
  const bufs = sizes.map((n) => {
    const b = { n, param: randBuf(F32, n, 0.02), grad: randBuf(F32, n, 0.001), m: randBuf(F32, n, 0.001) };
    b.v = cu.alloc(n * 4);
    cu.fill(F32, b.v, n, 1e-6);
    b.copy = cu.alloc(n * 2);
    return b;
  });
  let step = 1;
  const table = () =>
    new Float64Array(bufs.flatMap((b) => [b.param, b.grad, b.m, b.v, b.copy, b.n, 5e-4, 5e-9, step]));
  const total = sizes.reduce((a, n) => a + n, 0);
  add(
    `adamwList(${sizes.length} tensors)+bf16copy`,
    "mem",
    time(() => {
      step++;
      cu.adamwList(F32, F32, BF16, table(), 0.9, 0.98, 1e-6, 1, 0, 0);
    }),
    total * 30,
  );
  for (const b of bufs) for (const p of [b.param, b.grad, b.m, b.v, b.copy]) cu.free(p);
}
{
  const n = 1 << 30;
  const a = cu.alloc(n);
  const b = cu.alloc(n);
  cu.fill(F32, a, n / 4, 1.5);
  add(
    "copy 1 GiB (ceiling)",
    "mem",
    time(() => cu.copy(b, 0, a, 0, n)),
    2 * n,
  );
  cu.free(a);
  cu.free(b);
}

// ---- PyTorch side by side --------------------------------------------------------------
let torch = {};
let torchError = null;
if (withTorch) {
  const py = path.join(here, "kernels_torch.py");
  const r = spawnSync(
    "python3",
    [py, JSON.stringify({ T, C, I, V, R, NADAM, BASE_TENSORS, REPEATS, ITERS })],
    {
      encoding: "utf8",
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
      maxBuffer: 1 << 24,
    },
  );
  const line = (r.stdout || "").trim().split("\n").pop() || "";
  try {
    torch = JSON.parse(line);
  } catch {
    torchError = `kernels_torch.py failed (status ${r.status}): ${(r.stderr || "").slice(-2000)}`;
    console.error(torchError);
  }
}

// ---- table --------------------------------------------------------------------------------
const lines = [];
lines.push(
  `Device: ${status.device}. T=${T} tokens (256 x 128), C=${C}, I=${I}, V=${V}, masked rows R=${R}; bf16 data, fp32 accumulation. Median of ${REPEATS} x ${ITERS} calls (CUDA events).`,
);
lines.push("");
lines.push("| kernel | ms | rate | % of ceiling | torch ms | torch / ours |");
lines.push("|---|---:|---:|---:|---:|---:|");
for (const row of rows) {
  const t = torch[row.name];
  const rate = row.kind === "gemm" ? `${row.tflops.toFixed(0)} TFLOP/s` : `${row.gbs.toFixed(0)} GB/s`;
  const pct = row.kind === "gemm" ? "" : `${((row.gbs * 1e9 * 100) / PEAK_BW).toFixed(0)}%`;
  row.torchMs = t ?? null;
  row.ratio = t ? t / row.ms : null;
  lines.push(
    `| ${row.name} | ${row.ms.toFixed(3)} | ${rate} | ${pct} | ${t ? t.toFixed(3) : "-"} | ${t ? (t / row.ms).toFixed(2) : "-"} |`,
  );
}
const table = lines.join("\n");
console.log(`\n${table}`);
if (torch._info) console.log(`\ntorch: ${JSON.stringify(torch._info)}`);
const outDir = process.env.OUT;
if (outDir) {
  fs.writeFileSync(
    path.join(outDir, "kernels_bench.json"),
    JSON.stringify({ device: status.device, T, C, I, V, R, rows, torch, torchError }, null, 1),
  );
  fs.writeFileSync(path.join(outDir, "kernels_bench.md"), `${table}\n`);
}
