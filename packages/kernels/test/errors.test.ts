import { describe, expect, it } from "vitest";
import { buildInfo, cpu, cudaStatus, KernelError, OutOfMemory, toKernelError } from "../src/index.js";
import { F32, I32, upload } from "./helpers.js";

describe("errors become JS exceptions and the process survives", () => {
  it("bad dtype code", () => {
    expect(() => cpu.fill(7 as 0, 0, 0, 1)).toThrow(/fill: argument 0 must be a dtype code 0..3/);
    expect(() => cpu.softmaxForward(3, 0, 0, 0, 0, false)).toThrow(
      /softmaxForward: dtype int32 is not supported/,
    );
  });
  it("out-of-range index names the position", () => {
    const idx = upload(I32, [...new Array(17).fill(0), 30600]);
    const out = cpu.alloc(18 * 4);
    const table = cpu.alloc(30528 * 4);
    expect(() => cpu.indexSelect(F32, out, table, idx, 18, 1, 30528)).toThrow(
      "indexSelect: index 30600 at position 17 is outside [0, 30528)",
    );
    const labels = upload(I32, [5]);
    expect(() => cpu.crossEntropyForward(F32, out, 0, table, labels, 1, 3, -100)).toThrow(/label 5 at row 0/);
    for (const p of [idx, out, table, labels]) cpu.free(p);
  });
  it("copy past the end of an allocation", () => {
    const a = cpu.alloc(16);
    expect(() => cpu.copy(a, 8, a, 0, 16)).toThrow(/copy: .*run past the end of a 16-byte allocation/);
    expect(() => cpu.upload(a, 0, new Float32Array(5))).toThrow(/upload/);
    expect(() => cpu.download(a, 4, new Float32Array(4))).toThrow(/download/);
    expect(() => cpu.fill(F32, a, 5, 0)).toThrow(/fill: argument 1 \(out\)/);
    cpu.free(a);
  });
  it("bad pointers, double free, bad argument counts", () => {
    expect(() => cpu.free(123456)).toThrow(/free: .* is not a live allocation/);
    const a = cpu.alloc(0);
    cpu.free(a);
    expect(() => cpu.free(a)).toThrow(/double free/);
    expect(() => cpu.fill(F32, 4096, 1, 0)).toThrow(/not inside a live cpu allocation/);
    expect(() => (cpu.fill as unknown as (...a: unknown[]) => void)(F32, 0)).toThrow(
      /fill: expected 4 arguments, got 2/,
    );
    expect(() => cpu.alloc(-1)).toThrow(/alloc/);
    expect(() => cpu.setNumThreads(0)).toThrow(/setNumThreads/);
  });
  it("error codes map to typed errors", () => {
    let thrown: unknown = null;
    try {
      cpu.free(99);
    } catch (e) {
      thrown = e;
    }
    expect(toKernelError(thrown)).toBeInstanceOf(KernelError);
    const oom = Object.assign(new Error("x"), { code: "OUT_OF_MEMORY" });
    expect(toKernelError(oom)).toBeInstanceOf(OutOfMemory);
  });
  it("cudaStatus never throws and buildInfo describes the build", () => {
    const s = cudaStatus();
    expect(typeof s.available).toBe("boolean");
    if (!s.available) expect(s.reason).toBeTruthy();
    expect(buildInfo().compiler).toMatch(/g\+\+/);
  });
});

describe("memory accounting and threads", () => {
  it("memoryStats returns to baseline after frees; peak and zero-byte allocations", () => {
    const base = cpu.memoryStats();
    const ptrs = [0, 1, 100, 4096].map((n) => cpu.alloc(n));
    expect(new Set(ptrs).size).toBe(4);
    for (const p of ptrs) expect(p % 256).toBe(0);
    const mid = cpu.memoryStats();
    expect(mid.allocated - base.allocated).toBe(4197);
    expect(mid.count - base.count).toBe(4);
    expect(mid.peak).toBeGreaterThanOrEqual(mid.allocated);
    for (const p of ptrs) cpu.free(p);
    const after = cpu.memoryStats();
    expect(after.allocated).toBe(base.allocated);
    expect(after.count).toBe(base.count);
    cpu.resetPeak();
    expect(cpu.memoryStats().peak).toBe(after.allocated);
    cpu.emptyCache();
    cpu.synchronize();
  });
  it("results do not depend on the thread count", () => {
    const n = 1 << 16;
    const x = cpu.alloc(n * 4);
    const out = cpu.alloc(4);
    cpu.randNormal(F32, x, n, 1, 0, 0, 1);
    const sums: number[] = [];
    for (const t of [1, 2, 3]) {
      cpu.setNumThreads(t);
      expect(cpu.numThreads()).toBe(t);
      cpu.sumSquares(F32, out, x, n, false);
      const o = new Float32Array(1);
      cpu.download(out, 0, o);
      sums.push(o[0]!);
    }
    cpu.setNumThreads(2);
    expect(new Set(sums).size).toBe(1);
    cpu.free(x);
    cpu.free(out);
  });
});
