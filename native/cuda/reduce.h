// reduce.h — the middle-axis reduction launcher shared by reduce.cu (the
// `reduce` kernel) and bias.cu (`biasGrad` is a column sum).
#pragma once

#include <cstdint>

#include "common/dtype.h"

namespace mbert {
namespace cuda {

enum ReduceOp : int { kReduceSum = 0, kReduceMax = 1, kReduceMin = 2, kReduceSumSq = 3 };

// out(outer, inner) (op)= reduce over the middle axis of x(outer, size, inner).
// x in `dt` (float32/bf16); out in `out_dt` (float32/bf16); fp32 accumulation
// in a fixed order (deterministic). accumulate: out = combine(out, result).
// size 0 gives the identity (sum 0, max -inf, min +inf).
void reduce_middle(int op, DType dt, DType out_dt, void* out, const void* x, int64_t outer, int64_t size,
                   int64_t inner, bool accumulate);

}  // namespace cuda
}  // namespace mbert
