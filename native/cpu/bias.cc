// bias.cc — addBias (out(rows, cols) += bias(cols), in place) and biasGrad
// (dbias(cols) in gradDtype, `=` or `+=` by accumulate, = sum over rows of dy).
// biasGrad accumulates in double in row order (deterministic).
#include <vector>

#include "cpu/cpu.h"

namespace mbert {
namespace cpu {
namespace {

// addBias(dtype, out, bias, rows, cols)
Napi::Value add_bias_js(const Napi::CallbackInfo& info) {
  Args a(info, "addBias", 5);
  DType dt = a.dtype(0);
  int64_t rows = a.size(3, "rows"), cols = a.size(4, "cols");
  MBERT_CPU_DISPATCH_FLOAT("addBias", dt, {
    using C = acc_t<T>;
    T* out = buf<T>(a, 1, dt, rows * cols, "out");
    const T* bias = buf<T>(a, 2, dt, cols, "bias");
    parallel_for(rows, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, cols)), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        T* o = out + r * cols;
        for (int64_t c = 0; c < cols; ++c) o[c] = T(C(o[c]) + C(bias[c]));
      }
    });
  });
  return info.Env().Undefined();
}

// biasGrad(dtype, gradDtype, dbias, dy, rows, cols, accumulate)
Napi::Value bias_grad_js(const Napi::CallbackInfo& info) {
  Args a(info, "biasGrad", 7);
  DType dt = a.dtype(0), gdt = a.dtype(1);
  int64_t rows = a.size(4, "rows"), cols = a.size(5, "cols");
  bool accumulate = a.flag(6);
  MBERT_CPU_DISPATCH_FLOAT("biasGrad", dt, {
    const T* dy = buf<T>(a, 3, dt, rows * cols, "dy");
    constexpr int64_t kCols = 64;
    std::vector<double> sums(static_cast<std::size_t>(cols), 0.0);
    parallel_for((cols + kCols - 1) / kCols, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t blk = lo; blk < hi; ++blk) {
        int64_t c0 = blk * kCols, c1 = std::min(cols, c0 + kCols);
        double* s = sums.data();
        for (int64_t r = 0; r < rows; ++r) {
          const T* row = dy + r * cols;
          for (int64_t c = c0; c < c1; ++c) s[c] += double(row[c]);
        }
      }
    });
    MBERT_CPU_DISPATCH_FLOAT("biasGrad", gdt, {
      T* db = buf<T>(a, 2, gdt, cols, "dbias");
      for (int64_t c = 0; c < cols; ++c) {
        double v = accumulate ? double(db[c]) + sums[c] : sums[c];
        db[c] = T(static_cast<acc_t<T>>(v));
      }
    });
  });
  return info.Env().Undefined();
}

}  // namespace

MBERT_EXPORT(cpu, addBias, add_bias_js);
MBERT_EXPORT(cpu, biasGrad, bias_grad_js);

}  // namespace cpu
}  // namespace mbert
