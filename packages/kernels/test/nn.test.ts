import { afterAll, describe, expect, it } from "vitest";
import { cpu } from "../src/index.js";
import {
  asStored,
  download,
  erf,
  F32,
  F64,
  FLOATS,
  freeAll,
  I32,
  poisoned,
  randn,
  relErr,
  rng,
  SIZES,
  tol,
  type FloatCode,
  upload,
} from "./helpers.js";

afterAll(freeAll);

describe("matmul / addBias / biasGrad", () => {
  for (const dt of FLOATS) {
    for (const [M, N, K] of [
      [1, 1, 1],
      [7, 129, 7],
      [129, 7, 129],
      [0, 3, 4],
      [3, 4, 0],
    ] as const) {
      for (const [ta, tb] of [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ] as const) {
        it(`matmul dtype=${dt} ${M}x${N}x${K} ta=${ta} tb=${tb}`, () => {
          const r = rng(M * 31 + N * 7 + K + (ta ? 1 : 0) + (tb ? 2 : 0));
          const batch = 2;
          const A = asStored(dt, randn(M * K, r));
          const B = asStored(dt, randn(batch * K * N, r));
          const C0 = asStored(dt, randn(batch * M * N, r));
          for (const beta of [0, 0.5]) {
            const out = beta === 0 ? poisoned(dt, batch * M * N) : upload(dt, C0);
            // A broadcast over the batch (stride 0).
            cpu.matmul(
              dt,
              dt,
              out,
              upload(dt, A),
              upload(dt, B),
              batch,
              M,
              N,
              K,
              ta,
              tb,
              2,
              beta,
              0,
              K * N,
              M * N,
            );
            const ref: number[] = [];
            for (let b = 0; b < batch; b++) {
              for (let i = 0; i < M; i++) {
                for (let j = 0; j < N; j++) {
                  let s = 0;
                  for (let k = 0; k < K; k++) {
                    s += A[ta ? k * M + i : i * K + k]! * B[b * K * N + (tb ? j * K + k : k * N + j)]!;
                  }
                  ref.push(2 * s + beta * C0[b * M * N + i * N + j]!);
                }
              }
            }
            expect(relErr(download(dt, out, batch * M * N), ref)).toBeLessThan(tol(dt) * 10);
          }
        });
      }
    }
    it(`addBias and biasGrad dtype=${dt}`, () => {
      const r = rng(3 + dt);
      for (const [rows, cols] of [
        [1, 1],
        [7, 129],
        [129, 7],
        [0, 5],
      ] as const) {
        const x = asStored(dt, randn(rows * cols, r));
        const bias = asStored(dt, randn(cols, r));
        const xp = upload(dt, x);
        cpu.addBias(dt, xp, upload(dt, bias), rows, cols);
        expect(
          relErr(
            download(dt, xp, rows * cols),
            Array.from(x, (v, i) => v + bias[i % cols]!),
          ),
        ).toBeLessThan(tol(dt));
        const db = poisoned(dt, cols);
        cpu.biasGrad(dt, dt, db, upload(dt, x), rows, cols, false);
        const ref = new Array(cols).fill(0);
        x.forEach((v, i) => {
          ref[i % cols] += v;
        });
        expect(relErr(download(dt, db, cols), ref)).toBeLessThan(tol(dt));
        cpu.biasGrad(dt, dt, db, upload(dt, x), rows, cols, true);
        expect(
          relErr(
            download(dt, db, cols),
            ref.map((v) => 2 * v),
          ),
        ).toBeLessThan(tol(dt));
      }
    });
  }
});

describe("softmax / layernorm / geglu", () => {
  for (const dt of FLOATS) {
    for (const cols of [...SIZES, 0]) {
      it(`softmax dtype=${dt} cols=${cols}`, () => {
        const rows = 7;
        const r = rng(cols + dt);
        const x = asStored(dt, randn(rows * cols, r, 3));
        const dy = asStored(dt, randn(rows * cols, r));
        for (const log of [false, true]) {
          const y = poisoned(dt, rows * cols);
          cpu.softmaxForward(dt, y, upload(dt, x), rows, cols, log);
          const ref: number[] = [];
          const dref: number[] = [];
          for (let i = 0; i < rows; i++) {
            const row = Array.from(x.subarray(i * cols, (i + 1) * cols));
            const m = Math.max(...row);
            const s = row.reduce((a, v) => a + Math.exp(v - m), 0);
            const p = row.map((v) => Math.exp(v - m) / s);
            const g = Array.from(dy.subarray(i * cols, (i + 1) * cols));
            if (log) {
              ref.push(...row.map((v) => v - m - Math.log(s)));
              const sg = g.reduce((a, v) => a + v, 0);
              dref.push(...g.map((v, j) => v - p[j]! * sg));
            } else {
              ref.push(...p);
              const sg = g.reduce((a, v, j) => a + v * p[j]!, 0);
              dref.push(...g.map((v, j) => p[j]! * (v - sg)));
            }
          }
          const yv = download(dt, y, rows * cols);
          expect(relErr(yv, ref)).toBeLessThan(tol(dt));
          const dx = poisoned(dt, rows * cols);
          cpu.softmaxBackward(dt, dx, upload(dt, dy), y, rows, cols, log);
          expect(relErr(download(dt, dx, rows * cols), dref)).toBeLessThan(tol(dt) * 10);
        }
      });
    }
    for (const C of SIZES) {
      it(`layernorm fwd+bwd with residual dtype=${dt} C=${C}`, () => {
        const rows = 7;
        const r = rng(C * 3 + dt);
        const x = asStored(dt, randn(rows * C, r));
        const res = asStored(dt, randn(rows * C, r));
        const w = asStored(dt, randn(C, r));
        const b = asStored(dt, randn(C, r));
        const dy = asStored(dt, randn(rows * C, r));
        const out = poisoned(dt, rows * C);
        const mean = poisoned(dt, rows);
        const rstd = poisoned(dt, rows);
        const hOut = poisoned(dt, rows * C);
        const wp = upload(dt, w);
        cpu.layernormForward(
          dt,
          out,
          mean,
          rstd,
          upload(dt, x),
          upload(dt, res),
          hOut,
          wp,
          upload(dt, b),
          rows,
          C,
          1e-5,
          0,
          0,
          0,
        );
        const h = asStored(
          dt,
          Array.from(x, (v, i) => v + res[i]!),
        );
        const ref: number[] = [];
        const dxRef: number[] = [];
        const dwRef = new Array(C).fill(0);
        const dbRef = new Array(C).fill(0);
        for (let i = 0; i < rows; i++) {
          const hr = Array.from(h.subarray(i * C, (i + 1) * C));
          const mu = hr.reduce((a, v) => a + v, 0) / C;
          const rs = 1 / Math.sqrt(hr.reduce((a, v) => a + (v - mu) ** 2, 0) / C + 1e-5);
          const xhat = hr.map((v) => (v - mu) * rs);
          ref.push(...xhat.map((v, j) => v * w[j]! + b[j]!));
          const g = xhat.map((_, j) => dy[i * C + j]! * w[j]!);
          const mg = g.reduce((a, v) => a + v, 0) / C;
          const mgx = g.reduce((a, v, j) => a + v * xhat[j]!, 0) / C;
          dxRef.push(...g.map((v, j) => rs * (v - mg - xhat[j]! * mgx)));
          xhat.forEach((v, j) => {
            dwRef[j] += dy[i * C + j]! * v;
            dbRef[j] += dy[i * C + j]!;
          });
        }
        expect(relErr(download(dt, out, rows * C), ref)).toBeLessThan(tol(dt) * 10);
        expect(relErr(download(dt, hOut, rows * C), h)).toBeLessThan(tol(dt));
        const dx = poisoned(dt, rows * C);
        const dw = upload(dt, new Array(C).fill(1));
        const db = poisoned(dt, C);
        // No dropout: dxDropout 0, p 0.
        const backward = (dwp: number, accumulate: boolean) =>
          cpu.layernormBackward(
            dt,
            dt,
            dx,
            dwp,
            db,
            upload(dt, dy),
            hOut,
            mean,
            rstd,
            wp,
            rows,
            C,
            accumulate,
            0,
            0,
            0,
            0,
          );
        backward(dw, true);
        expect(relErr(download(dt, dx, rows * C), dxRef)).toBeLessThan(tol(dt) * 100);
        expect(
          relErr(
            download(dt, dw, C),
            dwRef.map((v) => v + 1),
          ),
        ).toBeLessThan(tol(dt) * 10);
        backward(0, false);
        expect(relErr(download(dt, db, C), dbRef)).toBeLessThan(tol(dt) * 10);
      });
    }
    it(`layernorm with dropout equals dropoutForward then layernorm dtype=${dt}`, () => {
      const r = rng(91 + dt);
      for (const [rows, C] of [
        [5, 7],
        [3, 64],
      ] as const) {
        const n = rows * C;
        const x = upload(dt, asStored(dt, randn(n, r)));
        const res = upload(dt, asStored(dt, randn(n, r)));
        const w = upload(dt, asStored(dt, randn(C, r)));
        const b = upload(dt, asStored(dt, randn(C, r)));
        const [p, seed, offset] = [0.3, 1234, 77];
        const run = (fused: boolean) => {
          const out = poisoned(dt, n);
          const h = poisoned(dt, n);
          const mean = poisoned(dt, rows);
          const rstd = poisoned(dt, rows);
          if (fused) {
            cpu.layernormForward(dt, out, mean, rstd, x, res, h, w, b, rows, C, 1e-5, p, seed, offset);
          } else {
            const xd = poisoned(dt, n);
            cpu.dropoutForward(dt, xd, x, n, p, seed, offset);
            cpu.layernormForward(dt, out, mean, rstd, xd, res, h, w, b, rows, C, 1e-5, 0, 0, 0);
          }
          return [
            download(dt, out, n),
            download(dt, h, n),
            download(dt, mean, rows),
            download(dt, rstd, rows),
          ];
        };
        const fused = run(true);
        expect(fused).toEqual(run(false));
        const resv = download(dt, res, n);
        expect(fused[1]!.some((v, i) => v === resv[i])).toBe(true); // some elements dropped (h = residual)
        // Backward: dxDropout equals dropoutBackward(dx).
        const h = upload(dt, fused[1]!);
        const mean = upload(dt, fused[2]!);
        const rstd = upload(dt, fused[3]!);
        const dy = upload(dt, asStored(dt, randn(n, r)));
        const dx = poisoned(dt, n);
        const dxd = poisoned(dt, n);
        cpu.layernormBackward(dt, dt, dx, 0, 0, dy, h, mean, rstd, w, rows, C, false, dxd, p, seed, offset);
        const dref = poisoned(dt, n);
        cpu.dropoutBackward(dt, dref, dx, n, p, seed, offset);
        expect(download(dt, dxd, n)).toEqual(download(dt, dref, n));
      }
      const out = poisoned(dt, 4);
      expect(() =>
        cpu.layernormForward(dt, out, 0, 0, upload(dt, [1, 2, 3, 4]), 0, 0, 0, 0, 1, 4, 1e-5, 0.1, 1, 0),
      ).toThrow(/dropout needs residual and residualOut/);
      expect(() =>
        cpu.layernormForward(dt, out, 0, 0, upload(dt, [1, 2, 3, 4]), 0, 0, 0, 0, 1, 4, 1e-5, 1, 1, 0),
      ).toThrow(/dropout p must be in \[0, 1\)/);
    });
    it(`geglu dtype=${dt}`, () => {
      const r = rng(77 + dt);
      for (const [rows, I] of [
        [1, 1],
        [7, 129],
        [0, 3],
      ] as const) {
        const x = asStored(dt, randn(rows * 2 * I, r, 2));
        const dy = asStored(dt, randn(rows * I, r));
        const out = poisoned(dt, rows * I);
        const xp = upload(dt, x);
        cpu.gegluForward(dt, out, xp, rows, I, 0, 0, 0);
        const ref: number[] = [];
        const dref: number[] = [];
        for (let i = 0; i < rows; i++) {
          const da: number[] = [];
          const db: number[] = [];
          for (let c = 0; c < I; c++) {
            const a = x[i * 2 * I + c]!;
            const b = x[i * 2 * I + I + c]!;
            const cdf = 0.5 * (1 + erf(a / Math.SQRT2));
            const pdf = Math.exp(-0.5 * a * a) / Math.sqrt(2 * Math.PI);
            ref.push(a * cdf * b);
            da.push(dy[i * I + c]! * b * (cdf + a * pdf));
            db.push(dy[i * I + c]! * a * cdf);
          }
          dref.push(...da, ...db);
        }
        expect(relErr(download(dt, out, rows * I), ref)).toBeLessThan(tol(dt) * 10);
        const dx = poisoned(dt, rows * 2 * I);
        cpu.gegluBackward(dt, dx, upload(dt, dy), xp, rows, I, 0, 0, 0);
        expect(relErr(download(dt, dx, rows * 2 * I), dref)).toBeLessThan(tol(dt) * 10);
      }
    });
    it(`geglu with fused dropout equals dropout after geglu, dtype=${dt}`, () => {
      const r = rng(91 + dt);
      for (const [rows, I, offset] of [
        [5, 37, 3],
        [2, 8, 0],
      ] as const) {
        const n = rows * I;
        const xp = upload(dt, asStored(dt, randn(rows * 2 * I, r, 2)));
        const dyp = upload(dt, asStored(dt, randn(n, r)));
        const [p, seed] = [0.3, 1234];
        const plain = poisoned(dt, n);
        cpu.gegluForward(dt, plain, xp, rows, I, 0, 0, 0);
        const ref = poisoned(dt, n);
        cpu.dropoutForward(dt, ref, plain, n, p, seed, offset);
        const fused = poisoned(dt, n);
        cpu.gegluForward(dt, fused, xp, rows, I, p, seed, offset);
        const refOut = download(dt, ref, n);
        expect(download(dt, fused, n)).toEqual(refOut);
        expect(refOut.some((v) => v === 0)).toBe(true); // the mask dropped something
        // Backward: the mask applied to dy, then the GeGLU gradient.
        const dyMasked = poisoned(dt, n);
        cpu.dropoutBackward(dt, dyMasked, dyp, n, p, seed, offset);
        const dref = poisoned(dt, 2 * n);
        cpu.gegluBackward(dt, dref, dyMasked, xp, rows, I, 0, 0, 0);
        const dx = poisoned(dt, 2 * n);
        cpu.gegluBackward(dt, dx, dyp, xp, rows, I, p, seed, offset);
        expect(download(dt, dx, 2 * n)).toEqual(download(dt, dref, 2 * n));
      }
      const out = poisoned(dt, 4);
      const xp = upload(dt, [1, 2, 3, 4, 5, 6, 7, 8]);
      expect(() => cpu.gegluForward(dt, out, xp, 1, 4, 1, 0, 0)).toThrow(/dropout p must be in \[0, 1\)/);
      expect(() => cpu.gegluForward(dt, out, xp, 1, 4, 0.1, -1, 0)).toThrow(/seed and offset/);
    });
  }
});

describe("index ops", () => {
  for (const dt of FLOATS) {
    it(`indexSelect / indexAdd / indexCopy dtype=${dt}`, () => {
      const r = rng(5 + dt);
      const numRows = 11;
      for (const [n, row] of [
        [1, 1],
        [7, 129],
        [129, 7],
        [0, 4],
      ] as const) {
        const table = asStored(dt, randn(numRows * row, r));
        const idx = Array.from({ length: n }, () => Math.floor(r() * numRows));
        const out = poisoned(dt, n * row);
        const ip = upload(I32, idx);
        cpu.indexSelect(dt, out, upload(dt, table), ip, n, row, numRows);
        const ref = idx.flatMap((k) => Array.from(table.subarray(k * row, (k + 1) * row)));
        expect(Array.from(download(dt, out, n * row))).toEqual(ref);
        const src = asStored(dt, randn(n * row, r));
        const acc = upload(dt, table);
        cpu.indexAdd(dt, dt, acc, upload(dt, src), ip, n, row, numRows);
        const addRef = Array.from(table);
        idx.forEach((k, i) => {
          for (let c = 0; c < row; c++) addRef[k * row + c]! += src[i * row + c]!;
        });
        expect(relErr(download(dt, acc, numRows * row), addRef)).toBeLessThan(tol(dt));
        const distinct = [...new Set(idx)];
        const dst = upload(dt, table);
        cpu.indexCopy(dt, dst, upload(dt, src), upload(I32, distinct), distinct.length, row, numRows);
        const copyRef = Array.from(table);
        distinct.forEach((k, i) => {
          for (let c = 0; c < row; c++) copyRef[k * row + c] = src[i * row + c]!;
        });
        expect(Array.from(download(dt, dst, numRows * row))).toEqual(copyRef);
      }
    });
  }
});

describe("cross-entropy", () => {
  for (const dt of FLOATS) {
    for (const V of SIZES) {
      it(`forward/backward dtype=${dt} V=${V}`, () => {
        const rows = 7;
        const r = rng(V + dt * 5);
        const logits = asStored(dt, randn(rows * V, r, 3));
        const labels = Array.from({ length: rows }, (_, i) => (i === 3 ? -100 : Math.floor(r() * V)));
        const loss = poisoned(dt, rows);
        const lse = poisoned(dt, rows);
        const lp = upload(dt, logits);
        const lab = upload(I32, labels);
        cpu.crossEntropyForward(dt, loss, lse, lp, lab, rows, V, -100);
        const lref: number[] = [];
        const dref: number[] = [];
        for (let i = 0; i < rows; i++) {
          const row = Array.from(logits.subarray(i * V, (i + 1) * V));
          const m = Math.max(...row);
          const l = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
          const ignored = labels[i] === -100;
          lref.push(ignored ? 0 : l - row[labels[i]!]!);
          dref.push(
            ...row.map((v, j) => (ignored ? 0 : 0.5 * (Math.exp(v - l) - (j === labels[i] ? 1 : 0)))),
          );
        }
        expect(relErr(download(dt, loss, rows), lref)).toBeLessThan(tol(dt));
        const d = poisoned(dt, rows * V);
        cpu.crossEntropyBackward(dt, d, lp, lse, lab, rows, V, -100, 0.5);
        expect(relErr(download(dt, d, rows * V), dref)).toBeLessThan(tol(dt) * 10);
      });
    }
  }
});

describe("attention (varlen, ALiBi, key bias, packed qkv)", () => {
  for (const dt of FLOATS) {
    it(`forward + backward vs JS reference dtype=${dt}`, () => {
      const r = rng(123 + dt);
      const seqs = [1, 7, 300];
      const T = seqs.reduce((a, b) => a + b, 0);
      const NH = 2;
      const HS = 5;
      const stride = 3 * NH * HS;
      const cu = [0];
      for (const s of seqs) cu.push(cu[cu.length - 1]! + s);
      const qkv = asStored(dt, randn(T * stride, r));
      const slopes = [0.5, 0.125];
      const keyBias = Array.from({ length: T }, (_, j) => (j % 5 === 4 ? -10000 : 0));
      const scale = 1 / Math.sqrt(HS);
      const dout = asStored(dt, randn(T * NH * HS, r));
      const base = upload(dt, qkv);
      const bytes = dt === F64 ? 8 : 4;
      const q = base;
      const k = base + NH * HS * bytes;
      const v = base + 2 * NH * HS * bytes;
      const out = poisoned(dt, T * NH * HS);
      const lse = poisoned(dt, NH * T);
      const cuP = upload(I32, cu);
      const slP = upload(F32, slopes);
      const kbP = upload(F32, keyBias);
      cpu.attentionForward(dt, out, lse, q, k, v, stride, cuP, seqs.length, T, NH, HS, 300, slP, kbP, scale);
      const dqkv = poisoned(dt, T * stride);
      cpu.fill(dt, dqkv, T * stride, 0);
      const dq = dqkv;
      const dk = dqkv + NH * HS * bytes;
      const dv = dqkv + 2 * NH * HS * bytes;
      cpu.attentionBackward(
        dt,
        dq,
        dk,
        dv,
        upload(dt, dout),
        out,
        lse,
        q,
        k,
        v,
        stride,
        cuP,
        seqs.length,
        T,
        NH,
        HS,
        300,
        slP,
        kbP,
        scale,
      );
      const Q = (t: number, h: number, e: number) => qkv[t * stride + h * HS + e]!;
      const K = (t: number, h: number, e: number) => qkv[t * stride + NH * HS + h * HS + e]!;
      const Vv = (t: number, h: number, e: number) => qkv[t * stride + 2 * NH * HS + h * HS + e]!;
      const oRef = new Float64Array(T * NH * HS);
      const dRef = new Float64Array(T * stride);
      for (let b = 0; b < seqs.length; b++) {
        const s0 = cu[b]!;
        const S = seqs[b]!;
        for (let h = 0; h < NH; h++) {
          const P: number[][] = [];
          for (let i = 0; i < S; i++) {
            const sc: number[] = [];
            for (let j = 0; j < S; j++) {
              let d = 0;
              for (let e = 0; e < HS; e++) d += Q(s0 + i, h, e) * K(s0 + j, h, e);
              sc.push(scale * d - slopes[h]! * Math.abs(i - j) + keyBias[s0 + j]!);
            }
            const m = Math.max(...sc);
            const z = sc.reduce((a, x) => a + Math.exp(x - m), 0);
            P.push(sc.map((x) => Math.exp(x - m) / z));
          }
          for (let i = 0; i < S; i++) {
            const doi = (e: number) => dout[((s0 + i) * NH + h) * HS + e]!;
            let D = 0;
            for (let e = 0; e < HS; e++) {
              let o = 0;
              for (let j = 0; j < S; j++) o += P[i]![j]! * Vv(s0 + j, h, e);
              oRef[((s0 + i) * NH + h) * HS + e] = o;
              D += doi(e) * o;
            }
            for (let j = 0; j < S; j++) {
              let dp = 0;
              for (let e = 0; e < HS; e++) dp += doi(e) * Vv(s0 + j, h, e);
              const ds = P[i]![j]! * (dp - D) * scale;
              for (let e = 0; e < HS; e++) {
                dRef[(s0 + i) * stride + h * HS + e]! += ds * K(s0 + j, h, e);
                dRef[(s0 + j) * stride + NH * HS + h * HS + e]! += ds * Q(s0 + i, h, e);
                dRef[(s0 + j) * stride + 2 * NH * HS + h * HS + e]! += P[i]![j]! * doi(e);
              }
            }
          }
        }
      }
      expect(relErr(download(dt, out, T * NH * HS), oRef)).toBeLessThan(tol(dt) * 10);
      expect(relErr(download(dt, dqkv, T * stride), dRef)).toBeLessThan(tol(dt) * 100);
    });
  }
});

// Philox4x32-10 in JavaScript (BigInt for the 32x32 -> 64-bit products): the
// rule the kernels must follow, written independently of philox.h.
function philox(seed: number, counter: number): number[] {
  const M0 = 0xd2511f53n;
  const M1 = 0xcd9e8d57n;
  const mask = 0xffffffffn;
  let c = [BigInt(counter) & mask, BigInt(counter) >> 32n, 0n, 0n];
  let k0 = BigInt(seed) & mask;
  let k1 = BigInt(seed) >> 32n;
  for (let r = 0; r < 10; r++) {
    const p0 = M0 * c[0]!;
    const p1 = M1 * c[2]!;
    c = [(p1 >> 32n) ^ c[1]! ^ k0, p1 & mask, (p0 >> 32n) ^ c[3]! ^ k1, p0 & mask];
    k0 = (k0 + 0x9e3779b9n) & mask;
    k1 = (k1 + 0xbb67ae85n) & mask;
  }
  return c.map(Number);
}

describe("randomness and dropout (Philox4x32-10)", () => {
  it("the JavaScript Philox matches the Random123 known-answer vectors", () => {
    expect(philox(0, 0)).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
  });
  it("matches the Random123 known-answer vector", () => {
    // philox4x32_10(ctr = 0, key = 0): first word 0x6627e8d5; word0 >> 8 scaled by 2^-24.
    const out = poisoned(F64, 1);
    cpu.randUniform(F64, out, 1, 0, 0, 0, 1);
    expect(download(F64, out, 1)[0]).toBe((0x6627e8d5 >>> 8) / 2 ** 24);
  });
  for (const dt of FLOATS) {
    it(`uniform/normal moments and stream offsets dtype=${dt}`, () => {
      const n = 20000;
      const u = poisoned(dt, n);
      cpu.randUniform(dt, u, n, 42, 0, -1, 3);
      const uv = download(dt, u, n);
      const mean = uv.reduce((a, v) => a + v, 0) / n;
      expect(Math.abs(mean - 1)).toBeLessThan(0.05);
      expect(Math.min(...uv)).toBeGreaterThanOrEqual(-1);
      expect(Math.max(...uv)).toBeLessThan(3);
      const tail = poisoned(dt, 10);
      cpu.randUniform(dt, tail, 10, 42, 100, -1, 3);
      expect(Array.from(download(dt, tail, 10))).toEqual(Array.from(uv.subarray(100, 110)));
      const z = poisoned(dt, n);
      cpu.randNormal(dt, z, n, 7, 0, 2, 0.5);
      const zv = download(dt, z, n);
      const zm = zv.reduce((a, v) => a + v, 0) / n;
      const zs = Math.sqrt(zv.reduce((a, v) => a + (v - zm) ** 2, 0) / n);
      expect(Math.abs(zm - 2)).toBeLessThan(0.02);
      expect(Math.abs(zs - 0.5)).toBeLessThan(0.02);
    });
    it(`dropout: element i uses word (i & 3) of philox(seed, offset + (i >> 2)) dtype=${dt}`, () => {
      const n = 1003; // not a multiple of 4: the last Philox call feeds 3 elements
      const p = 0.3;
      const seed = 2 ** 33 + 9; // a key with both 32-bit halves set
      const offset = 5;
      const x = asStored(dt, randn(n, rng(17 + dt)));
      const out = poisoned(dt, n);
      cpu.dropoutForward(dt, out, upload(dt, x), n, p, seed, offset);
      const dy = asStored(dt, randn(n, rng(29 + dt)));
      const dx = poisoned(dt, n);
      cpu.dropoutBackward(dt, dx, upload(dt, dy), n, p, seed, offset);
      const ov = download(dt, out, n);
      const dv = download(dt, dx, n);
      const f = dt === F64 ? (v: number) => v : Math.fround;
      const scale = f(1 / f(1 - f(p)));
      let dropped = 0;
      for (let i = 0; i < n; i++) {
        const word = philox(seed, offset + (i >> 2))[i & 3]!;
        const drop = (word >>> 8) / 2 ** 24 < Math.fround(p);
        if (drop) dropped++;
        expect(ov[i]).toBe(drop ? 0 : asStored(dt, [f(x[i]! * scale)])[0]);
        expect(dv[i]).toBe(drop ? 0 : asStored(dt, [f(dy[i]! * scale)])[0]);
      }
      expect(Math.abs(dropped / n - p)).toBeLessThan(0.05);
    });
  }
});

describe("matmul with a bias", () => {
  for (const dt of FLOATS) {
    it(`equals matmul then addBias dtype=${dt}`, () => {
      const r = rng(31 + dt);
      for (const [batch, M, N, K] of [
        [1, 5, 7, 3],
        [3, 4, 6, 5],
        [1, 2, 3, 0],
      ] as const) {
        const a = upload(dt, asStored(dt, randn(batch * M * K, r)));
        const b = upload(dt, asStored(dt, randn(K * N, r)));
        const bias = upload(dt, asStored(dt, randn(N, r)));
        const n = batch * M * N;
        const fused = poisoned(dt, n);
        cpu.matmul(dt, dt, fused, a, b, batch, M, N, K, false, false, 1, 0, M * K, 0, M * N, bias);
        const split = poisoned(dt, n);
        cpu.matmul(dt, dt, split, a, b, batch, M, N, K, false, false, 1, 0, M * K, 0, M * N);
        cpu.addBias(dt, split, bias, batch * M, N);
        expect(download(dt, fused, n)).toEqual(download(dt, split, n));
        const none = poisoned(dt, n);
        cpu.matmul(dt, dt, none, a, b, batch, M, N, K, false, false, 1, 0, M * K, 0, M * N, 0);
        const plain = poisoned(dt, n);
        cpu.matmul(dt, dt, plain, a, b, batch, M, N, K, false, false, 1, 0, M * K, 0, M * N);
        expect(download(dt, none, n)).toEqual(download(dt, plain, n));
      }
      const a = upload(dt, [1, 2]);
      const small = upload(dt, [1]);
      expect(() =>
        cpu.matmul(dt, dt, poisoned(dt, 2), a, a, 1, 1, 2, 1, false, false, 1, 0, 0, 0, 0, small),
      ).toThrow(/bias/);
      const raw = cpu.matmul as unknown as (...args: unknown[]) => void;
      const args = [dt, dt, poisoned(dt, 1), a, a, 1, 1, 1, 2, false, false, 1, 0, 0, 0, 0, 0, 2];
      expect(() => raw(...args)).toThrow(/expected 16 or 17 arguments, got 18/);
    });
  }
});

describe("adamw", () => {
  for (const dt of FLOATS) {
    it(`matches the formula over 3 steps dtype=${dt}`, () => {
      const r = rng(8 + dt);
      for (const n of [0, ...SIZES]) {
        const p0 = asStored(dt, randn(n, r));
        const param = upload(dt, p0);
        const m = upload(dt, new Array(n).fill(0));
        const v = upload(dt, new Array(n).fill(0));
        const copy = poisoned(F32, n);
        const ref = Array.from(p0);
        const mr = new Array(n).fill(0);
        const vr = new Array(n).fill(0);
        const [lr, b1, b2, eps, wd, gs] = [1e-3, 0.9, 0.98, 1e-6, 1e-5, 0.5];
        for (let step = 1; step <= 3; step++) {
          const g = asStored(dt, randn(n, r));
          cpu.adamw(dt, dt, param, upload(dt, g), m, v, n, lr, b1, b2, eps, wd, step, gs, F32, copy);
          for (let i = 0; i < n; i++) {
            const gi = g[i]! * gs;
            ref[i]! *= 1 - wd;
            mr[i] = b1 * mr[i] + (1 - b1) * gi;
            vr[i] = b2 * vr[i] + (1 - b2) * gi * gi;
            ref[i]! -= ((lr / (1 - b1 ** step)) * mr[i]) / (Math.sqrt(vr[i] / (1 - b2 ** step)) + eps);
          }
        }
        expect(relErr(download(dt, param, n), ref)).toBeLessThan(tol(dt) * 10);
        expect(relErr(download(F32, copy, n), asStored(F32, ref))).toBeLessThan(2e-5);
      }
    });
  }
});

describe("adamwList", () => {
  const [b1, b2, eps] = [0.9, 0.98, 1e-6];
  // Three tensors (one empty, one without a copy) with their own lr, decay and step.
  const sizes = [129, 0, 7, 1001];
  const hyper = sizes.map((_, i) => ({ lr: 1e-3 * (i + 1), decay: 1e-5 * i, step: 1 + i }));
  function tensors(dt: FloatCode, r: () => number) {
    return sizes.map((n) => ({
      n,
      p: asStored(dt, randn(n, r)),
      g: asStored(dt, randn(n, r, 0.1)),
      m: asStored(dt, randn(n, r, 0.01)),
      v: asStored(dt, randn(n, r, 0.001).map(Math.abs)),
    }));
  }
  for (const dt of FLOATS) {
    for (const clipAt of [null, 0.5, 1e9] as const) {
      it(`equals one adamw call per tensor dtype=${dt} clip=${clipAt}`, () => {
        const ts = tensors(dt, rng(21 + dt));
        const stat = dt === F64 ? F64 : F32;
        const sumsq = ts.reduce((a, t) => a + t.g.reduce((b, x) => b + x * x, 0), 0);
        const clipBuf = clipAt === null ? 0 : upload(stat, [sumsq]);
        const clipStored = clipAt === null ? 0 : download(stat, clipBuf, 1)[0]!;
        const norm = Math.sqrt(clipStored);
        const coef = clipAt !== null && norm > clipAt ? clipAt / (norm + 1e-6) : 1;
        const gs = 0.5;
        const run = (list: boolean) => {
          const bufs = ts.map((t, i) => ({
            p: upload(dt, t.p),
            g: upload(dt, t.g),
            m: upload(dt, t.m),
            v: upload(dt, t.v),
            c: i === 2 ? 0 : poisoned(F32, t.n),
          }));
          if (list) {
            const table = new Float64Array(
              bufs.flatMap((b, i) => {
                const h = hyper[i]!;
                return [b.p, b.g, b.m, b.v, b.c, ts[i]!.n, h.lr, h.decay, h.step];
              }),
            );
            cpu.adamwList(dt, dt, F32, table, b1, b2, eps, gs, clipBuf, clipAt ?? 0);
          } else {
            bufs.forEach((b, i) => {
              const h = hyper[i]!;
              cpu.adamw(
                dt,
                dt,
                b.p,
                b.g,
                b.m,
                b.v,
                ts[i]!.n,
                h.lr,
                b1,
                b2,
                eps,
                h.decay,
                h.step,
                gs * coef,
                F32,
                b.c,
              );
            });
          }
          return bufs.map((b, i) => {
            const n = ts[i]!.n;
            return [
              download(dt, b.p, n),
              download(dt, b.m, n),
              download(dt, b.v, n),
              b.c ? download(F32, b.c, n) : [],
            ];
          });
        };
        const want = run(false);
        const got = run(true);
        expect(got).toEqual(want);
        if (clipAt === 0.5) expect(coef).toBeLessThan(1);
      });
    }
  }
  it("names a bad entry and updates nothing", () => {
    const p = upload(F32, [1, 2]);
    const g = upload(F32, [1, 1]);
    const m = upload(F32, [0, 0]);
    const v = upload(F32, [0, 0]);
    const good = [p, g, m, v, 0, 2, 1e-3, 0, 1];
    const call = (rows: number[][] | Float64Array | number[]) =>
      cpu.adamwList(
        F32,
        F32,
        F32,
        (Array.isArray(rows) ? new Float64Array((rows as number[][]).flat()) : rows) as Float64Array,
        0.9,
        0.999,
        1e-8,
        1,
        0,
        0,
      );
    expect(() => call([good, [p, g, m, v, 0, 3, 1e-3, 0, 1]])).toThrow(/entry 1 param/);
    expect(() => call([good, [p, 12345, m, v, 0, 2, 1e-3, 0, 1]])).toThrow(/entry 1 grad/);
    expect(() => call([good, [p, g, m, v, 0, 2, 1e-3, 0, 0]])).toThrow(/entry 1 step must be >= 1/);
    expect(() => call([good, [p, g, m, v, 0, -1, 1e-3, 0, 1]])).toThrow(
      /entry 1 n must be a non-negative integer/,
    );
    expect(() => call(new Float64Array(10))).toThrow(/whole entries of 9 numbers, got 10/);
    expect(() =>
      cpu.adamwList(F32, F32, F32, [...good] as unknown as Float64Array, 0.9, 0.999, 1e-8, 1, 0, 0),
    ).toThrow(/must be a Float64Array/);
    expect(() => call([[p, g, m, v, 0, 2, Number.NaN, 0, 1]])).toThrow(/entry 0 field 6 must be finite/);
    expect(() =>
      cpu.adamwList(F32, F32, F32, new Float64Array(good), 0.9, 0.999, 1e-8, 1, upload(F32, [4]), 0),
    ).toThrow(/maxNorm must be > 0/);
    expect(Array.from(download(F32, p, 2))).toEqual([1, 2]);
  });
});
