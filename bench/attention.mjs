// Benchmark of cuda.attentionForward / attentionBackward (MosaicBERT-base
// attention: NH=12, HS=64, ALiBi, packed (T, 3, NH, HS) qkv) against PyTorch
// scaled_dot_product_attention on the same sequence lengths, in the same run.
//
//   node bench/attention.mjs [--no-torch] [--append-docs]
//
// Batches: 256 sequences of S=128 with 25% of them shorter (lengths uniform in
// [32, 128)), and S=512 / S=2048 batches of about the same token count (25%
// shorter, uniform in [S/4, S)). FLOPs over real tokens: 4*S_b^2*HS*NH per
// sequence forward, 2.5x that backward. Prints a table, writes
// $OUT/attention_bench.json and $OUT/attention_bench.md (the table);
// --append-docs appends the table to docs/performance.md.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { xorshift32 } from "../native/cuda/test/common.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const addon = createRequire(import.meta.url)(path.join(root, "packages/kernels/build/mbert.node"));
const cu = addon.cuda;
const BF16 = 2;
const WARMUP = 5;
const ITERS = 20;
const REPEATS = 7;

const rand = xorshift32(12345); // fixed: every run times the same batches

function lengths(S, B) {
  return Array.from({ length: B }, () => (rand() < 0.25 ? Math.floor(S / 4 + rand() * (S - S / 4)) : S));
}

function alibiSlopes(nh) {
  const pow2 = (n) => {
    const start = 2 ** -(2 ** -(Math.log2(n) - 3));
    return Array.from({ length: n }, (_, i) => start * start ** i);
  };
  if (Number.isInteger(Math.log2(nh))) return pow2(nh);
  const c = 2 ** Math.floor(Math.log2(nh));
  return [
    ...pow2(c),
    ...pow2(2 * c)
      .filter((_, i) => i % 2 === 0)
      .slice(0, nh - c),
  ];
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function randBf16(n) {
  const h = new Uint16Array(n);
  for (let i = 0; i < n; ++i) {
    f32[0] = (rand() - 0.5) * 3.4641016; // uniform, unit variance
    h[i] = (u32[0] + 0x7fff + ((u32[0] >>> 16) & 1)) >>> 16;
  }
  return h;
}
function upload(arr) {
  const p = cu.alloc(arr.byteLength);
  cu.upload(p, 0, arr);
  return p;
}

function timeMs(fn) {
  for (let i = 0; i < WARMUP; ++i) fn();
  const samples = [];
  for (let r = 0; r < REPEATS; ++r) {
    const a = cu.eventRecord();
    for (let i = 0; i < ITERS; ++i) fn();
    const b = cu.eventRecord();
    samples.push(cu.eventElapsed(a, b) / ITERS);
    cu.eventDestroy(a);
    cu.eventDestroy(b);
  }
  samples.sort((x, y) => x - y);
  return samples[samples.length >> 1];
}

function benchOurs(c, useSlopes) {
  const { lens, NH, HS } = c;
  const B = lens.length;
  const cuS = new Int32Array(B + 1);
  for (let b = 0; b < B; ++b) cuS[b + 1] = cuS[b] + lens[b];
  const T = cuS[B];
  const C = NH * HS;
  const maxSeqlen = Math.max(...lens);
  const scale = 1 / Math.sqrt(HS);
  const qkv = upload(randBf16(T * 3 * C));
  const dqkv = cu.alloc(T * 3 * C * 2);
  const out = cu.alloc(T * C * 2);
  const dout = upload(randBf16(T * C));
  const lse = cu.alloc(NH * T * 4);
  const dCu = upload(cuS);
  const slopes = useSlopes ? upload(Float32Array.from(alibiSlopes(NH))) : 0;
  const q = qkv;
  const k = qkv + 2 * C;
  const v = qkv + 4 * C;
  const fwd = () =>
    cu.attentionForward(BF16, out, lse, q, k, v, 3 * C, dCu, B, T, NH, HS, maxSeqlen, slopes, 0, scale);
  const bwd = () =>
    cu.attentionBackward(
      BF16,
      dqkv,
      dqkv + 2 * C,
      dqkv + 4 * C,
      dout,
      out,
      lse,
      q,
      k,
      v,
      3 * C,
      dCu,
      B,
      T,
      NH,
      HS,
      maxSeqlen,
      slopes,
      0,
      scale,
    );
  const r = { fwd: timeMs(fwd) };
  fwd();
  r.bwd = timeMs(bwd);
  r.fwdbwd = timeMs(() => {
    fwd();
    bwd();
  });

  for (const p of [qkv, dqkv, out, dout, lse, dCu, slopes]) if (p) cu.free(p);
  return r;
}

const NH = 12;
const HS = 64;
const cases = [128, 512, 2048].map((S) => {
  const B = Math.round((256 * 128) / S);
  return { name: `S=${S}`, S, NH, HS, lens: lengths(S, B) };
});
for (const c of cases) {
  c.B = c.lens.length;
  c.tokens = c.lens.reduce((a, b) => a + b, 0);
  c.flopsFwd = c.lens.reduce((a, s) => a + 4 * s * s * HS * NH, 0);
}

const results = { device: addon.cudaStatus?.().device ?? "?", cases: [] };
for (const c of cases) {
  const row = { name: c.name, B: c.B, tokens: c.tokens, flopsFwd: c.flopsFwd };
  row.ours_alibi = benchOurs(c, true);
  row.ours_plain = benchOurs(c, false);
  results.cases.push(row);
}

let torch = null;
if (!process.argv.includes("--no-torch")) {
  const spec = path.join(os.tmpdir(), `attention-bench-${process.pid}.json`);
  fs.writeFileSync(
    spec,
    JSON.stringify({
      cases: cases.map(({ name, lens }) => ({ name, lens, NH, HS })),
      warmup: WARMUP,
      iters: ITERS,
      repeats: REPEATS,
    }),
  );
  const py = spawnSync("python3", [path.join(root, "bench/attention_torch.py"), spec], {
    encoding: "utf8",
    maxBuffer: 1 << 24,
  });
  if (py.status === 0) {
    torch = JSON.parse(py.stdout.trim().split("\n").pop());
    results.torch = torch;
  } else {
    results.torchError = `${py.stderr ?? ""}${py.error ?? ""}`.slice(-2000);
    console.error(`PyTorch side failed:\n${results.torchError}`);
  }
}

// Table: ms and TFLOP/s (real tokens) per phase, plus speedups.
const tf = (flops, ms) => (ms > 0 ? flops / (ms * 1e-3) / 1e12 : Number.NaN);
const lines = [];
lines.push(
  `Device: ${results.device}${torch ? `; PyTorch ${torch.torch}` : ""}. NH=12, HS=64, bf16, ~${cases[0].tokens} real tokens per batch; ms (TFLOP/s over real tokens).`,
);
lines.push("");
lines.push("| batch | implementation | fwd | bwd | fwd+bwd |");
lines.push("|---|---|---|---|---|");
const cell = (r, fl) =>
  r && r.fwd !== undefined
    ? [
        `${r.fwd.toFixed(3)} (${tf(fl, r.fwd).toFixed(0)})`,
        `${r.bwd.toFixed(3)} (${tf(2.5 * fl, r.bwd).toFixed(0)})`,
        `${r.fwdbwd.toFixed(3)} (${tf(3.5 * fl, r.fwdbwd).toFixed(0)})`,
      ].join(" | ")
    : "n/a | n/a | n/a";
for (const row of results.cases) {
  const t = torch?.cases.find((x) => x.name === row.name);
  const label = `${row.name} (B=${row.B})`;
  lines.push(`| ${label} | mbert, ALiBi | ${cell(row.ours_alibi, row.flopsFwd)} |`);
  lines.push(`| ${label} | mbert, no bias | ${cell(row.ours_plain, row.flopsFwd)} |`);
  if (t) {
    lines.push(
      `| ${label} | torch SDPA, padded + float ALiBi/pad bias | ${cell(t.sdpa_bias, row.flopsFwd)} |`,
    );
    const f = t.sdpa_fastest;
    lines.push(`| ${label} | torch SDPA ${f?.backend ?? "?"}, padded, no bias | ${cell(f, row.flopsFwd)} |`);
    row.speedup = {
      vsBias: t.sdpa_bias.fwdbwd / row.ours_alibi.fwdbwd,
      vsFastestNoBias: f ? f.fwdbwd / row.ours_plain.fwdbwd : null,
      aliBiVsFastestNoBias: f ? f.fwdbwd / row.ours_alibi.fwdbwd : null,
    };
  }
}
if (torch) {
  lines.push("");
  lines.push(
    "fwd+bwd speedup: mbert ALiBi vs SDPA with bias | mbert no bias vs fastest SDPA no bias | mbert ALiBi vs fastest SDPA no bias",
  );
  for (const row of results.cases) {
    const s = row.speedup;
    if (s) {
      lines.push(
        `- ${row.name}: ${s.vsBias.toFixed(2)}x | ${s.vsFastestNoBias?.toFixed(2) ?? "n/a"}x | ${s.aliBiVsFastestNoBias?.toFixed(2) ?? "n/a"}x`,
      );
    }
  }
}
const table = lines.join("\n");
console.log(table);
if (process.env.OUT) {
  fs.writeFileSync(path.join(process.env.OUT, "attention_bench.json"), JSON.stringify(results, null, 2));
  fs.writeFileSync(path.join(process.env.OUT, "attention_bench.md"), `${table}\n`);
}
if (process.argv.includes("--append-docs")) {
  const doc = path.join(root, "docs/performance.md");
  const head = fs.existsSync(doc) ? "" : "# Performance\n";
  fs.appendFileSync(doc, `${head}\n## Attention\n\n${table}\n`);
}
