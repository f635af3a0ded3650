// crossentropy.cc — crossEntropyForward (loss, lse per row from logits and int32
// labels; ignoreIndex rows get loss 0) and crossEntropyBackward
// (dlogits = scale * (softmax - onehot), 0 on ignored rows). Accumulation: `=`.
// Row sums accumulate in double; loss/lse are float64 for float64, else float32.
#include <cmath>

#include "cpu/cpu.h"

namespace mbert {
namespace cpu {
namespace {

void check_labels(const char* fn, const int32_t* labels, int64_t rows, int64_t V, int64_t ignore) {
  for (int64_t r = 0; r < rows; ++r) {
    int64_t l = labels[r];
    if (l != ignore && (l < 0 || l >= V)) {
      throw Error(str(fn, ": label ", l, " at row ", r, " is outside [0, ", V, ") and is not ignoreIndex ", ignore));
    }
  }
}

// crossEntropyForward(dtype, loss, lse, logits, labels, rows, V, ignoreIndex)
// loss, lse: (rows)  logits: (rows, V)  labels: int32 (rows)
Napi::Value cross_entropy_forward_js(const Napi::CallbackInfo& info) {
  Args a(info, "crossEntropyForward", 8);
  DType dt = a.dtype(0);
  int64_t rows = a.size(5, "rows"), V = a.size(6, "V"), ignore = a.i64(7);
  DType st = dt == DType::F64 ? DType::F64 : DType::F32;
  MBERT_CHECK(V > 0 || rows == 0, "crossEntropyForward: V must be > 0");
  MBERT_CPU_DISPATCH_FLOAT("crossEntropyForward", dt, {
    using A = acc_t<T>;
    A* loss = buf<A>(a, 1, st, rows, "loss");
    A* lse = buf<A>(a, 2, st, rows, "lse", false);
    const T* logits = buf<T>(a, 3, dt, rows * V, "logits");
    const int32_t* labels = buf<int32_t>(a, 4, DType::I32, rows, "labels");
    check_labels("crossEntropyForward", labels, rows, V, ignore);
    parallel_for(rows, std::max<int64_t>(1, 4096 / V), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* x = logits + r * V;
        double m = -INFINITY;
        for (int64_t c = 0; c < V; ++c) m = std::max(m, double(x[c]));
        double s = 0;
        for (int64_t c = 0; c < V; ++c) s += std::exp(double(x[c]) - m);
        double l = m + std::log(s);
        if (lse) lse[r] = A(l);
        loss[r] = labels[r] == ignore ? A(0) : A(l - double(x[labels[r]]));
      }
    });
  });
  return info.Env().Undefined();
}

// crossEntropyBackward(dtype, dlogits, logits, lse, labels, rows, V, ignoreIndex, scale)
Napi::Value cross_entropy_backward_js(const Napi::CallbackInfo& info) {
  Args a(info, "crossEntropyBackward", 9);
  DType dt = a.dtype(0);
  int64_t rows = a.size(5, "rows"), V = a.size(6, "V"), ignore = a.i64(7);
  double scale = a.f64(8);
  DType st = dt == DType::F64 ? DType::F64 : DType::F32;
  MBERT_CPU_DISPATCH_FLOAT("crossEntropyBackward", dt, {
    using A = acc_t<T>;
    T* dl = buf<T>(a, 1, dt, rows * V, "dlogits");
    const T* logits = buf<T>(a, 2, dt, rows * V, "logits");
    const A* lse = buf<A>(a, 3, st, rows, "lse");
    const int32_t* labels = buf<int32_t>(a, 4, DType::I32, rows, "labels");
    check_labels("crossEntropyBackward", labels, rows, V, ignore);
    A sc = A(scale);
    parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, V)), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        T* d = dl + r * V;
        if (labels[r] == ignore) {
          for (int64_t c = 0; c < V; ++c) d[c] = T(A(0));
          continue;
        }
        const T* x = logits + r * V;
        A l = lse[r];
        for (int64_t c = 0; c < V; ++c) d[c] = T(sc * std::exp(A(x[c]) - l));
        d[labels[r]] = T(A(d[labels[r]]) - sc);
      }
    });
  });
  return info.Env().Undefined();
}

}  // namespace

MBERT_EXPORT(cpu, crossEntropyForward, cross_entropy_forward_js);
MBERT_EXPORT(cpu, crossEntropyBackward, cross_entropy_backward_js);

}  // namespace cpu
}  // namespace mbert
