// GPU check of @mbert/tensor: every op on `cuda` (float32 and bf16) against
// the CPU backend in float32, forward and input gradients, on fresh random
// inputs. Not a unit test: it needs a GPU. Bundled and run on the device by
// `node scripts/device-bundle.mjs` (see docs/gpu.md). Prints a table and
// writes JSON to $OUT/tensor-gpu.json.
import fs from "node:fs";
import path from "node:path";
import {
  type DType,
  type Device,
  F,
  Generator,
  OutOfMemoryError,
  type Tensor,
  backend,
  cudaAvailable,
  fromArray,
  memory,
  nn,
  randn,
  tidy,
} from "@mbert/tensor";

interface Row {
  op: string;
  dtype: string;
  forward: number;
  grads: number[];
  tol: number;
  pass: boolean;
  note?: string;
}

const rows: Row[] = [];
let seed = 1000;

function relErr(a: Tensor, b: Tensor): number {
  const x = a.cast("float32").to("cpu").data() as Float32Array;
  const y = b.cast("float32").to("cpu").data() as Float32Array;
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i]! - y[i]!;
    num += d * d;
    den += y[i]! * y[i]!;
  }
  if (!Number.isFinite(num)) return Number.NaN;
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

interface Case {
  op: string;
  /** Input shapes (float inputs); `scale`/`shift` keep domains valid (log, sqrt). */
  inputs: { shape: number[]; scale?: number; shift?: number; grad?: boolean }[];
  fn: (xs: Tensor[], device: Device) => Tensor;
  dtypes?: DType[];
  tol?: Partial<Record<DType, number>>;
}

function runCase(c: Case): void {
  const dtypes = c.dtypes ?? ["float32", "bfloat16"];
  const base = c.inputs.map((spec) =>
    tidy(() => {
      const r = randn(spec.shape, { generator: new Generator(seed++) });
      return r.mul(spec.scale ?? 1).add(spec.shift ?? 0);
    }),
  );
  for (const dtype of dtypes) {
    const tol = c.tol?.[dtype] ?? (dtype === "bfloat16" ? 2e-2 : 1e-4);
    try {
      tidy(() => {
        const ref = run(c, base, "cpu", "float32");
        const got = run(c, base, "cuda", dtype);
        const forward = relErr(got.out, ref.out);
        const grads = got.grads.map((g, i) => (g && ref.grads[i] ? relErr(g, ref.grads[i]!) : 0));
        const gradTol = tol * 2.5;
        const pass = forward <= tol && grads.every((e) => e <= gradTol);
        rows.push({ op: c.op, dtype, forward, grads, tol, pass });
        printRow(rows[rows.length - 1]!);
      });
    } catch (e) {
      rows.push({
        op: c.op,
        dtype,
        forward: Number.NaN,
        grads: [],
        tol,
        pass: false,
        note: String(e).slice(0, 200),
      });
    }
  }
  for (const b of base) b.dispose();
}

function run(
  c: Case,
  base: Tensor[],
  device: Device,
  dtype: DType,
): { out: Tensor; grads: (Tensor | null)[] } {
  const xs = base.map((b, i) => {
    const t = b.to(device).cast(dtype);
    const leaf = t === b ? b.clone() : t.detach();
    leaf.requiresGrad = c.inputs[i]!.grad !== false;
    return leaf;
  });
  const out = c.fn(xs, device);
  const w = tidy(() =>
    randn([...out.shape], { generator: new Generator(7) })
      .to(device)
      .cast(out.dtype),
  );
  if (xs.some((x) => x.requiresGrad)) out.backward(w);
  return { out, grads: xs.map((x) => x.grad) };
}

const unaryOps: [string, (x: Tensor) => Tensor, number, number][] = [
  ["exp", (x) => x.exp(), 1, 0],
  ["log", (x) => x.log(), 0.3, 2],
  ["tanh", (x) => x.tanh(), 1, 0],
  ["gelu", (x) => x.gelu(), 1, 0],
  ["sqrt", (x) => x.sqrt(), 0.3, 2],
  ["rsqrt", (x) => x.rsqrt(), 0.3, 2],
  ["sigmoid", (x) => x.sigmoid(), 1, 0],
  ["relu", (x) => x.relu(), 1, 0],
  ["square", (x) => x.square(), 1, 0],
  ["pow 3", (x) => x.pow(3), 1, 0],
  ["affine", (x) => F.scale(x, 0.5, 2), 1, 0],
];

// x, weight (around 1), bias and residual of a BERT-base LayerNorm over 300 rows.
const layerNormResidualInputs: Case["inputs"] = [
  { shape: [300, 768] },
  { shape: [768], scale: 0.2, shift: 1 },
  { shape: [768] },
  { shape: [300, 768] },
];

const cases: Case[] = [
  ...unaryOps.map(
    ([op, f, scale, shift]): Case => ({
      op,
      inputs: [{ shape: [129, 257], scale, shift }],
      fn: ([x]) => f(x!),
    }),
  ),
  { op: "add broadcast", inputs: [{ shape: [64, 1, 33] }, { shape: [7, 33] }], fn: ([a, b]) => a!.add(b!) },
  { op: "mul broadcast", inputs: [{ shape: [64, 7, 33] }, { shape: [33] }], fn: ([a, b]) => a!.mul(b!) },
  {
    op: "div",
    inputs: [{ shape: [1000] }, { shape: [1000], scale: 0.3, shift: 2 }],
    fn: ([a, b]) => a!.div(b!),
  },
  // float32 only: bf16 rounding turns near-ties into ties, which route the gradient differently.
  {
    op: "maximum",
    inputs: [{ shape: [513] }, { shape: [513] }],
    fn: ([a, b]) => a!.maximum(b!),
    dtypes: ["float32"],
  },
  { op: "sum axis 1", inputs: [{ shape: [33, 1025, 3] }], fn: ([x]) => x!.sum(1) },
  { op: "sum all", inputs: [{ shape: [100003] }], fn: ([x]) => x!.sum(), tol: { bfloat16: 3e-2 } },
  { op: "mean last", inputs: [{ shape: [300, 768] }], fn: ([x]) => x!.mean(-1) },
  { op: "max axis 0", inputs: [{ shape: [77, 65] }], fn: ([x]) => x!.max(0), dtypes: ["float32"] },
  {
    op: "matmul batched",
    inputs: [{ shape: [4, 129, 64] }, { shape: [4, 64, 77] }],
    fn: ([a, b]) => a!.matmul(b!),
  },
  { op: "matmul 2-D", inputs: [{ shape: [1, 768] }, { shape: [768, 3] }], fn: ([a, b]) => a!.matmul(b!) },
  {
    op: "linear (plain tensors)",
    inputs: [{ shape: [300, 768] }, { shape: [512, 768], scale: 0.05 }, { shape: [512] }],
    fn: ([x, w, b]) => F.linear(x!, w!, b!),
  },
  { op: "permute", inputs: [{ shape: [17, 12, 64] }], fn: ([x]) => x!.permute([1, 0, 2]) },
  {
    op: "slice+concat",
    inputs: [{ shape: [33, 100] }, { shape: [33, 7] }],
    fn: ([a, b]) => F.concat([a!.slice(1, 3, 50), b!], 1),
  },
  { op: "expand", inputs: [{ shape: [1, 768] }], fn: ([x]) => x!.expand([300, 768]) },
  { op: "softmax", inputs: [{ shape: [33, 1000] }], fn: ([x]) => x!.softmax() },
  { op: "logSoftmax", inputs: [{ shape: [33, 30528] }], fn: ([x]) => x!.logSoftmax() },
  {
    op: "layerNorm+residual",
    inputs: layerNormResidualInputs,
    fn: ([x, w, b, r]) => F.layerNorm(x!, w!, b!, 1e-12, r),
  },
  {
    op: "layerNorm C=1",
    inputs: [{ shape: [5, 1] }, { shape: [1] }, { shape: [1] }],
    fn: ([x, w, b]) => F.layerNorm(x!, w!, b!, 1e-5),
  },
  { op: "geglu", inputs: [{ shape: [300, 2 * 3072] }], fn: ([x]) => F.geglu(x!) },
  { op: "geglu odd", inputs: [{ shape: [1, 2 * 7] }], fn: ([x]) => F.geglu(x!) },
  {
    op: "crossEntropy V=30528",
    inputs: [{ shape: [300, 30528], scale: 2 }],
    fn: ([x], device) => {
      const labels = Int32Array.from({ length: 300 }, (_, i) => (i % 7 === 3 ? -100 : (i * 7919) % 30528));
      return F.crossEntropy(x!, fromArray(labels, [300], { device }));
    },
    tol: { bfloat16: 2e-2 },
  },
  {
    op: "indexSelect (embedding)",
    inputs: [{ shape: [30528, 64] }],
    fn: ([w], device) => {
      const ids = Int32Array.from({ length: 4096 }, (_, i) => (i * 104729) % 30528);
      return w!.indexSelect(fromArray(ids, [4096], { device }));
    },
  },
  {
    op: "scatterRows",
    inputs: [{ shape: [100, 32] }],
    fn: ([x], device) =>
      F.scatterRows(
        x!,
        fromArray(
          Int32Array.from({ length: 100 }, (_, i) => (i * 37) % 257),
          [100],
          { device },
        ),
        257,
      ),
  },
  {
    op: "dropout p=0.1",
    inputs: [{ shape: [300, 768] }],
    fn: ([x]) => F.dropout(x!, 0.1, true, new Generator(42, 1234)),
  },
  {
    op: "geglu + fused dropout p=0.1",
    inputs: [{ shape: [300, 2 * 3072] }],
    fn: ([x]) => F.geglu(x!, { dropout: 0.1, generator: new Generator(43, 4321) }),
  },
  {
    op: "layerNorm+residual + fused dropout p=0.1",
    inputs: layerNormResidualInputs,
    fn: ([x, w, b, r]) =>
      F.layerNorm(x!, w!, b!, 1e-12, r, { dropout: 0.1, generator: new Generator(45, 77) }),
  },
  {
    op: "layerNorm+residual + fused dropout, odd C",
    inputs: [{ shape: [9, 13] }, { shape: [13] }, { shape: [13] }, { shape: [9, 13] }],
    fn: ([x, w, b, r]) => F.layerNorm(x!, w!, b!, 1e-5, r, { dropout: 0.5, generator: new Generator(46, 5) }),
  },
  {
    op: "geglu + fused dropout, odd I",
    inputs: [{ shape: [3, 2 * 7] }],
    fn: ([x]) => F.geglu(x!, { dropout: 0.5, generator: new Generator(44, 3) }),
  },
  ...attentionCases(),
];

function attentionCases(): Case[] {
  const mk = (lens: number[], NH: number, HS: number, alibi: boolean): Case => {
    const T = lens.reduce((a, b) => a + b, 0);
    const cu = [0];
    for (const l of lens) cu.push(cu[cu.length - 1]! + l);
    return {
      op: `attention NH=${NH} HS=${HS} ${alibi ? "alibi" : "plain"} lens=${lens.length > 4 ? `${lens.length} seqs` : lens.join(",")}`,
      inputs: [{ shape: [T, 3 * NH * HS] }],
      dtypes: ["bfloat16"],
      fn: ([qkv], device) =>
        F.varlenAttention(qkv!, {
          cuSeqlens: fromArray(Int32Array.from(cu), [cu.length], { device }),
          maxSeqlen: Math.max(...lens),
          numHeads: NH,
          alibiSlopes: alibi ? fromArray(new Float32Array(F.alibiSlopes(NH)), [NH], { device }) : null,
        }),
    };
  };
  return [
    mk([1, 2, 7, 128, 129, 300], 12, 64, true),
    mk([1, 2048], 12, 64, true),
    mk([100, 33], 5, 64, true),
    mk([77, 128], 6, 32, false),
    mk([257, 3], 4, 128, true),
    mk([13, 64, 1], 4, 16, true),
    mk(
      Array.from({ length: 64 }, (_, i) => (i % 4 === 0 ? 32 + ((i * 13) % 96) : 128)),
      12,
      64,
      true,
    ),
  ];
}

function memoryCheck(): Row {
  const gen = new Generator(9);
  const lin1 = new nn.Linear(256, 512).to("cuda");
  const lin2 = new nn.Linear(512, 10).to("cuda");
  lin1.resetParameters(gen);
  lin2.resetParameters(gen);
  const labels = fromArray(
    Int32Array.from({ length: 64 }, (_, i) => i % 10),
    [64],
    { device: "cuda" },
  );
  const seen: string[] = [];
  for (let step = 0; step < 100; step++) {
    tidy(() => {
      const x = randn([64, 256], { generator: gen, device: "cuda" }).cast("bfloat16");
      const logits = lin2.forward(lin1.forward(x).gelu());
      F.crossEntropy(logits, labels, { numKept: 64 }).backward();
      for (const p of [...lin1.parameters(), ...lin2.parameters()]) p.zeroGrad();
    });
    const m = memory();
    const s = backend("cuda").memoryStats();
    seen.push(`${m.tensors}/${m.bytes.cuda}/${s.allocated}`);
  }
  const steady = seen.slice(2).every((s) => s === seen[1]);
  lin1.dispose();
  lin2.dispose();
  labels.dispose();
  return {
    op: "memory flat over 100 steps",
    dtype: "bfloat16",
    forward: 0,
    grads: [],
    tol: 0,
    pass: steady,
    note: `${seen[1]} -> ${seen[seen.length - 1]}`,
  };
}

function oomCheck(): Row {
  let ok = false;
  let note = "";
  try {
    randn([1 << 30, 1 << 8], { device: "cuda" });
  } catch (e) {
    ok = e instanceof OutOfMemoryError;
    note = String(e).slice(0, 160);
  }
  const after = tidy(() => randn([1024], { device: "cuda" }).sum().item());
  return {
    op: "OOM is a typed error, process survives",
    dtype: "-",
    forward: 0,
    grads: [],
    tol: 0,
    pass: ok && Number.isFinite(after),
    note,
  };
}

const fmtNum = (x: number) => (Number.isNaN(x) ? "NaN" : x.toExponential(2));
function printRow(r: Row): void {
  console.log(
    `${r.pass ? "ok  " : "FAIL"} ${r.op.padEnd(47)} ${r.dtype.padEnd(9)} ${fmtNum(r.forward).padEnd(9)} ${r.grads.map(fmtNum).join(" ")} ${r.note ?? ""}`,
  );
}

/** linear over a float32 Parameter with bf16 activations (the training path): dW comes out float32. */
function parameterLinear(): Row {
  return tidy(() => {
    const gen = new Generator(11);
    const x = randn([300, 768], { generator: gen });
    const w = randn([512, 768], { generator: gen }).mul(0.05);
    const b = randn([512], { generator: gen });
    const g = randn([300, 512], { generator: gen });
    const refLin = new nn.Linear(768, 512);
    refLin.loadStateDict({ weight: w, bias: b });
    const xr = x.detach();
    xr.requiresGrad = true;
    const yr = refLin.forward(xr);
    yr.backward(g);
    const lin = new nn.Linear(768, 512, { device: "cuda" });
    lin.loadStateDict({ weight: w, bias: b });
    const xc = x.to("cuda").cast("bfloat16").detach();
    xc.requiresGrad = true;
    const yc = lin.forward(xc);
    yc.backward(g.to("cuda").cast("bfloat16"));
    const errs = [
      relErr(xc.grad!, xr.grad!),
      relErr(lin.weight.grad!, refLin.weight.grad!),
      relErr(lin.bias!.grad!, refLin.bias!.grad!),
    ];
    const forward = relErr(yc, yr);
    const row: Row = {
      op: "linear (fp32 Parameter, bf16 act)",
      dtype: "bfloat16",
      forward,
      grads: errs,
      tol: 2e-2,
      pass: forward <= 2e-2 && errs.every((e) => e <= 5e-2) && lin.weight.grad!.dtype === "float32",
    };
    refLin.dispose();
    lin.dispose();
    return row;
  });
}

function main(): void {
  if (!cudaAvailable()) {
    console.log("cuda unavailable; nothing to check");
    process.exit(2);
  }
  const t0 = performance.now();
  console.log(`${"op".padEnd(52)} ${"dtype".padEnd(9)} ${"fwd".padEnd(9)} grads`);
  for (const c of cases) runCase(c);
  for (const extra of [parameterLinear, memoryCheck, oomCheck]) {
    try {
      rows.push(extra());
    } catch (e) {
      rows.push({
        op: extra.name,
        dtype: "-",
        forward: Number.NaN,
        grads: [],
        tol: 0,
        pass: false,
        note: String(e).slice(0, 300),
      });
    }
    printRow(rows[rows.length - 1]!);
  }
  const failed = rows.filter((r) => !r.pass).length;
  console.log(
    `tensor-gpu: ${rows.length - failed} passed, ${failed} failed in ${((performance.now() - t0) / 1000).toFixed(1)}s`,
  );
  const out = process.env.OUT;
  if (out) fs.writeFileSync(path.join(out, "tensor-gpu.json"), JSON.stringify(rows, null, 1));
  process.exitCode = failed ? 1 : 0;
}

main();
