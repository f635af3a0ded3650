// softmax.cc — softmaxForward/Backward over the last axis of (rows, cols),
// plain or log-softmax. Accumulation: `=`. Row sums accumulate in double;
// elementwise math is in float for float32/bfloat16 and double for float64.
#include <cmath>

#include "cpu/cpu.h"

namespace mbert {
namespace cpu {
namespace {

// y: (rows, cols)  x: (rows, cols)
template <typename T>
void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols, bool log_softmax) {
  using C = acc_t<T>;
  parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, cols)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * cols;
      T* yr = y + r * cols;
      C m = -INFINITY;
      for (int64_t c = 0; c < cols; ++c) m = std::max(m, C(xr[c]));
      double sum = 0;
      for (int64_t c = 0; c < cols; ++c) sum += double(std::exp(C(xr[c]) - m));
      if (log_softmax) {
        C lse = m + C(std::log(sum));
        for (int64_t c = 0; c < cols; ++c) yr[c] = T(C(xr[c]) - lse);
      } else {
        C inv = C(1.0 / sum);
        for (int64_t c = 0; c < cols; ++c) yr[c] = T(std::exp(C(xr[c]) - m) * inv);
      }
    }
  });
}

// dx: (rows, cols) from dy and the forward output y.
template <typename T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols, bool log_softmax) {
  using C = acc_t<T>;
  parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, cols)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* dyr = dy + r * cols;
      const T* yr = y + r * cols;
      T* dxr = dx + r * cols;
      double s = 0;
      if (log_softmax) {
        for (int64_t c = 0; c < cols; ++c) s += double(dyr[c]);
        C sc = C(s);
        for (int64_t c = 0; c < cols; ++c) dxr[c] = T(C(dyr[c]) - std::exp(C(yr[c])) * sc);
      } else {
        for (int64_t c = 0; c < cols; ++c) s += double(dyr[c]) * double(yr[c]);
        C sc = C(s);
        for (int64_t c = 0; c < cols; ++c) dxr[c] = T(C(yr[c]) * (C(dyr[c]) - sc));
      }
    }
  });
}

// softmaxForward(dtype, y, x, rows, cols, log)
Napi::Value softmax_forward_js(const Napi::CallbackInfo& info) {
  Args a(info, "softmaxForward", 6);
  DType dt = a.dtype(0);
  int64_t rows = a.size(3, "rows"), cols = a.size(4, "cols");
  bool log_softmax = a.flag(5);
  MBERT_CPU_DISPATCH_FLOAT("softmaxForward", dt, {
    softmax_forward<T>(buf<T>(a, 1, dt, rows * cols, "y"), buf<T>(a, 2, dt, rows * cols, "x"), rows, cols, log_softmax);
  });
  return info.Env().Undefined();
}

// softmaxBackward(dtype, dx, dy, y, rows, cols, log)
Napi::Value softmax_backward_js(const Napi::CallbackInfo& info) {
  Args a(info, "softmaxBackward", 7);
  DType dt = a.dtype(0);
  int64_t rows = a.size(4, "rows"), cols = a.size(5, "cols");
  bool log_softmax = a.flag(6);
  int64_t n = rows * cols;
  MBERT_CPU_DISPATCH_FLOAT("softmaxBackward", dt, {
    softmax_backward<T>(buf<T>(a, 1, dt, n, "dx"), buf<T>(a, 2, dt, n, "dy"), buf<T>(a, 3, dt, n, "y"), rows, cols,
                        log_softmax);
  });
  return info.Env().Undefined();
}

}  // namespace

MBERT_EXPORT(cpu, softmaxForward, softmax_forward_js);
MBERT_EXPORT(cpu, softmaxBackward, softmax_backward_js);

}  // namespace cpu
}  // namespace mbert
