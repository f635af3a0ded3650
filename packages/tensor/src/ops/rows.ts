// Row gather/scatter over dim 0: indexSelect (gradient: deterministic
// scatter-add), scatterRows (pad: rows placed into zeros), embedding.
import { DTypeError, ShapeError } from "../errors.js";
import { fmt } from "../shape.js";
import { type Tensor, record } from "../tensor.js";
import type { DType } from "../dtype.js";
import { weightFor } from "../lowp.js";
import { checkInputs, code, emptyOn, launch } from "./util.js";

function checkIndex(op: string, idx: Tensor, x: Tensor): void {
  checkInputs(op, [x, idx], { sameDType: false });
  if (idx.dtype !== "int32") throw new DTypeError(`${op}: indices must be int32, got ${idx.dtype}`);
  if (idx.rank !== 1) throw new ShapeError(`${op}: indices must be 1-D, got shape ${fmt(idx.shape)}`);
}

/**
 * out(n, ...) = x[idx[i]] over dim 0. Out-of-range indices throw. With
 * `computeDType`, a float32 Parameter table is read through its low-precision
 * copy while its gradient stays in the table's dtype.
 */
export function indexSelect(x: Tensor, idx: Tensor, computeDType?: DType): Tensor {
  checkIndex("indexSelect", idx, x);
  const src = computeDType ? weightFor("indexSelect", x, computeDType, "table") : x;
  if (x.rank === 0) throw new ShapeError("indexSelect: x must have at least one dimension");
  const numRows = x.shape[0]!;
  const rowSize = x.size / Math.max(numRows, 1);
  const n = idx.shape[0]!;
  const out = emptyOn([n, ...x.shape.slice(1)], src.dtype, x);
  if (n > 0 && rowSize > 0) {
    launch("indexSelect", x, (k) => k.indexSelect(code(src), out.ptr, src.ptr, idx.ptr, n, rowSize, numRows));
  }
  record("indexSelect", out, [x, null], [idx], (g, [is]) => {
    const dx = emptyOn(x.shape, x.dtype, g);
    if (dx.size > 0) launch("indexSelect backward", g, (k) => k.fill(code(dx), dx.ptr, dx.size, 0));
    if (n > 0 && rowSize > 0) {
      launch("indexSelect backward", g, (k) =>
        k.indexAdd(code(g), code(dx), dx.ptr, g.ptr, is!.ptr, n, rowSize, numRows),
      );
    }
    return [dx, null];
  });
  return out;
}

/** out(numRows, ...) = 0 except out[idx[i]] = src[i]. Indices must be distinct. */
export function scatterRows(src: Tensor, idx: Tensor, numRows: number): Tensor {
  checkIndex("scatterRows", idx, src);
  const n = idx.shape[0]!;
  if (src.rank === 0 || src.shape[0] !== n) {
    throw new ShapeError(`scatterRows: src has shape ${fmt(src.shape)}, expected ${n} rows (one per index)`);
  }
  const rowSize = src.size / Math.max(n, 1);
  const out = emptyOn([numRows, ...src.shape.slice(1)], src.dtype, src);
  if (out.size > 0) launch("scatterRows", src, (k) => k.fill(code(out), out.ptr, out.size, 0));
  if (n > 0 && rowSize > 0) {
    launch("scatterRows", src, (k) => k.indexCopy(code(src), out.ptr, src.ptr, idx.ptr, n, rowSize, numRows));
  }
  record("scatterRows", out, [src, null], [idx], (g, [is]) => [indexSelect(g, is!), null]);
  return out;
}

/** Rows of `weight` (V, C) for token ids (any shape, int32) -> (...ids.shape, C), in `computeDType` if given. */
export function embedding(ids: Tensor, weight: Tensor, computeDType?: DType): Tensor {
  if (weight.rank !== 2) throw new ShapeError(`embedding: weight must be (V, C), got ${fmt(weight.shape)}`);
  const flat = ids.reshape([ids.size]);
  const rows = indexSelect(weight, flat, computeDType);
  flat.dispose();
  const out = rows.reshape([...ids.shape, weight.shape[1]!]);
  rows.dispose();
  return out;
}
