// GPU check of cuda.attentionForward / attentionBackward against a float64
// reference computed here on the bf16-rounded inputs (per sequence and head).
// Outputs are poisoned with NaN first; every element must be written and
// ||out - ref|| / ||ref|| <= 1e-2 for out, lse, dq, dk, dv; a repeated forward and
// backward must give the same bits (dq only when no sequence exceeds 128 tokens).
// Usage: node native/cuda/test/attention.mjs [--small]   (JSON to $OUT/attention_test.json)
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { bf16Bits as fromBf16, rand, randn, seed0, toBf16Bits as toBf16 } from "./common.mjs";

const addon = createRequire(import.meta.url)("../../../packages/kernels/build/mbert.node");
const cu = addon.cuda;
const BF16 = 2;
const TOL = 1e-2;

// Device helpers.
function upload(arr) {
  const p = cu.alloc(arr.byteLength);
  cu.upload(p, 0, arr);
  return p;
}
function poisonedBf16(n) {
  return upload(new Uint16Array(n).fill(0x7fc0));
}
function poisonedF32(n) {
  return upload(new Float32Array(n).fill(Number.NaN));
}
function downloadBf16(p, n) {
  const h = new Uint16Array(n);
  cu.download(p, 0, h);
  return Float64Array.from(h, fromBf16);
}
function downloadF32(p, n) {
  const h = new Float32Array(n);
  cu.download(p, 0, h);
  return h;
}

// Float64 reference for heads in `heads`. x(T, stride) holds q/k/v at offsets qo/ko/vo.
function reference(c, x, dout, cuS, heads) {
  const { NH, HS, stride, qo, ko, vo, scale, slopes, keyBias } = c;
  const T = cuS[cuS.length - 1];
  const C = NH * HS;
  const out = new Float64Array(T * C);
  const lse = new Float64Array(NH * T);
  const dq = new Float64Array(T * C);
  const dk = new Float64Array(T * C);
  const dv = new Float64Array(T * C);
  for (let b = 0; b + 1 < cuS.length; ++b) {
    const s0 = cuS[b];
    const S = cuS[b + 1] - s0;
    const p = new Float64Array(S);
    const dp = new Float64Array(S);
    for (const h of heads) {
      const slope = slopes ? slopes[h] : 0;
      const qa = (i) => (s0 + i) * stride + qo + h * HS;
      const ka = (j) => (s0 + j) * stride + ko + h * HS;
      const va = (j) => (s0 + j) * stride + vo + h * HS;
      const oa = (i) => (s0 + i) * C + h * HS;
      for (let i = 0; i < S; ++i) {
        let m = -Infinity;
        const qi = qa(i);
        for (let j = 0; j < S; ++j) {
          const kj = ka(j);
          let d = 0;
          for (let e = 0; e < HS; ++e) d += x[qi + e] * x[kj + e];
          const s = scale * d - slope * Math.abs(i - j) + (keyBias ? keyBias[s0 + j] : 0);
          p[j] = s;
          if (s > m) m = s;
        }
        let l = 0;
        for (let j = 0; j < S; ++j) {
          p[j] = Math.exp(p[j] - m);
          l += p[j];
        }
        const L = m + Math.log(l);
        lse[h * T + s0 + i] = L;
        const o = oa(i);
        for (let j = 0; j < S; ++j) {
          const w = p[j] / l;
          p[j] = w;
          const vj = va(j);
          for (let e = 0; e < HS; ++e) out[o + e] += w * x[vj + e];
        }
        // Backward for row i: dP, D, dS.
        let D = 0;
        for (let e = 0; e < HS; ++e) D += dout[o + e] * out[o + e];
        for (let j = 0; j < S; ++j) {
          const vj = va(j);
          let d = 0;
          for (let e = 0; e < HS; ++e) d += dout[o + e] * x[vj + e];
          dp[j] = d;
        }
        for (let j = 0; j < S; ++j) {
          const ds = p[j] * (dp[j] - D) * scale;
          const kj = ka(j);
          const dvj = (s0 + j) * C + h * HS;
          for (let e = 0; e < HS; ++e) {
            dq[o + e] += ds * x[kj + e];
            dk[dvj + e] += ds * x[qi + e];
            dv[dvj + e] += p[j] * dout[o + e];
          }
        }
      }
    }
  }
  return { out, lse, dq, dk, dv };
}

// rel err over the heads checked; NaN anywhere (checked or not) fails.
function relErr(got, ref, T, NH, HS, heads, rowStride, off, isLse) {
  let num = 0;
  let den = 0;
  let nan = 0;
  for (let t = 0; t < T; ++t) {
    for (let h = 0; h < NH; ++h) {
      for (let e = 0; e < (isLse ? 1 : HS); ++e) {
        const gi = isLse ? h * T + t : t * rowStride + off + h * HS + e;
        const ri = isLse ? h * T + t : (t * NH + h) * HS + e;
        const g = got[gi];
        if (Number.isNaN(g) || !Number.isFinite(g)) {
          nan++;
          continue;
        }
        if (!heads.includes(h)) continue;
        const r = ref[ri];
        num += (g - r) * (g - r);
        den += r * r;
      }
    }
  }
  return { err: nan > 0 ? Number.NaN : Math.sqrt(num / Math.max(den, 1e-300)), nan };
}

function runCase(c) {
  const { name, lens, NH, HS, packed, useSlopes, useKeyBias } = c;
  const B = lens.length;
  const cuS = new Int32Array(B + 1);
  for (let b = 0; b < B; ++b) cuS[b + 1] = cuS[b] + lens[b];
  const T = cuS[B];
  const maxSeqlen = Math.max(...lens);
  // The kernels may be told a smaller maxSeqlen (still over 128): their CTAs then loop
  // over the tiles (slower, still exact).
  const maxSeqlenArg = c.maxSeqlenArg ?? maxSeqlen;
  const C = NH * HS;
  const stride = packed ? 3 * C : C;
  const scale = 1 / Math.sqrt(HS);
  const slopes = useSlopes ? Float32Array.from({ length: NH }, (_, h) => 2 ** ((-8 * (h + 1)) / NH)) : null;
  const keyBias = useKeyBias
    ? Float32Array.from({ length: T }, () => (rand() < 0.2 ? -10000 : randn() * 0.5))
    : null;
  const heads = c.heads ?? Array.from({ length: NH }, (_, h) => h);

  // Inputs: packed (T, 3, NH, HS) or three separate (T, NH, HS) tensors.
  const nx = packed ? T * stride : T * C;
  const gen = (n) => {
    const bits = new Uint16Array(n);
    for (let i = 0; i < n; ++i) bits[i] = toBf16(randn());
    return bits;
  };
  let xBits;
  let qBits;
  let kBits;
  let vBits;
  const xRef = new Float64Array(packed ? nx : 3 * nx);
  if (packed) {
    xBits = gen(nx);
    for (let i = 0; i < nx; ++i) xRef[i] = fromBf16(xBits[i]);
  } else {
    qBits = gen(nx);
    kBits = gen(nx);
    vBits = gen(nx);
    // Reference view: interleave as a stride-3C buffer.
    for (let t = 0; t < T; ++t) {
      for (let e = 0; e < C; ++e) {
        xRef[t * 3 * C + e] = fromBf16(qBits[t * C + e]);
        xRef[t * 3 * C + C + e] = fromBf16(kBits[t * C + e]);
        xRef[t * 3 * C + 2 * C + e] = fromBf16(vBits[t * C + e]);
      }
    }
  }
  const doBits = gen(T * C);
  const doRef = Float64Array.from(doBits, fromBf16);

  const dCu = upload(cuS);
  const dSl = slopes ? upload(slopes) : 0;
  const dKb = keyBias ? upload(keyBias) : 0;
  let q;
  let k;
  let v;
  const bufs = [];
  if (packed) {
    const dx = upload(xBits);
    bufs.push(dx);
    q = dx;
    k = dx + 2 * C;
    v = dx + 4 * C;
  } else {
    q = upload(qBits);
    k = upload(kBits);
    v = upload(vBits);
    bufs.push(q, k, v);
  }
  const dOut = poisonedBf16(T * C);
  const dLse = poisonedF32(NH * T);
  const dDo = upload(doBits);
  const nd = packed ? T * stride : T * C;
  let dq;
  let dk;
  let dv;
  if (packed) {
    const g = poisonedBf16(nd);
    bufs.push(g);
    dq = g;
    dk = g + 2 * C;
    dv = g + 4 * C;
  } else {
    dq = poisonedBf16(nd);
    dk = poisonedBf16(nd);
    dv = poisonedBf16(nd);
    bufs.push(dq, dk, dv);
  }

  cu.attentionForward(BF16, dOut, dLse, q, k, v, stride, dCu, B, T, NH, HS, maxSeqlenArg, dSl, dKb, scale);
  // Determinism of the forward: a second run must match bit for bit.
  const out1 = downloadBf16(dOut, T * C);
  const lse1 = downloadF32(dLse, NH * T);
  cu.attentionForward(BF16, dOut, dLse, q, k, v, stride, dCu, B, T, NH, HS, maxSeqlenArg, dSl, dKb, scale);
  const out2 = downloadBf16(dOut, T * C);
  let same = true;
  for (let i = 0; i < out1.length; ++i) if (!(out1[i] === out2[i])) same = false;

  const ref = reference(
    { NH, HS, stride: 3 * C, qo: 0, ko: C, vo: 2 * C, scale, slopes, keyBias },
    xRef,
    doRef,
    cuS,
    heads,
  );
  const gs = packed ? stride : C;
  const r = {
    name,
    B,
    T,
    NH,
    HS,
    maxSeqlen,
    packed,
    slopes: useSlopes,
    keyBias: useKeyBias,
    headsChecked: heads.length,
    out: relErr(out1, ref.out, T, NH, HS, heads, C, 0, false),
    lse: relErr(lse1, ref.lse, T, NH, HS, heads, 0, 0, true),
    fwdDeterministic: same,
    bwd: {},
  };
  {
    const backward = () =>
      cu.attentionBackward(
        BF16,
        dq,
        dk,
        dv,
        dDo,
        dOut,
        dLse,
        q,
        k,
        v,
        stride,
        dCu,
        B,
        T,
        NH,
        HS,
        maxSeqlenArg,
        dSl,
        dKb,
        scale,
      );
    backward();
    const got = packed ? downloadBf16(dq, nd) : null;
    const gq = packed ? got : downloadBf16(dq, nd);
    const gk = packed ? got : downloadBf16(dk, nd);
    const gv = packed ? got : downloadBf16(dv, nd);
    r.bwd.main = {
      dq: relErr(gq, ref.dq, T, NH, HS, heads, gs, 0, false),
      dk: relErr(gk, ref.dk, T, NH, HS, heads, gs, packed ? C : 0, false),
      dv: relErr(gv, ref.dv, T, NH, HS, heads, gs, packed ? 2 * C : 0, false),
    };
    // A second backward must repeat dk and dv bit for bit, and dq too when no sequence
    // is longer than 128 tokens (longer ones add dq partials with atomics).
    backward();
    const again = packed ? downloadBf16(dq, nd) : null;
    const parts = packed
      ? [
          [gq, again, 0],
          [gk, again, C],
          [gv, again, 2 * C],
        ]
      : [
          [gq, downloadBf16(dq, nd), 0],
          [gk, downloadBf16(dk, nd), 0],
          [gv, downloadBf16(dv, nd), 0],
        ];
    let bwdSame = true;
    parts.forEach(([a, b, off], which) => {
      if (which === 0 && maxSeqlen > 128) return;
      for (let t = 0; t < T; ++t) {
        for (let i = 0; i < C; ++i) {
          const j = t * gs + off + i;
          if (!Object.is(a[j], b[j])) bwdSame = false;
        }
      }
    });
    r.bwdDeterministic = bwdSame;
  }
  Object.assign(r, r.bwd.main);
  r.pass =
    ["out", "lse"].every((f) => r[f].err <= TOL) &&
    Object.values(r.bwd).every((g) => ["dq", "dk", "dv"].every((f) => g[f].err <= TOL)) &&
    same &&
    r.bwdDeterministic;
  for (const p of [dCu, dSl, dKb, dOut, dLse, dDo, ...bufs]) if (p) cu.free(p);
  return r;
}

// A backward told maxSeqlen <= 128 with a longer sequence: that sequence's dq comes out
// NaN (the kernels have no room for it), the other sequence's gradients are finite, and
// the process goes on.
function understatedBackward() {
  const lens = [200, 3];
  const NH = 2;
  const HS = 64;
  const C = NH * HS;
  const T = lens[0] + lens[1];
  const cuS = upload(new Int32Array([0, lens[0], T]));
  const gen = (n) => upload(Uint16Array.from({ length: n }, () => toBf16(randn())));
  const q = gen(T * C);
  const k = gen(T * C);
  const v = gen(T * C);
  const dout = gen(T * C);
  const out = cu.alloc(T * C * 2);
  const lse = cu.alloc(NH * T * 4);
  const grads = [0, 1, 2].map(() => upload(new Uint16Array(T * C)));
  cu.attentionForward(BF16, out, lse, q, k, v, C, cuS, 2, T, NH, HS, lens[0], 0, 0, 0.125);
  cu.attentionBackward(BF16, ...grads, dout, out, lse, q, k, v, C, cuS, 2, T, NH, HS, 64, 0, 0, 0.125);
  let pass = true;
  grads.forEach((g, which) => {
    const x = downloadBf16(g, T * C);
    for (let i = 0; i < T * C; ++i) {
      const long = i < lens[0] * C;
      if (long ? which === 0 && !Number.isNaN(x[i]) : !Number.isFinite(x[i])) pass = false;
    }
  });
  for (const ptr of [cuS, q, k, v, dout, out, lse, ...grads]) cu.free(ptr);
  return { name: "understated-maxSeqlen-bwd", pass };
}

function errorCases() {
  // Clear errors, no crash: float32 rejected, bad head size, misaligned stride.
  const msgs = [];
  const p = cu.alloc(1 << 16);
  const cuS = upload(new Int32Array([0, 4]));
  const tryIt = (fn) => {
    try {
      fn();
      msgs.push("(no error)");
    } catch (e) {
      msgs.push(String(e.message));
    }
  };
  tryIt(() => cu.attentionForward(0, p, p, p, p, p, 64, cuS, 1, 4, 1, 64, 4, 0, 0, 0.125));
  tryIt(() => cu.attentionForward(BF16, p, p, p, p, p, 48, cuS, 1, 4, 1, 48, 4, 0, 0, 0.125));
  tryIt(() => cu.attentionForward(BF16, p, p, p, p, p, 36, cuS, 1, 4, 1, 32, 4, 0, 0, 0.125));
  cu.free(p);
  cu.free(cuS);
  return msgs;
}

const small = process.argv.includes("--small");
const mix = (n, lo, hi) => Array.from({ length: n }, () => lo + Math.floor(rand() * (hi - lo)));
const cases = small
  ? [
      {
        name: "small-mixed",
        lens: [1, 2, 7, 129, 300],
        NH: 3,
        HS: 64,
        packed: true,
        useSlopes: true,
        useKeyBias: true,
      },
      {
        // told maxSeqlen = 129: two tile slots, so CTAs loop over the tiles
        name: "small-tile-loop",
        lens: [300, 5, 700],
        maxSeqlenArg: 129,
        NH: 2,
        HS: 64,
        packed: true,
        useSlopes: true,
        useKeyBias: true,
      },
      {
        // ALiBi without key bias: the forward's one-FMA ALiBi term on off-diagonal tiles
        name: "small-alibi-long",
        lens: [300, 3, 129, 520],
        NH: 2,
        HS: 64,
        packed: true,
        useSlopes: true,
        useKeyBias: false,
      },
      {
        // maxSeqlen <= 128: the one-pass backward for short sequences
        name: "small-short",
        lens: [1, 63, 64, 65, 100, 128],
        NH: 3,
        HS: 64,
        packed: true,
        useSlopes: true,
        useKeyBias: true,
      },
      {
        name: "small-hs32",
        lens: [5, 140],
        NH: 2,
        HS: 32,
        packed: false,
        useSlopes: false,
        useKeyBias: false,
      },
      {
        name: "small-hs128",
        lens: [3, 130],
        NH: 2,
        HS: 128,
        packed: true,
        useSlopes: true,
        useKeyBias: false,
      },
    ]
  : [
      {
        name: "nh12-hs64-alibi",
        lens: [1, 2, 7, 128, 129, 300],
        NH: 12,
        HS: 64,
        packed: true,
        useSlopes: true,
        useKeyBias: false,
      },
      {
        name: "nh12-hs64-plain",
        lens: [1, 2, 7, 128, 129, 300],
        NH: 12,
        HS: 64,
        packed: false,
        useSlopes: false,
        useKeyBias: false,
      },
      {
        name: "nh5-hs32-keybias",
        lens: [1, 2, 7, 128, 129, 300],
        NH: 5,
        HS: 32,
        packed: false,
        useSlopes: false,
        useKeyBias: true,
      },
      {
        name: "nh6-hs128-alibi-kb",
        lens: [1, 2, 7, 128, 129, 300],
        NH: 6,
        HS: 128,
        packed: true,
        useSlopes: true,
        useKeyBias: true,
      },
      {
        name: "nh5-hs64-2048",
        lens: [2048],
        NH: 5,
        HS: 64,
        packed: true,
        useSlopes: true,
        useKeyBias: false,
        heads: [0, 4],
      },
      {
        name: "nh6-hs128-1+2048",
        lens: [1, 2048],
        NH: 6,
        HS: 128,
        packed: true,
        useSlopes: true,
        useKeyBias: true,
        heads: [2],
      },
      {
        name: "nh12-hs32-1+2048",
        lens: [2048, 1],
        NH: 12,
        HS: 32,
        packed: false,
        useSlopes: true,
        useKeyBias: false,
        heads: [11],
      },
      {
        name: "nh4-hs64-keybias-long",
        lens: [1, 129, 256, 257, 1000],
        NH: 4,
        HS: 64,
        packed: false,
        useSlopes: true,
        useKeyBias: true,
      },
      {
        name: "nh12-hs64-tile-loop",
        lens: [1100, 3, 640],
        maxSeqlenArg: 200,
        NH: 12,
        HS: 64,
        packed: true,
        useSlopes: true,
        useKeyBias: false,
        heads: [0, 7],
      },
      {
        name: "nh12-hs64-bert128",
        lens: mix(24, 32, 129),
        NH: 12,
        HS: 64,
        packed: true,
        useSlopes: true,
        useKeyBias: false,
      },
      {
        name: "nh3-hs64-B3000",
        lens: mix(3000, 1, 20),
        NH: 3,
        HS: 64,
        packed: true,
        useSlopes: true,
        useKeyBias: true,
      },
    ];

console.log(
  `attention GPU check, seed ${seed0}, device ${JSON.stringify(addon.cudaStatus?.() ?? cu.status())}`,
);
const results = [];
for (const c of cases) {
  const t0 = Date.now();
  let r;
  try {
    r = runCase(c);
  } catch (e) {
    r = { name: c.name, pass: false, error: String(e.stack ?? e) };
  }
  r.seconds = (Date.now() - t0) / 1000;
  results.push(r);

  const f = (x) => (x ? (Number.isNaN(x.err) ? `NaN(${x.nan})` : x.err.toExponential(2)) : "-");
  console.log(
    `${r.pass ? "PASS" : "FAIL"} ${c.name.padEnd(20)} T=${String(r.T ?? "").padStart(6)} out ${f(r.out)} lse ${f(r.lse)} dq ${f(r.dq)} dk ${f(r.dk)} dv ${f(r.dv)} det ${r.fwdDeterministic}/${r.bwdDeterministic} ${r.seconds.toFixed(1)}s${r.error ? ` ${r.error}` : ""}`,
  );
}
{
  const r = understatedBackward();
  results.push(r);
  console.log(
    `${r.pass ? "PASS" : "FAIL"} ${r.name} (the long sequence's dq is NaN, the short one's gradients finite)`,
  );
}
const errors = errorCases();
for (const m of errors) console.log(`error case: ${m}`);
const deviceError = cu.takeDeviceError();
const allPass = results.every((r) => r.pass);
console.log(
  `${allPass ? "ALL PASS" : "SOME FAILED"} (${results.filter((r) => r.pass).length}/${results.length})`,
);
if (process.env.OUT) {
  fs.writeFileSync(
    path.join(process.env.OUT, small ? "attention_test_small.json" : "attention_test.json"),
    JSON.stringify({ seed: seed0, results, errors, deviceError, allPass }, null, 2),
  );
}
process.exitCode = allPass ? 0 : 1;
