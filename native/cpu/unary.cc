// unary.cc — unary (y = f(x; alpha, beta)) and unaryBackward (dx = dy * f'(x)).
// Op codes: UNARY in types.ts. Accumulation: none, outputs written with `=`.
// float32/bfloat16 compute in float, float64 in double.
#include <cmath>

#include "common/unary.h"
#include "cpu/cpu.h"

namespace mbert {
namespace cpu {
namespace {

template <typename C>
inline C unary_f(int op, C x, C alpha, C beta) {
  switch (op) {
    case NEG: return -x;
    case EXP: return std::exp(x);
    case LOG: return std::log(x);
    case TANH: return std::tanh(x);
    case GELU: return x * C(0.5) * (C(1) + std::erf(x * C(0.70710678118654752440)));
    case SQRT: return std::sqrt(x);
    case ABS: return std::fabs(x);
    case RELU: return x > C(0) ? x : C(0);
    case SIGMOID: return C(1) / (C(1) + std::exp(-x));
    case AFFINE: return alpha * x + beta;
    case POW: return std::pow(x, alpha);
    case RSQRT: return C(1) / std::sqrt(x);
    case SQUARE: return x * x;
  }
  return x;
}

// dy * f'(x) given x and y = f(x).
template <typename C>
inline C unary_df(int op, C dy, C x, C y, C alpha) {
  switch (op) {
    case NEG: return -dy;
    case EXP: return dy * y;
    case LOG: return dy / x;
    case TANH: return dy * (C(1) - y * y);
    case GELU: {
      C cdf = C(0.5) * (C(1) + std::erf(x * C(0.70710678118654752440)));
      C pdf = std::exp(C(-0.5) * x * x) * C(0.39894228040143267794);
      return dy * (cdf + x * pdf);
    }
    case SQRT: return dy * C(0.5) / y;
    case ABS: return x > C(0) ? dy : x < C(0) ? -dy : C(0);
    case RELU: return x > C(0) ? dy : C(0);
    case SIGMOID: return dy * y * (C(1) - y);
    case AFFINE: return dy * alpha;
    case POW: return dy * alpha * std::pow(x, alpha - C(1));
    case RSQRT: return dy * C(-0.5) * y * y * y;
    case SQUARE: return dy * C(2) * x;
  }
  return dy;
}

constexpr int64_t kGrain = 1 << 14;

int check_op(const Args& a, int i) {
  int64_t op = a.i64(i);
  MBERT_CHECK(op >= 0 && op < UNARY_COUNT, a.fn(), ": unknown unary op code ", op, " (expected 0..", UNARY_COUNT - 1, ")");
  return static_cast<int>(op);
}

// unary(op, dtype, out, x, n, alpha, beta)
Napi::Value unary_js(const Napi::CallbackInfo& info) {
  Args a(info, "unary", 7);
  int op = check_op(a, 0);
  DType dt = a.dtype(1);
  int64_t n = a.size(4, "n");
  double alpha = a.f64(5), beta = a.f64(6);
  MBERT_CPU_DISPATCH_FLOAT("unary", dt, {
    using C = acc_t<T>;
    T* out = buf<T>(a, 2, dt, n, "out");
    const T* x = buf<T>(a, 3, dt, n, "x");
    C al = static_cast<C>(alpha), be = static_cast<C>(beta);
    parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) out[i] = T(unary_f<C>(op, C(x[i]), al, be));
    });
  });
  return info.Env().Undefined();
}

// unaryBackward(op, dtype, dx, dy, x, y, n, alpha, beta)
Napi::Value unary_backward_js(const Napi::CallbackInfo& info) {
  Args a(info, "unaryBackward", 9);
  int op = check_op(a, 0);
  DType dt = a.dtype(1);
  int64_t n = a.size(6, "n");
  double alpha = a.f64(7);
  MBERT_CPU_DISPATCH_FLOAT("unaryBackward", dt, {
    using C = acc_t<T>;
    T* dx = buf<T>(a, 2, dt, n, "dx");
    const T* dy = buf<T>(a, 3, dt, n, "dy");
    const T* x = buf<T>(a, 4, dt, n, "x", unary_needs_x(op));
    const T* y = buf<T>(a, 5, dt, n, "y", unary_needs_y(op));
    C al = static_cast<C>(alpha);
    parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        C xv = x ? C(x[i]) : C(0);
        C yv = y ? C(y[i]) : C(0);
        dx[i] = T(unary_df<C>(op, C(dy[i]), xv, yv, al));
      }
    });
  });
  return info.Env().Undefined();
}

}  // namespace

MBERT_EXPORT(cpu, unary, unary_js);
MBERT_EXPORT(cpu, unaryBackward, unary_backward_js);

}  // namespace cpu
}  // namespace mbert
