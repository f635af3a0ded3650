import { afterAll, describe, expect, it } from "vitest";
import { BINARY, cpu, REDUCE, UNARY } from "../src/index.js";
import {
  asStored,
  BF16,
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
  upload,
} from "./helpers.js";

afterAll(freeAll);

const gelu = (x: number) => x * 0.5 * (1 + erf(x / Math.SQRT2));
const geluGrad = (x: number) =>
  0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);

// [op, f(x), f'(x), positive-only input]
const unaryCases: [keyof typeof UNARY, (x: number) => number, (x: number) => number, boolean][] = [
  ["neg", (x) => -x, () => -1, false],
  ["exp", Math.exp, Math.exp, false],
  ["log", Math.log, (x) => 1 / x, true],
  ["tanh", Math.tanh, (x) => 1 - Math.tanh(x) ** 2, false],
  ["gelu", gelu, geluGrad, false],
  ["sqrt", Math.sqrt, (x) => 0.5 / Math.sqrt(x), true],
  ["abs", Math.abs, (x) => Math.sign(x), false],
  ["relu", (x) => Math.max(x, 0), (x) => (x > 0 ? 1 : 0), false],
  ["sigmoid", (x) => 1 / (1 + Math.exp(-x)), (x) => Math.exp(-x) / (1 + Math.exp(-x)) ** 2, false],
  ["affine", (x) => 1.5 * x - 0.25, () => 1.5, false],
  ["pow", (x) => x ** 1.5, (x) => 1.5 * x ** 0.5, true],
  ["rsqrt", (x) => 1 / Math.sqrt(x), (x) => -0.5 * x ** -1.5, true],
  ["square", (x) => x * x, (x) => 2 * x, false],
];

describe("fill / unary / unaryBackward", () => {
  for (const dt of FLOATS) {
    for (const n of [0, ...SIZES]) {
      it(`fill dtype=${dt} n=${n}`, () => {
        const out = poisoned(dt, n);
        cpu.fill(dt, out, n, 0.1);
        expect(relErr(download(dt, out, n), asStored(dt, new Array(n).fill(0.1)))).toBeLessThan(tol(dt));
      });
    }
    for (const [name, f, df, positive] of unaryCases) {
      it(`unary ${name} dtype=${dt}`, () => {
        const r = rng(UNARY[name] + 100 * dt);
        for (const n of [0, ...SIZES]) {
          const x = asStored(
            dt,
            randn(n, r, 2).map((v) => (positive ? Math.abs(v) + 0.1 : v)),
          );
          const xp = upload(dt, x);
          const y = poisoned(dt, n);
          cpu.unary(UNARY[name], dt, y, xp, n, 1.5, -0.25);
          const yv = download(dt, y, n);
          expect(relErr(yv, Array.from(x, f))).toBeLessThan(tol(dt) * 10);
          const dy = asStored(dt, randn(n, r));
          const dyp = upload(dt, dy);
          const dx = poisoned(dt, n);
          cpu.unaryBackward(UNARY[name], dt, dx, dyp, xp, y, n, 1.5, -0.25);
          const ref = Array.from(x, (v, i) => dy[i]! * df(v));
          expect(relErr(download(dt, dx, n), ref)).toBeLessThan(tol(dt) * 100);
        }
      });
    }
  }
  it("unary in place (out == x)", () => {
    const x = upload(F32, [1, 2, 3]);
    cpu.unary(UNARY.neg, F32, x, x, 3, 0, 0);
    expect(Array.from(download(F32, x, 3))).toEqual([-1, -2, -3]);
  });
});

const binaryRef: Record<keyof typeof BINARY, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  maximum: Math.max,
  minimum: Math.min,
  pow: (a, b) => Math.abs(a) ** b,
  eq: (a, b) => (a === b ? 1 : 0),
  gt: (a, b) => (a > b ? 1 : 0),
  lt: (a, b) => (a < b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
};

function contiguousStrides(shape: number[]): number[] {
  const s = new Array(shape.length).fill(0);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d]!;
  }
  return s;
}

function* indices(shape: number[]): Generator<number[]> {
  const n = shape.reduce((a, b) => a * b, 1);
  for (let flat = 0; flat < n; flat++) {
    const idx = new Array(shape.length).fill(0);
    let r = flat;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = r % shape[d]!;
      r = Math.floor(r / shape[d]!);
    }
    yield idx;
  }
}

const dot = (idx: number[], s: number[]) => idx.reduce((acc, v, d) => acc + v * s[d]!, 0);

describe("binary", () => {
  // [shape, aStrides, bStrides, aSize, bSize]
  const layouts: [number[], number[], number[], number, number][] = [
    [[129], [1], [1], 129, 129],
    [[7, 129], [129, 1], [0, 1], 7 * 129, 129],
    [[7, 1, 5], [5, 5, 1], [1, 0, 0], 35, 7],
    [[3, 4, 5], [1, 3, 12], [20, 5, 1], 60, 60],
    [[2, 0, 3], [0, 3, 1], [3, 3, 1], 0, 0],
    [[], [], [], 1, 1],
  ];
  for (const dt of FLOATS) {
    for (const op of Object.keys(BINARY) as (keyof typeof BINARY)[]) {
      it(`${op} dtype=${dt}`, () => {
        const r = rng(BINARY[op] * 7 + dt);
        for (const [shape, as, bs, na, nb] of layouts) {
          const a = asStored(dt, randn(na, r, 2));
          const b = asStored(dt, randn(nb, r, 2));
          if (op === "pow") for (let i = 0; i < na; i++) a[i] = Math.abs(a[i]!);
          if (op === "eq" && na > 0 && nb > 0) a[0] = b[0]!;
          const n = shape.reduce((x, y) => x * y, 1);
          const out = poisoned(dt, n);
          cpu.binary(BINARY[op], dt, out, upload(dt, a), upload(dt, b), shape, as, bs);
          const ref: number[] = [];
          for (const idx of indices(shape)) ref.push(binaryRef[op](a[dot(idx, as)]!, b[dot(idx, bs)]!));
          expect(relErr(download(dt, out, n), asStored(dt, ref))).toBeLessThan(tol(dt) * 10);
        }
      });
    }
  }
});

describe("stridedCopy / cast", () => {
  for (const dt of [F32, F64, I32]) {
    it(`permute + offsets dtype=${dt}`, () => {
      const r = rng(11 + dt);
      const shape = [7, 3, 129];
      const x = asStored(dt, randn(7 * 3 * 129 + 5, r, 100));
      const out = poisoned(dt, 7 * 3 * 129 + 2);
      // out[2 + idx . outStrides] = x[5 + idx . permutedStrides]
      const xs = [129, 7 * 129, 1];
      const os = contiguousStrides(shape);
      cpu.stridedCopy(dt, out, 2, os, upload(dt, x), 5, xs, shape);
      const got = download(dt, out, 7 * 3 * 129 + 2);
      const ref: number[] = [];
      for (const idx of indices(shape)) ref.push(x[5 + dot(idx, xs)]!);
      expect(Array.from(got.subarray(2))).toEqual(ref);
    });
  }
  it("expand (stride 0) and empty shapes", () => {
    const x = upload(F32, [1, 2, 3]);
    const out = poisoned(F32, 6);
    cpu.stridedCopy(F32, out, 0, [3, 1], x, 0, [0, 1], [2, 3]);
    expect(Array.from(download(F32, out, 6))).toEqual([1, 2, 3, 1, 2, 3]);
    cpu.stridedCopy(F32, out, 0, [3, 1], x, 0, [0, 1], [0, 3]);
    expect(Array.from(download(F32, out, 6))).toEqual([1, 2, 3, 1, 2, 3]);
  });
  it("casts all pairs of dtypes", () => {
    const vals = [0, 1, -2, 3.75, 1e-3, -1234.5, 65504, 2.5];
    const all = [F32, F64, BF16, I32];
    for (const from of all) {
      for (const to of all) {
        const src = from === BF16 ? poisoned(BF16, vals.length) : upload(from, vals);
        if (from === BF16) cpu.cast(BF16, src, F64, upload(F64, vals), vals.length);
        const out = poisoned(to, vals.length);
        cpu.cast(to, out, from, src, vals.length);
        const got = download(to, out, vals.length);
        for (let i = 0; i < vals.length; i++) {
          let want = vals[i]!;
          if (from === I32 || to === I32) want = Math.trunc(want);
          if (from === BF16 || to === BF16)
            expect(Math.abs(got[i]! - want)).toBeLessThanOrEqual(Math.abs(want) / 128 + 1);
          else expect(got[i]).toBe(from === F32 || to === F32 ? Math.fround(want) : want);
        }
      }
    }
  });
  it("bf16 rounds to nearest even and keeps NaN", () => {
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even -> 1.
    const src = upload(F32, [1 + 2 ** -8, 1 + 3 * 2 ** -8, Number.NaN, Number.POSITIVE_INFINITY]);
    const b = poisoned(BF16, 4);
    cpu.cast(BF16, b, F32, src, 4);
    const got = download(BF16, b, 4);
    expect(got[0]).toBe(1);
    expect(got[1]).toBe(1 + 2 ** -6);
    expect(Number.isNaN(got[2])).toBe(true);
    expect(got[3]).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("reduce / argmax / sumSquares", () => {
  for (const dt of FLOATS) {
    it(`reduce all ops dtype=${dt}`, () => {
      const r = rng(5 + dt);
      for (const [outer, size, inner] of [
        [1, 129, 1],
        [7, 7, 7],
        [3, 129, 300],
        [2, 0, 3],
        [0, 5, 5],
      ] as const) {
        const x = asStored(dt, randn(outer * size * inner, r));
        const xp = upload(dt, x);
        for (const op of Object.keys(REDUCE) as (keyof typeof REDUCE)[]) {
          const out = poisoned(dt, outer * inner);
          cpu.reduce(REDUCE[op], dt, out, xp, outer, size, inner);
          const ref: number[] = [];
          for (let o = 0; o < outer; o++) {
            for (let j = 0; j < inner; j++) {
              let acc = op === "max" ? -Infinity : op === "min" ? Infinity : 0;
              for (let s = 0; s < size; s++) {
                const v = x[(o * size + s) * inner + j]!;
                if (op === "sum") acc += v;
                else if (op === "sumsq") acc += v * v;
                else if (op === "max") acc = Math.max(acc, v);
                else acc = Math.min(acc, v);
              }
              ref.push(acc);
            }
          }
          const got = download(dt, out, outer * inner);
          if (size === 0) expect(Array.from(got)).toEqual(ref);
          else expect(relErr(got, ref)).toBeLessThan(tol(dt));
        }
        if (size > 0) {
          const am = poisoned(I32, outer * inner);
          cpu.argmax(dt, am, xp, outer, size, inner);
          const got = download(I32, am, outer * inner);
          for (let o = 0; o < outer; o++) {
            for (let j = 0; j < inner; j++) {
              let best = 0;
              for (let s = 1; s < size; s++) {
                if (x[(o * size + s) * inner + j]! > x[(o * size + best) * inner + j]!) best = s;
              }
              expect(got[o * inner + j]).toBe(best);
            }
          }
        }
      }
    });
    it(`argmax takes the first of ties dtype=${dt}`, () => {
      const out = poisoned(I32, 1);
      cpu.argmax(dt, out, upload(dt, [1, 3, 3, 2]), 1, 4, 1);
      expect(download(I32, out, 1)[0]).toBe(1);
    });
    it(`sumSquares dtype=${dt}`, () => {
      const r = rng(9 + dt);
      for (const n of [0, ...SIZES, 40000]) {
        const x = asStored(dt, randn(n, r));
        const out = poisoned(dt, 1);
        cpu.sumSquares(dt, out, upload(dt, x), n, false);
        const ref = x.reduce((a, v) => a + v * v, 0);
        expect(relErr(download(dt, out, 1), [ref])).toBeLessThan(tol(dt));
        cpu.sumSquares(dt, out, upload(dt, x), n, true);
        expect(relErr(download(dt, out, 1), [2 * ref])).toBeLessThan(tol(dt));
      }
    });
    it(`sumSquaresList equals the sum of sumSquares dtype=${dt}`, () => {
      const r = rng(19 + dt);
      const xs = [0, ...SIZES, 40000].map((n) => asStored(dt, randn(n, r)));
      const ptrs = xs.map((x) => upload(dt, x));
      const table = new Float64Array(xs.flatMap((x, i) => [ptrs[i]!, x.length]));
      const one = poisoned(dt, 1);
      xs.forEach((x, i) => {
        cpu.sumSquares(dt, one, ptrs[i]!, x.length, i > 0);
      });
      const list = poisoned(dt, 1);
      cpu.sumSquaresList(dt, list, table, false);
      const ref = xs.reduce((a, x) => a + x.reduce((b, v) => b + v * v, 0), 0);
      expect(relErr(download(dt, list, 1), [ref])).toBeLessThan(tol(dt));
      expect(relErr(download(dt, list, 1), download(dt, one, 1))).toBeLessThan(tol(dt));
      cpu.sumSquaresList(dt, list, table, true);
      expect(relErr(download(dt, list, 1), [2 * ref])).toBeLessThan(tol(dt));
      cpu.sumSquaresList(dt, list, new Float64Array(0), false);
      expect(download(dt, list, 1)[0]).toBe(0);
      expect(() => cpu.sumSquaresList(dt, list, new Float64Array([ptrs[1]!, 1e6]), false)).toThrow(
        /entry 0 x/,
      );
    });
  }
});
