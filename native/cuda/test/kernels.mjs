// GPU check of every non-attention CUDA kernel against the CPU backend.
// Each case draws fresh random inputs, runs the kernel on both backends (bf16
// buffers become float32 on the CPU, holding the same bf16-rounded values),
// poisons the outputs with NaN first, and compares every element:
// ||gpu - cpu|| / ||cpu|| <= 1e-2 for bf16, <= 1e-4 for float32 (exact where
// the operation is exact); NaN never passes. Also checks the runtime: OOM
// survival, memory back to baseline, device error flag, events, determinism.
// Usage: node native/cuda/test/kernels.mjs [--small] [--sections a,b,...] [--self-test]
//   sections: elementwise, reductions, matmul, bias, softmax, layernorm, geglu,
//   index, random, crossentropy, adamw, runtime (default: all). JSON to $OUT/kernels_test.json
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { bf16Bits, rand, randn, seed0, toBf16Bits } from "./common.mjs";

const addon = createRequire(import.meta.url)("../../../packages/kernels/build/mbert.node");
const cpu = addon.cpu;
const small = process.argv.includes("--small");
// --self-test runs the harness with the CPU backend in the GPU's place (no GPU
// needed): every comparison must then be exact; it checks this script itself.
const selfTest = process.argv.includes("--self-test");
const cu = selfTest ? cpu : addon.cuda;
const sectionsArg = process.argv.indexOf("--sections");
const sections = sectionsArg >= 0 ? new Set(process.argv[sectionsArg + 1].split(",")) : null;
const want = (name) => !sections || sections.has(name);
const F32 = 0;
const BF16 = 2;
const I32 = 3;
const BYTES = { 0: 4, 2: 2, 3: 4 };
const TOL = { [F32]: 1e-4, [BF16]: 1e-2 };

if (cpu.setNumThreads) cpu.setNumThreads(Math.max(1, os.cpus().length));

// ---- random numbers and bf16 ----------------------------------------------------

const roundBf16 = (x) => bf16Bits(toBf16Bits(x));
function randnArr(n, scale = 1, shift = 0) {
  const a = new Float64Array(n);
  for (let i = 0; i < n; ++i) a[i] = shift + scale * randn();
  return a;
}
function uniformArr(n, lo, hi) {
  const a = new Float64Array(n);
  for (let i = 0; i < n; ++i) a[i] = lo + (hi - lo) * rand();
  return a;
}
function intArr(n, lo, hi) {
  const a = new Int32Array(n);
  for (let i = 0; i < n; ++i) a[i] = lo + Math.floor(rand() * (hi - lo));
  return a;
}

// Ids like a real batch's and worse: a third on one id ([MASK]-like), a fifth over 40
// ids (common words: runs of tens to hundreds), some ids repeated 30-70 times (runs
// about one sort tile long), the rest uniform.
function skewedIds(n, numRows) {
  const a = new Int32Array(n);
  for (let i = 0; i < n; ++i) {
    const u = rand();
    if (u < 0.33) a[i] = 103 % numRows;
    else if (u < 0.53) a[i] = (1000 + Math.floor(rand() * 40)) % numRows;
    else if (u < 0.6) a[i] = (2000 + Math.floor(rand() * Math.max(1, Math.floor(n / 700)))) % numRows;
    else a[i] = Math.floor(rand() * numRows);
  }
  return a;
}

// ---- buffers on both backends ---------------------------------------------------

// A buffer of `dtype` (as on the GPU) with values (Float64Array / Int32Array) or
// n elements to poison. bf16 values are rounded to bf16 once, here, so both
// backends see the same numbers; the CPU holds them as float32.
class Buf {
  constructor(dtype, values, out = false) {
    this.dtype = dtype;
    this.out = out;
    if (typeof values === "number") {
      this.n = values;
      this.values = null;
    } else {
      this.n = values.length;
      this.values = dtype === BF16 ? values.map(roundBf16) : values;
    }
  }
}
const input = (dtype, values) => new Buf(dtype, values, false);
const output = (dtype, n) => new Buf(dtype, n, true);
const inout = (dtype, values) => new Buf(dtype, values, true);

function hostArray(dtype, n) {
  if (dtype === BF16) return new Uint16Array(n);
  if (dtype === I32) return new Int32Array(n);
  return new Float32Array(n);
}

function toHost(dtype, values, n) {
  const h = hostArray(dtype, n);
  if (!values) {
    if (dtype === BF16) h.fill(0x7fc0);
    else if (dtype === I32) h.fill(-2147483648);
    else h.fill(Number.NaN);
    return h;
  }
  for (let i = 0; i < n; ++i) h[i] = dtype === BF16 ? toBf16Bits(values[i]) : values[i];
  return h;
}

function fromHost(dtype, h) {
  if (dtype === BF16) return Float64Array.from(h, bf16Bits);
  return Float64Array.from(h);
}

// Runs `kernel` on one backend. `args(B)` builds the argument list with
// B.p(buf) (the buffer's address) and B.dt(code) (bf16 -> float32 on the CPU).
function runOn(backend, isCpu, kernel, args, bufs, extra = {}) {
  const dtOf = (d) => (isCpu && d === BF16 ? F32 : d);
  const ptrs = new Map();
  for (const b of bufs) {
    const dt = dtOf(b.dtype);
    const p = backend.alloc(Math.max(1, b.n) * BYTES[dt]);
    if (b.n > 0) backend.upload(p, 0, toHost(dt, b.values, b.n));
    ptrs.set(b, p);
  }
  const B = { p: (b) => (b ? ptrs.get(b) : 0), dt: dtOf };
  try {
    backend[kernel](...args(B));
    if (extra.after) extra.after(backend, B);
    const outs = new Map();
    for (const b of bufs) {
      if (!b.out) continue;
      const dt = dtOf(b.dtype);
      const h = hostArray(dt, b.n);
      if (b.n > 0) backend.download(ptrs.get(b), 0, h);
      outs.set(b, fromHost(dt, h));
    }
    return outs;
  } finally {
    for (const p of ptrs.values()) backend.free(p);
  }
}

function compare(got, ref) {
  let num = 0;
  let den = 0;
  let nan = 0;
  let maxAbs = 0;
  for (let i = 0; i < ref.length; ++i) {
    const g = got[i];
    const r = ref[i];
    if (Number.isNaN(g) && !Number.isNaN(r)) ++nan;
    else if (!Number.isNaN(r)) {
      const d = g - r;
      num += d * d;
      den += r * r;
      if (Math.abs(d) > maxAbs) maxAbs = Math.abs(d);
    }
  }
  const rel = den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
  return { rel, nan, maxAbs };
}

const results = [];
let failures = 0;

function record(name, shape, dtype, out, cmp, tol) {
  const ok = cmp.nan === 0 && cmp.rel <= tol && Number.isFinite(cmp.rel);
  if (!ok) ++failures;
  results.push({
    name,
    shape,
    dtype: dtype === BF16 ? "bf16" : dtype === F32 ? "f32" : "i32",
    out,
    ...cmp,
    tol,
    ok,
  });
  const line = `${ok ? "ok  " : "FAIL"} ${name.padEnd(22)} ${String(shape).padEnd(28)} ${out.padEnd(10)} rel ${cmp.rel.toExponential(2)}  nan ${cmp.nan}  (tol ${tol})`;
  console.log(line);
}

// Runs on both backends and compares every output buffer.
const timeByName = {};
function check(name, shape, dtype, kernel, args, bufs, opts = {}) {
  const t0 = Date.now();
  try {
    return checkInner(name, shape, dtype, kernel, args, bufs, opts);
  } finally {
    timeByName[name] = (timeByName[name] ?? 0) + (Date.now() - t0) / 1000;
  }
}

function checkInner(name, shape, dtype, kernel, args, bufs, opts) {
  let gpu;
  let ref;
  try {
    gpu = runOn(cu, false, kernel, args, bufs, opts);
    ref = runOn(cpu, true, kernel, args, bufs, opts);
  } catch (e) {
    ++failures;
    results.push({ name, shape, ok: false, error: String(e?.message ?? e) });
    console.log(`FAIL ${name} ${shape}: ${e?.message ?? e}`);
    return null;
  }
  const tol = opts.tol ?? TOL[dtype] ?? 1e-4;
  for (const b of bufs) {
    if (!b.out) continue;
    const label = b.label ?? "out";
    record(name, shape, dtype, label, compare(gpu.get(b), ref.get(b)), b.tol ?? tol);
  }
  return { gpu, ref };
}

function named(buf, label, tol) {
  buf.label = label;
  if (tol !== undefined) buf.tol = tol;
  return buf;
}

function pass(name, detail, ok) {
  if (!ok) ++failures;
  results.push({ name, detail, ok });
  console.log(`${ok ? "ok  " : "FAIL"} ${name.padEnd(22)} ${detail}`);
}

// ---- runtime ------------------------------------------------------------------------

const status = selfTest ? { available: true, device: "cpu (self-test)" } : addon.cudaStatus();
console.log(
  "cudaStatus:",
  JSON.stringify(status),
  "devices:",
  selfTest ? 0 : cu.deviceCount(),
  "seed:",
  seed0,
);
if (!status.available) {
  console.log("no usable CUDA device; nothing to check");
  process.exit(1);
}
const DTYPES = [BF16, F32];
const baseline = cu.memoryStats();

// ---- elementwise ------------------------------------------------------------------------

const sizesEw = small ? [1, 37, 1000] : [1, 37, 1000, (1 << 22) + 3];
if (want("elementwise"))
  for (const dt of DTYPES) {
    for (const n of sizesEw) {
      const v = rand() * 10 - 5;
      const out = output(dt, n);
      check("fill", n, dt, "fill", (B) => [B.dt(dt), B.p(out), n, v], [out]);
    }
  }
if (want("elementwise")) {
  const n = 1001;
  const o2 = output(I32, n);
  check("fill", n, I32, "fill", (B) => [I32, B.p(o2), n, -7], [o2]);
}

// Unary: domain-safe inputs per op (log/sqrt/rsqrt/pow on positive values).
const UNARY = [
  "neg",
  "exp",
  "log",
  "tanh",
  "gelu",
  "sqrt",
  "abs",
  "relu",
  "sigmoid",
  "affine",
  "pow",
  "rsqrt",
  "square",
];
const positive = new Set([2, 5, 10, 11]);
if (want("elementwise"))
  for (const dt of DTYPES) {
    for (let op = 0; op < UNARY.length; ++op) {
      for (const n of small ? [33] : [7, (1 << 18) + 5]) {
        const x = positive.has(op) ? uniformArr(n, 0.2, 3) : randnArr(n);
        const alpha = op === 10 ? 1.7 : 0.75;
        const beta = 0.3;
        const xb = input(dt, x);
        const out = output(dt, n);
        check(
          `unary ${UNARY[op]}`,
          n,
          dt,
          "unary",
          (B) => [op, B.dt(dt), B.p(out), B.p(xb), n, alpha, beta],
          [xb, out],
        );
        // Backward: pass y from the forward (rounded like the forward output).
        const yv = x.map((xv) => {
          const xr = dt === BF16 ? roundBf16(xv) : xv;
          const f = [
            -xr,
            Math.exp(xr),
            Math.log(xr),
            Math.tanh(xr),
            0,
            Math.sqrt(xr),
            0,
            0,
            1 / (1 + Math.exp(-xr)),
            0,
            0,
            1 / Math.sqrt(xr),
            0,
          ][op];
          return f;
        });
        const dy = input(dt, randnArr(n));
        const xin = input(dt, x);
        const yin = input(dt, yv);
        const dx = output(dt, n);
        check(
          `unaryBwd ${UNARY[op]}`,
          n,
          dt,
          "unaryBackward",
          (B) => [op, B.dt(dt), B.p(dx), B.p(dy), B.p(xin), B.p(yin), n, alpha, beta],
          [dy, xin, yin, dx],
        );
      }
    }
  }

// Binary with broadcasting: contiguous, row broadcast, column broadcast, scalar, 4-d general, strided.
const BIN = ["add", "sub", "mul", "div", "maximum", "minimum", "pow", "eq", "gt", "lt", "ge", "le"];
function extentOf(shape, strides) {
  let e = 1;
  for (let d = 0; d < shape.length; ++d) e += (shape[d] - 1) * strides[d];
  return e;
}
const binCases = small
  ? [
      { shape: [3, 5], as: [5, 1], bs: [0, 1] },
      { shape: [2, 3, 4, 5], as: [60, 20, 5, 1], bs: [0, 5, 0, 1] },
    ]
  : [
      { shape: [1024, 768], as: [768, 1], bs: [768, 1] },
      { shape: [1024, 768], as: [768, 1], bs: [0, 1] },
      { shape: [4096, 768], as: [768, 1], bs: [1, 0] },
      { shape: [1001], as: [1], bs: [0] },
      { shape: [7, 33], as: [33, 1], bs: [0, 1] },
      { shape: [2, 3, 4, 5], as: [60, 20, 5, 1], bs: [0, 5, 0, 1] },
      { shape: [16, 12, 128, 64], as: [98304, 64, 768, 1], bs: [0, 128, 1, 0] },
      { shape: [33, 17], as: [1, 40], bs: [17, 1] },
    ];
if (want("elementwise"))
  for (const dt of DTYPES) {
    for (let op = 0; op < BIN.length; ++op) {
      for (const c of binCases) {
        const na = extentOf(c.shape, c.as);
        const nb = extentOf(c.shape, c.bs);
        const n = c.shape.reduce((p, q) => p * q, 1);
        const a = input(dt, op === 6 ? uniformArr(na, 0.5, 2) : randnArr(na));
        // Comparisons: draw b from a's values half the time so ties occur.
        const bv =
          op >= 7
            ? Float64Array.from({ length: nb }, (_, i) => (rand() < 0.5 ? a.values[i % na] : randn()))
            : op === 6
              ? uniformArr(nb, -1.5, 1.5)
              : randnArr(nb, 1, op === 3 ? 3 : 0);
        const b = input(dt, bv);
        const out = output(dt, n);
        check(
          `binary ${BIN[op]}`,
          c.shape.join("x"),
          dt,
          "binary",
          (B) => [op, B.dt(dt), B.p(out), B.p(a), B.p(b), c.shape, c.as, c.bs],
          [a, b, out],
        );
      }
    }
  }

// stridedCopy: permute (0,2,1,3), slice with offsets, expand, contiguous; bf16, f32, int32.
const copyCases = [
  { shape: [16, 12, 128, 64], xs: [98304, 64, 768, 1], os: [98304, 8192, 64, 1], xo: 0, oo: 0 },
  { shape: [100, 700], xs: [768, 1], os: [700, 1], xo: 5, oo: 0 },
  { shape: [64, 3, 768], xs: [0, 0, 1], os: [2304, 768, 1], xo: 0, oo: 0 },
  { shape: [1000, 768], xs: [768, 1], os: [768, 1], xo: 0, oo: 0 },
  { shape: [5, 7, 3], xs: [1, 5, 35], os: [21, 3, 1], xo: 2, oo: 1 },
];
if (want("elementwise"))
  for (const dt of [BF16, F32, I32]) {
    for (const c of small ? copyCases.slice(4) : copyCases) {
      const nx = c.xo + extentOf(c.shape, c.xs);
      const no = c.oo + extentOf(c.shape, c.os);
      const x = input(dt, dt === I32 ? intArr(nx, -1000, 1000) : randnArr(nx));
      // Elements of out the view does not cover keep this value on both backends.
      const init = dt === I32 ? new Int32Array(no).fill(0) : new Float64Array(no).fill(0.5);
      const o3 = inout(dt, init);
      check(
        "stridedCopy",
        c.shape.join("x"),
        dt,
        "stridedCopy",
        (B) => [B.dt(dt), B.p(o3), c.oo, c.os, B.p(x), c.xo, c.xs, c.shape],
        [x, o3],
        { tol: 0 },
      );
    }
  }

// cast: every pair, exact (both backends hold the real dtypes here).
if (want("elementwise"))
  for (const [od, xd] of [
    [BF16, F32],
    [F32, BF16],
    [I32, F32],
    [F32, I32],
    [I32, BF16],
    [BF16, I32],
  ]) {
    const n = small ? 37 : 100003;
    const xv = xd === I32 ? intArr(n, -100000, 100000) : randnArr(n, 1000);
    const xh = toHost(xd, xd === BF16 ? xv.map(roundBf16) : xv, n);
    const run = (be) => {
      const px = be.alloc(n * BYTES[xd]);
      const po = be.alloc(n * BYTES[od]);
      be.upload(px, 0, xh);
      be.upload(po, 0, toHost(od, null, n));
      be.cast(od, po, xd, px, n);
      const h = hostArray(od, n);
      be.download(po, 0, h);
      be.free(px);
      be.free(po);
      return h;
    };
    const g = run(cu);
    const r = run(cpu);
    let diff = 0;
    for (let i = 0; i < n; ++i) if (g[i] !== r[i]) ++diff;
    pass("cast", `${xd}->${od} n=${n}: ${diff} elements differ bitwise`, diff === 0);
  }

// ---- reductions ----------------------------------------------------------------------------

const redCases = small
  ? [
      [1, 37, 1],
      [3, 5, 7],
    ]
  : [
      [1, 1, 1],
      [8192, 768, 1],
      [1, 2000003, 1],
      [1, 8192, 768],
      [4, 1000, 33],
      [7, 3, 1],
      [2, 65537, 3],
    ];
if (want("reductions"))
  for (const dt of DTYPES) {
    for (let op = 0; op < 4; ++op) {
      for (const [outer, size, inner] of redCases) {
        const x = input(dt, randnArr(outer * size * inner));
        const out = output(dt, outer * inner);
        const tol = dt === BF16 ? 1e-2 : 1e-4;
        check(
          `reduce ${["sum", "max", "min", "sumsq"][op]}`,
          `${outer}x${size}x${inner}`,
          dt,
          "reduce",
          (B) => [op, B.dt(dt), B.p(out), B.p(x), outer, size, inner],
          [x, out],
          { tol },
        );
      }
    }
    for (const [outer, size, inner] of small
      ? [[2, 9, 1]]
      : [
          [256, 30528, 1],
          [3, 17, 5],
          [1, 1, 1],
        ]) {
      const xv = randnArr(outer * size * inner);
      if (size > 3) xv[2] = xv[3]; // a tie
      const x = input(dt, xv);
      const out = output(I32, outer * inner);
      check(
        "argmax",
        `${outer}x${size}x${inner}`,
        dt,
        "argmax",
        (B) => [B.dt(dt), B.p(out), B.p(x), outer, size, inner],
        [x, out],
        { tol: 0 },
      );
    }
    for (const n of small ? [1000] : [1, (1 << 22) + 3]) {
      for (const acc of [false, true]) {
        const x = input(dt, randnArr(n));
        const out = inout(F32, Float64Array.of(2.5));
        check(
          "sumSquares",
          `${n} acc=${acc}`,
          dt,
          "sumSquares",
          (B) => [B.dt(dt), B.p(out), B.p(x), n, acc],
          [x, out],
          { tol: 1e-5 },
        );
      }
    }
  }

// ---- matmul -------------------------------------------------------------------------------

// [M, N, K, transA, transB, batch, strideA, strideB, strideOut, alpha, beta]
const mmCases = small
  ? [[7, 13, 33, false, false, 1, 0, 0, 0, 1, 0]]
  : [
      [1, 1, 1, false, false, 1, 0, 0, 0, 1, 0],
      [7, 13, 33, false, true, 1, 0, 0, 0, 1, 0],
      [257, 129, 65, true, false, 1, 0, 0, 0, 0.5, 0],
      [64, 48, 40, true, true, 1, 0, 0, 0, 1, 0.75],
      [4096, 2304, 768, false, true, 1, 0, 0, 0, 1, 0],
      [768, 3072, 2048, true, false, 1, 0, 0, 0, 1, 1],
      [128, 64, 128, false, false, 12, 128 * 128, 128 * 64, 128 * 64, 1, 0],
      [128, 128, 64, false, true, 6, 128 * 64, 0, 128 * 128, 1, 0],
      [96, 80, 64, false, false, 5, 0, 64 * 80, 96 * 80, 1, 0],
    ];
// One matmul case on both backends; withBias adds a bias of N (cuBLASLt's epilogue on
// one product with N % 8 == 0; the bias kernel otherwise: a batch that does not fold
// into one product, K = 0, other N).
function checkMatmul(dt, outDt, [M, N, K, ta, tb, batch, sA, sB, sO, alpha, beta], withBias) {
  const a = input(dt, randnArr((batch - 1) * sA + M * K));
  const b = input(dt, randnArr((batch - 1) * sB + K * N));
  const no = (batch - 1) * sO + M * N;
  const out = beta !== 0 ? inout(outDt, randnArr(no)) : output(outDt, no);
  const bias = withBias ? input(outDt, randnArr(N)) : null;
  const tol = dt === BF16 ? (outDt === BF16 ? 1e-2 : 2e-3) : 1e-5;
  check(
    withBias ? "matmul+bias" : "matmul",
    `${batch}x${M}x${N}x${K}${ta ? " tA" : ""}${tb ? " tB" : ""}${beta ? " b" : ""} ->${outDt === BF16 ? "bf16" : "f32"}`,
    dt,
    "matmul",
    (B) => [
      B.dt(dt),
      B.dt(outDt),
      B.p(out),
      B.p(a),
      B.p(b),
      batch,
      M,
      N,
      K,
      ta,
      tb,
      alpha,
      beta,
      sA,
      sB,
      sO,
      ...(bias ? [B.p(bias)] : []),
    ],
    [a, b, out, ...(bias ? [bias] : [])],
    { tol },
  );
}

// [M, N, K, transA, transB, batch, strideA, strideB, strideOut, alpha, beta]
const mmBiasCases = small
  ? [[7, 13, 33, false, true, 1, 0, 0, 0, 1, 0]]
  : [
      [1, 7, 5, false, true, 1, 0, 0, 0, 1, 0],
      [4096, 2304, 768, false, true, 1, 0, 0, 0, 1, 0],
      [257, 64, 32, false, true, 1, 0, 0, 0, 1, 0.5],
      [333, 769, 96, false, true, 1, 0, 0, 0, 1, 0.5],
      [64, 48, 40, false, false, 3, 64 * 40, 40 * 48, 64 * 48, 1, 0],
      [5, 9, 0, false, true, 1, 0, 0, 0, 1, 0],
    ];
if (want("matmul"))
  for (const [dt, outDt] of [
    [BF16, BF16],
    [BF16, F32],
    [F32, F32],
  ]) {
    for (const c of mmCases) checkMatmul(dt, outDt, c, false);
    for (const c of mmBiasCases) checkMatmul(dt, outDt, c, true);
  }

// addBias / biasGrad (odd cols, 1 row, C=768 at 32768 rows).
if (want("bias"))
  for (const dt of DTYPES) {
    for (const [rows, cols] of small
      ? [[3, 5]]
      : [
          [1, 7],
          [33, 769],
          [8192, 768],
          [2048, 3072],
        ]) {
      const out = inout(dt, randnArr(rows * cols));
      const bias = input(dt, randnArr(cols));
      check("addBias", `${rows}x${cols}`, dt, "addBias", (B) => [B.dt(dt), B.p(out), B.p(bias), rows, cols], [
        out,
        bias,
      ]);
      for (const acc of [false, true]) {
        const dy = input(dt, randnArr(rows * cols));
        const db = inout(F32, randnArr(cols));
        check(
          "biasGrad",
          `${rows}x${cols} acc=${acc}`,
          dt,
          "biasGrad",
          (B) => [B.dt(dt), F32, B.p(db), B.p(dy), rows, cols, acc],
          [dy, db],
          { tol: 1e-4 },
        );
      }
    }
  }

// ---- softmax, layernorm, geglu ----------------------------------------------------------------

if (want("softmax"))
  for (const dt of DTYPES) {
    for (const [rows, cols] of small
      ? [[3, 33]]
      : [
          [1, 1],
          [7, 33],
          [4096, 128],
          [96, 30528],
          [3, 1025],
        ]) {
      for (const log of [false, true]) {
        const x = input(dt, randnArr(rows * cols, 2));
        const y = output(dt, rows * cols);
        const r = check(
          "softmaxFwd",
          `${rows}x${cols} log=${log}`,
          dt,
          "softmaxForward",
          (B) => [B.dt(dt), B.p(y), B.p(x), rows, cols, log],
          [x, y],
        );
        if (!r) continue;
        const yv = r.ref.get(y);
        const yin = input(dt, yv);
        const dy = input(dt, randnArr(rows * cols));
        const dx = output(dt, rows * cols);
        check(
          "softmaxBwd",
          `${rows}x${cols} log=${log}`,
          dt,
          "softmaxBackward",
          (B) => [B.dt(dt), B.p(dx), B.p(dy), B.p(yin), rows, cols, log],
          [dy, yin, dx],
        );
      }
    }
  }

if (want("layernorm"))
  for (const dt of DTYPES) {
    for (const [rows, C] of small
      ? [
          [3, 33],
          [2, 64],
        ]
      : [
          [1, 768],
          [7, 33],
          [dt === BF16 ? 32768 : 4096, 768],
          [100, 1024],
          [5, 3000],
          [64, 100],
        ]) {
      for (const [withRes, drop] of [
        [false, 0],
        [true, 0],
        [true, 0.1],
      ]) {
        const n = rows * C;
        const x = input(dt, randnArr(n, 1, 0.5));
        const res = withRes ? input(dt, randnArr(n)) : null;
        const resOut = withRes ? named(output(dt, n), "residualOut") : null;
        const w = input(dt, randnArr(C, 0.2, 1));
        const bi = input(dt, randnArr(C, 0.2));
        const out = named(output(dt, n), "out");
        // The CPU reference holds bf16 data as float32 and does not round h (nor the
        // dropped-out x) to bf16 as the GPU does, so bf16 statistics differ by bf16
        // rounding, more so with the dropout's second rounding.
        const statTol = dt === BF16 ? (drop ? 5e-3 : 2e-3) : 1e-4;
        const mean = named(output(F32, rows), "mean", statTol);
        const rstd = named(output(F32, rows), "rstd", statTol);
        const bufs = [x, w, bi, out, mean, rstd, ...(withRes ? [res, resOut] : [])];
        const r = check(
          "layernormFwd",
          `${rows}x${C}${withRes ? " +res" : ""}${drop ? " +dropout" : ""}`,
          dt,
          "layernormForward",
          (B) => [
            B.dt(dt),
            B.p(out),
            B.p(mean),
            B.p(rstd),
            B.p(x),
            B.p(res),
            B.p(resOut),
            B.p(w),
            B.p(bi),
            rows,
            C,
            1e-5,
            drop,
            drop ? 5 : 0,
            drop ? 12 : 0,
          ],
          bufs,
        );
        if (r && drop) {
          // The GPU's statistics against its own h, which the looser bf16 tolerance
          // above does not cover: mean and rstd of each row of residualOut, in double.
          const h = r.gpu.get(resOut);
          const gm = r.gpu.get(mean);
          const gr = r.gpu.get(rstd);
          const refMean = new Float64Array(rows);
          const refRstd = new Float64Array(rows);
          for (let i = 0; i < rows; ++i) {
            let sum = 0;
            for (let c = 0; c < C; ++c) sum += h[i * C + c];
            const mu = sum / C;
            let sq = 0;
            for (let c = 0; c < C; ++c) sq += (h[i * C + c] - mu) ** 2;
            refMean[i] = mu;
            refRstd[i] = 1 / Math.sqrt(sq / C + 1e-5);
          }
          record("layernormFwd", `${rows}x${C} +res +dropout, own h`, dt, "mean", compare(gm, refMean), 1e-4);
          record("layernormFwd", `${rows}x${C} +res +dropout, own h`, dt, "rstd", compare(gr, refRstd), 1e-4);
        }
        if (!r || withRes) continue;
        // Backward with the reference statistics.
        const xin = x;
        const meanIn = input(F32, r.ref.get(mean));
        const rstdIn = input(F32, r.ref.get(rstd));
        const dy = input(dt, randnArr(n));
        const dx = named(output(dt, n), "dx");
        // acc: accumulate the parameter gradients; drop: also dx through a dropout mask.
        for (const [acc, drop] of [
          [false, 0],
          [true, 0],
          [false, 0.1],
        ]) {
          const dw = named(inout(F32, randnArr(C)), "dweight", 1e-3);
          const db = named(inout(F32, randnArr(C)), "dbias", 1e-3);
          const dxd = drop ? named(output(dt, n), "dxDropout") : null;
          const rb = check(
            "layernormBwd",
            `${rows}x${C} acc=${acc}${drop ? " +dropout" : ""}`,
            dt,
            "layernormBackward",
            (B) => [
              B.dt(dt),
              F32,
              B.p(dx),
              B.p(dw),
              B.p(db),
              B.p(dy),
              B.p(xin),
              B.p(meanIn),
              B.p(rstdIn),
              B.p(w),
              rows,
              C,
              acc,
              B.p(dxd),
              drop,
              drop ? 9 : 0,
              drop ? 4 : 0,
            ],
            [xin, meanIn, rstdIn, w, dy, dx, dw, db, ...(dxd ? [dxd] : [])],
          );
          if (rb && dxd) {
            // the dropout mask itself: zeros at the same positions
            const gg = rb.gpu.get(dxd);
            const rr = rb.ref.get(dxd);
            let diff = 0;
            for (let i = 0; i < n; ++i) if ((gg[i] === 0) !== (rr[i] === 0)) ++diff;
            pass("layernorm dropout mask", `${rows}x${C} ${dt}: ${diff} positions differ`, diff === 0);
          }
        }
      }
    }
  }

if (want("geglu"))
  for (const dt of DTYPES) {
    for (const [rows, I] of small
      ? [[3, 9]]
      : [
          [1, 8],
          [7, 33],
          [4096, 3072],
          [5, 100],
        ]) {
      // p > 0: dropout fused on the output; the mask must match the CPU's exactly.
      for (const [p, s, off] of [
        [0, 0, 0],
        [0.1, 77, 5],
      ]) {
        const tag = `${rows}x${I} p=${p}`;
        const x = input(dt, randnArr(rows * 2 * I));
        const out = output(dt, rows * I);
        const r = check(
          "gegluFwd",
          tag,
          dt,
          "gegluForward",
          (B) => [B.dt(dt), B.p(out), B.p(x), rows, I, p, s, off],
          [x, out],
        );
        if (r && p > 0) {
          const gg = r.gpu.get(out);
          const rr = r.ref.get(out);
          let diff = 0;
          for (let i = 0; i < rows * I; ++i) if ((gg[i] === 0) !== (rr[i] === 0)) ++diff;
          pass("geglu dropout mask", `${tag} ${dt}: ${diff} positions differ`, diff === 0);
        }
        const dy = input(dt, randnArr(rows * I));
        const dx = output(dt, rows * 2 * I);
        check(
          "gegluBwd",
          tag,
          dt,
          "gegluBackward",
          (B) => [B.dt(dt), B.p(dx), B.p(dy), B.p(x), rows, I, p, s, off],
          [x, dy, dx],
        );
      }
    }
  }

// ---- rows: embedding gather / scatter --------------------------------------------------------------

if (want("index"))
  for (const dt of DTYPES) {
    for (const [n, rowSize, numRows, skew] of small
      ? [
          [5, 7, 3],
          [300, 8, 4],
          [300, 8, 5],
          [2000, 8, 6, "skewed"],
        ]
      : [
          [1, 768, 30528],
          [dt === BF16 ? 16384 : 2048, 768, 30528],
          [100, 33, 7],
          [4000, 768, 3],
          [29400, 768, 2], // token types: two segments spanning hundreds of tiles
          [257, 64, 1], // one key, one position past a sort tile
          [dt === BF16 ? 20000 : 3000, 768, 30528, "skewed"], // runs of every length, long and short
          [70000, 64, 30528], // past the small-sort limit (CUB's sort)
          [300000, 16, 2], // few rows, several index stages per chunk
          [3000, 1001, 3], // few rows, odd columns: one column per thread, two column chunks
          [5000, 1536, 2], // few rows, two column chunks of 8-column threads
        ]) {
      const table = input(dt, randnArr(numRows * rowSize));
      const idx = input(I32, skew === "skewed" ? skewedIds(n, numRows) : intArr(n, 0, numRows));
      const out = output(dt, n * rowSize);
      check(
        "indexSelect",
        `${n}x${rowSize} of ${numRows}`,
        dt,
        "indexSelect",
        (B) => [B.dt(dt), B.p(out), B.p(table), B.p(idx), n, rowSize, numRows],
        [table, idx, out],
        { tol: 0 },
      );
      const src = input(dt, randnArr(n * rowSize));
      const grad = inout(F32, randnArr(numRows * rowSize));
      const r = check(
        "indexAdd",
        `${n}x${rowSize} into ${numRows}`,
        dt,
        "indexAdd",
        (B) => [B.dt(dt), F32, B.p(grad), B.p(src), B.p(idx), n, rowSize, numRows],
        [src, idx, grad],
        { tol: 1e-5 },
      );
      // Determinism: a second GPU run must match the first bit for bit.
      if (r) {
        const again = runOn(
          cu,
          false,
          "indexAdd",
          (B) => [B.dt(dt), F32, B.p(grad), B.p(src), B.p(idx), n, rowSize, numRows],
          [src, idx, grad],
        ).get(grad);
        const first = r.gpu.get(grad);
        let diff = 0;
        for (let i = 0; i < first.length; ++i) if (!Object.is(first[i], again[i])) ++diff;
        pass("indexAdd determinism", `${n}x${rowSize}: ${diff} elements differ between runs`, diff === 0);
      }
      // indexCopy: distinct indices (a permutation prefix).
      const m = Math.min(n, numRows);
      const perm = Int32Array.from({ length: numRows }, (_, i) => i);
      for (let i = numRows - 1; i > 0; --i) {
        const j = Math.floor(rand() * (i + 1));
        [perm[i], perm[j]] = [perm[j], perm[i]];
      }
      const idx2 = input(I32, perm.slice(0, m));
      const src2 = input(dt, randnArr(m * rowSize));
      const dst = inout(dt, randnArr(numRows * rowSize));
      check(
        "indexCopy",
        `${m}x${rowSize} into ${numRows}`,
        dt,
        "indexCopy",
        (B) => [B.dt(dt), B.p(dst), B.p(src2), B.p(idx2), m, rowSize, numRows],
        [src2, idx2, dst],
        { tol: 0 },
      );
    }
  }

// ---- randomness ------------------------------------------------------------------------------------

if (want("random"))
  for (const dt of DTYPES) {
    const n = small ? 1000 : (1 << 22) + 1;
    const s = Math.floor(rand() * 2 ** 40);
    const off = Math.floor(rand() * 2 ** 20);
    const u = output(dt, n);
    check("randUniform", n, dt, "randUniform", (B) => [B.dt(dt), B.p(u), n, s, off, -0.5, 2], [u], {
      tol: dt === BF16 ? 1e-2 : 1e-6,
    });
    const g = output(dt, n);
    check("randNormal", n, dt, "randNormal", (B) => [B.dt(dt), B.p(g), n, s, off, 0.1, 0.02], [g], {
      tol: dt === BF16 ? 1e-2 : 1e-6,
    });
    for (const p of [0, 0.1, 0.5, 1]) {
      const x = input(dt, randnArr(n));
      const out = output(dt, n);
      const r = check(
        "dropoutFwd",
        `${n} p=${p}`,
        dt,
        "dropoutForward",
        (B) => [B.dt(dt), B.p(out), B.p(x), n, p, s, off],
        [x, out],
      );
      if (r) {
        // The mask must be identical: zero exactly where the CPU wrote zero.
        const gg = r.gpu.get(out);
        const rr = r.ref.get(out);
        let diff = 0;
        for (let i = 0; i < n; ++i) if ((gg[i] === 0) !== (rr[i] === 0)) ++diff;
        pass("dropout mask", `${n} p=${p}: ${diff} positions differ`, diff === 0);
      }
      const dy = input(dt, randnArr(n));
      const dx = output(dt, n);
      check(
        "dropoutBwd",
        `${n} p=${p}`,
        dt,
        "dropoutBackward",
        (B) => [B.dt(dt), B.p(dx), B.p(dy), n, p, s, off],
        [dy, dx],
      );
    }
  }

// ---- cross-entropy ----------------------------------------------------------------------------------

if (want("crossentropy"))
  for (const dt of DTYPES) {
    for (const [rows, V] of small
      ? [[3, 37]]
      : [
          [1, 30528],
          [512, 30528],
          [33, 1001],
          [4, 7],
        ]) {
      const logits = input(dt, randnArr(rows * V, 3));
      const lv = intArr(rows, 0, V);
      if (rows > 2) lv[1] = -100; // ignored row
      const labels = input(I32, lv);
      const loss = named(output(F32, rows), "loss", 1e-3);
      const lse = named(output(F32, rows), "lse", 1e-4);
      const r = check(
        "crossEntropyFwd",
        `${rows}x${V}`,
        dt,
        "crossEntropyForward",
        (B) => [B.dt(dt), B.p(loss), B.p(lse), B.p(logits), B.p(labels), rows, V, -100],
        [logits, labels, loss, lse],
      );
      if (!r) continue;
      const lseIn = input(F32, r.ref.get(lse));
      const dl = output(dt, rows * V);
      check(
        "crossEntropyBwd",
        `${rows}x${V}`,
        dt,
        "crossEntropyBackward",
        (B) => [B.dt(dt), B.p(dl), B.p(logits), B.p(lseIn), B.p(labels), rows, V, -100, 1 / rows],
        [logits, lseIn, labels, dl],
      );
    }
  }

// ---- adamw -----------------------------------------------------------------------------------------

if (want("adamw"))
  for (const gdt of DTYPES) {
    for (const n of small ? [13] : [1, 1001, (1 << 21) + 1]) {
      for (const copyDt of [BF16, F32]) {
        const param = named(inout(F32, randnArr(n, 0.05)), "param", 1e-5);
        const grad = input(gdt, randnArr(n, 0.01));
        const m = named(inout(F32, randnArr(n, 0.001)), "m", 1e-5);
        const v = named(inout(F32, uniformArr(n, 0, 1e-5)), "v", 1e-5);
        const copy = named(output(copyDt, n), "paramCopy", copyDt === BF16 ? 1e-2 : 1e-5);
        check(
          "adamw",
          `${n} copy=${copyDt === BF16 ? "bf16" : "f32"}`,
          gdt,
          "adamw",
          (B) => [
            F32,
            B.dt(gdt),
            B.p(param),
            B.p(grad),
            B.p(m),
            B.p(v),
            n,
            5e-4,
            0.9,
            0.98,
            1e-6,
            5e-4 * 1e-5,
            7,
            0.5,
            B.dt(copyDt),
            B.p(copy),
          ],
          [param, grad, m, v, copy],
        );
      }
    }
  }

// adamwList: many tensors per call (some empty, some without a copy, some one element
// off 16-byte alignment), more tensors than one launch takes, with and without clipping
// by a device-side sum of squares (coefficient 0.5 / (2 + 1e-6) when clipping).
if (want("adamw"))
  for (const gdt of DTYPES) {
    const sizes = small
      ? [13, 0, 5, 8]
      : [
          1,
          1001,
          0,
          (1 << 21) + 1,
          768,
          3,
          4096,
          ...Array.from({ length: 170 }, (_, i) => 1 + ((i * 37) % 300)),
        ];
    for (const clip of [false, true]) {
      const ts = sizes.map((n, i) => ({
        n,
        skew: i % 5 === 3 && n > 1 ? 1 : 0, // start one element in: the scalar path
        param: named(inout(F32, randnArr(n, 0.05)), `param${i}`, 1e-5),
        grad: input(gdt, randnArr(n, 0.01)),
        m: named(inout(F32, randnArr(n, 0.001)), `m${i}`, 1e-5),
        v: named(inout(F32, uniformArr(n, 0, 1e-5)), `v${i}`, 1e-5),
        copy: i % 4 === 1 ? null : named(output(BF16, n), `copy${i}`, 1e-2),
      }));
      const sumsq = input(F32, Float64Array.of(4));
      const at = (B, b, skew) => (b ? B.p(b) + skew * BYTES[B.dt(b.dtype)] : 0);
      check(
        "adamwList",
        `${sizes.length} tensors clip=${clip}`,
        gdt,
        "adamwList",
        (B) => [
          F32,
          B.dt(gdt),
          B.dt(BF16),
          new Float64Array(
            ts.flatMap((t, i) => [
              at(B, t.param, t.skew),
              at(B, t.grad, t.skew),
              at(B, t.m, t.skew),
              at(B, t.v, t.skew),
              at(B, t.copy, t.skew),
              t.n - t.skew,
              5e-4 * (1 + (i % 3)),
              5e-9 * (i % 2),
              1 + (i % 7),
            ]),
          ),
          0.9,
          0.98,
          1e-6,
          0.75,
          clip ? B.p(sumsq) : 0,
          0.5,
        ],
        [sumsq, ...ts.flatMap((t) => [t.param, t.grad, t.m, t.v, ...(t.copy ? [t.copy] : [])])],
      );
    }
    // sumSquaresList over the same kind of table, accumulating onto 2.5.
    const xs = sizes.map((n) => input(gdt, randnArr(n)));
    for (const acc of [false, true]) {
      const out = inout(F32, Float64Array.of(2.5));
      check(
        "sumSquaresList",
        `${sizes.length} tensors acc=${acc}`,
        gdt,
        "sumSquaresList",
        (B) => [B.dt(gdt), B.p(out), new Float64Array(xs.flatMap((x, i) => [B.p(x), sizes[i]])), acc],
        [out, ...xs],
        { tol: 1e-5 },
      );
    }
  }

// indexAdd with a bad index, on both paths (a few rows: no sort; more rows: sorted):
// the device error flag names it, its row is skipped, every other row is summed.
if (want("index") && !selfTest)
  for (const [numRows, bad] of [
    [2, 5],
    [10, 12],
    [10, -1],
  ]) {
    const n = 40;
    const rs = 8;
    const ids = Int32Array.from({ length: n }, (_, i) => (i === 7 ? bad : i % numRows));
    const srcH = Float32Array.from({ length: n * rs }, (_, i) => (i % 13) - 6);
    const src = cu.alloc(n * rs * 4);
    const idx = cu.alloc(n * 4);
    const out = cu.alloc(numRows * rs * 4);
    cu.upload(src, 0, srcH);
    cu.upload(idx, 0, ids);
    cu.fill(F32, out, numRows * rs, 0);
    cu.takeDeviceError();
    cu.indexAdd(F32, F32, out, src, idx, n, rs, numRows);
    const msg = cu.takeDeviceError();
    const got = new Float32Array(numRows * rs);
    cu.download(out, 0, got);
    const want = new Float32Array(numRows * rs);
    for (let i = 0; i < n; ++i)
      if (i !== 7) for (let c = 0; c < rs; ++c) want[ids[i] * rs + c] += srcH[i * rs + c];
    let diff = 0;
    for (let k = 0; k < want.length; ++k) if (got[k] !== want[k]) ++diff;
    pass(
      "indexAdd bad index",
      `${numRows} rows, index ${bad} -> ${JSON.stringify(msg)}, ${diff} sums differ`,
      typeof msg === "string" && msg.includes(String(bad)) && diff === 0,
    );
    for (const p of [src, idx, out]) cu.free(p);
  }

// ---- runtime: device errors, OOM, memory, events ----------------------------------------------------------

if (!selfTest && want("runtime")) runtimeChecks();
function runtimeChecks() {
  {
    const t = cu.alloc(10 * 8 * 2);
    const idx = cu.alloc(3 * 4);
    const out = cu.alloc(3 * 8 * 2);
    cu.upload(idx, 0, Int32Array.of(1, 12, 2));
    cu.indexSelect(BF16, out, t, idx, 3, 8, 10);
    const msg = cu.takeDeviceError();
    pass(
      "device error flag",
      `indexSelect bad index -> ${JSON.stringify(msg)}`,
      typeof msg === "string" && msg.includes("12"),
    );
    pass(
      "device error cleared",
      `second take -> ${JSON.stringify(cu.takeDeviceError())}`,
      cu.takeDeviceError() === null,
    );
    const logits = cu.alloc(2 * 5 * 4);
    const labels = cu.alloc(2 * 4);
    const loss = cu.alloc(2 * 4);
    cu.upload(labels, 0, Int32Array.of(7, 1));
    cu.fill(F32, logits, 10, 0.5);
    cu.crossEntropyForward(F32, loss, 0, logits, labels, 2, 5, -100);
    const msg2 = cu.takeDeviceError();
    pass(
      "device error flag",
      `crossEntropy bad label -> ${JSON.stringify(msg2)}`,
      typeof msg2 === "string" && msg2.includes("7"),
    );
    for (const p of [t, idx, out, logits, labels, loss]) cu.free(p);
  }
  {
    let msg = "";
    try {
      cu.alloc(1e12);
    } catch (e) {
      msg = String(e.message);
    }
    pass("OOM error", msg.slice(0, 160), msg.startsWith("OutOfMemory:"));
    const p = cu.alloc(1 << 20);
    cu.fill(F32, p, 1 << 18, 1);
    cu.synchronize();
    cu.free(p);
    pass("alloc after OOM", "1 MiB alloc + fill ok", true);
  }
  {
    const e0 = cu.eventRecord();
    const p = cu.alloc(64 << 20);
    cu.fill(F32, p, 16 << 20, 2);
    const e1 = cu.eventRecord();
    const ms = cu.eventElapsed(e0, e1);
    cu.eventDestroy(e0);
    cu.eventDestroy(e1);
    cu.free(p);
    pass("events", `fill 64 MiB: ${ms.toFixed(3)} ms`, ms > 0 && ms < 1000);
  }
  {
    let threw = "";
    try {
      cu.layernormForward(1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1e-5, 0, 0, 0);
    } catch (e) {
      threw = String(e.message);
    }
    pass("float64 error", threw, threw.includes("float64 is not supported on cuda"));
    let bad = "";
    try {
      cu.fill(F32, 12345678, 10, 1);
    } catch (e) {
      bad = String(e.message);
    }
    pass("bad address error", bad.slice(0, 120), bad.includes("outside any live cuda allocation"));
  }
  cu.synchronize();
  const end = cu.memoryStats();
  pass(
    "memory baseline",
    `allocated ${baseline.allocated} -> ${end.allocated}, count ${baseline.count} -> ${end.count}, reserved ${end.reserved}, peak ${end.peak}`,
    end.allocated === baseline.allocated && end.count === baseline.count,
  );
  cu.emptyCache();
  const after = cu.memoryStats();
  pass("emptyCache", `reserved after: ${after.reserved}`, after.reserved === after.allocated);
  const err = cu.takeDeviceError();
  pass("no stray device error", String(err), err === null);
}

const slowest = Object.entries(timeByName)
  .sort((a, b) => b[1] - a[1])
  .slice(0, 8);
console.log("seconds by check:", slowest.map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", "));
const summary = {
  seed: seed0,
  small,
  failures,
  total: results.length,
  device: status.device,
  timeByName,
  results,
};
const outDir = process.env.OUT;
if (outDir)
  fs.writeFileSync(
    path.join(outDir, small ? "kernels_test_small.json" : "kernels_test.json"),
    JSON.stringify(summary, null, 1),
  );
console.log(`\n${results.length - failures}/${results.length} checks passed (seed ${seed0})`);
process.exit(failures === 0 ? 0 : 1);
