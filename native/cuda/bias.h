// bias.h — the bias-add launcher shared by bias.cu (the `addBias` kernel) and
// gemm.cu (matmul's bias when cuBLASLt has no algorithm with the bias epilogue).
#pragma once

#include <cstdint>

#include "common/dtype.h"

namespace mbert {
namespace cuda {

// out(rows, cols) += bias(cols) in place, in `dt` (float32/bf16), on the stream.
void add_bias(DType dt, void* out, const void* bias, int64_t rows, int64_t cols);

}  // namespace cuda
}  // namespace mbert
