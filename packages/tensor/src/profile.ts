// Per-op device time: while a profile is active, every kernel launch of the
// tensor library on `cuda` is bracketed by two events, and the elapsed times
// are summed per op name when the profile ends (one synchronize). Events add
// a few microseconds per launch, so profile a separate run from the one you
// time.
import { native } from "@mbert/kernels";

export interface OpProfile {
  /** op name -> total milliseconds and launches. */
  ops: Map<string, { ms: number; count: number }>;
  /** Sum over ops. */
  totalMs: number;
}

interface Active {
  pending: { op: string; start: number; end: number }[];
}

let active: Active | null = null;

/** Called by the op launcher around a kernel launch on `device`. */
export function profiled(op: string, device: string, fn: () => void): void {
  const cuda = native.cuda;
  if (!active || device !== "cuda" || !cuda) {
    fn();
    return;
  }
  const start = cuda.eventRecord();
  fn();
  const end = cuda.eventRecord();
  active.pending.push({ op, start, end });
}

/** Runs `fn` with per-op timing of its cuda kernels. */
export function profileOps<T>(fn: () => T): { result: T; profile: OpProfile } {
  const cuda = native.cuda;
  if (!cuda) throw new Error("profileOps: the addon was built without CUDA");
  if (active) throw new Error("profileOps: already profiling");
  active = { pending: [] };
  let result: T;
  const mine = active;
  try {
    result = fn();
  } finally {
    active = null;
  }
  const ops = new Map<string, { ms: number; count: number }>();
  let totalMs = 0;
  for (const p of mine.pending) {
    const ms = cuda.eventElapsed(p.start, p.end);
    cuda.eventDestroy(p.start);
    cuda.eventDestroy(p.end);
    const e = ops.get(p.op) ?? { ms: 0, count: 0 };
    e.ms += ms;
    e.count++;
    ops.set(p.op, e);
    totalMs += ms;
  }
  return { result: result!, profile: { ops, totalMs } };
}
