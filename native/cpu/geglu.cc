// geglu.cc — gegluForward (out = gelu(x[:, :I]) * x[:, I:], exact erf GELU) and
// gegluBackward. Accumulation: `=`. float32/bfloat16 compute in float, float64 in double.
// With p > 0 the output is dropped out in the same pass, with the mask of
// dropoutForward over the (rows, I) output (common/dropout.h): out equals
// dropoutForward(gegluForward(x)) and the backward applies the mask to dy first.
#include <cmath>

#include "common/dropout.h"
#include "cpu/cpu.h"

namespace mbert {
namespace cpu {
namespace {

template <typename C> inline C gelu_cdf(C a) { return C(0.5) * (C(1) + std::erf(a * C(0.70710678118654752440))); }
template <typename C> inline C gelu_pdf(C a) { return std::exp(C(-0.5) * a * a) * C(0.39894228040143267794); }

// out: (rows, I)  x: (rows, 2I)
template <typename T>
void geglu_forward(T* out, const T* x, int64_t rows, int64_t I, const DropoutMask& mask) {
  using C = acc_t<T>;
  const C scale = mask.template scale<C>();
  parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, I)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xa = x + r * 2 * I;
      const T* xb = xa + I;
      T* o = out + r * I;
      for (int64_t c = 0; c < I; ++c) {
        C av = C(xa[c]);
        T y = T(av * gelu_cdf(av) * C(xb[c]));
        if (mask.on()) y = mask.keep(r * I + c) ? T(C(y) * scale) : T(C(0));
        o[c] = y;
      }
    }
  });
}

// dx: (rows, 2I)  dy: (rows, I)  x: (rows, 2I)
template <typename T>
void geglu_backward(T* dx, const T* dy, const T* x, int64_t rows, int64_t I, const DropoutMask& mask) {
  using C = acc_t<T>;
  const C scale = mask.template scale<C>();
  parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, I)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xa = x + r * 2 * I;
      const T* xb = xa + I;
      const T* g = dy + r * I;
      T* da = dx + r * 2 * I;
      T* db = da + I;
      for (int64_t c = 0; c < I; ++c) {
        T gt = g[c];
        if (mask.on()) gt = mask.keep(r * I + c) ? T(C(gt) * scale) : T(C(0));
        C av = C(xa[c]), bv = C(xb[c]), gv = C(gt);
        C cdf = gelu_cdf(av);
        da[c] = T(gv * bv * (cdf + av * gelu_pdf(av)));
        db[c] = T(gv * av * cdf);
      }
    }
  });
}

// gegluForward(dtype, out, x, rows, I, p, seed, offset)
Napi::Value geglu_forward_js(const Napi::CallbackInfo& info) {
  Args a(info, "gegluForward", 8);
  DType dt = a.dtype(0);
  int64_t rows = a.size(3, "rows"), I = a.size(4, "I");
  const DropoutMask mask = dropout_mask_args(a, 5);
  MBERT_CPU_DISPATCH_FLOAT("gegluForward", dt, {
    geglu_forward<T>(buf<T>(a, 1, dt, rows * I, "out"), buf<T>(a, 2, dt, rows * 2 * I, "x"), rows, I, mask);
  });
  return info.Env().Undefined();
}

// gegluBackward(dtype, dx, dy, x, rows, I, p, seed, offset)
Napi::Value geglu_backward_js(const Napi::CallbackInfo& info) {
  Args a(info, "gegluBackward", 9);
  DType dt = a.dtype(0);
  int64_t rows = a.size(4, "rows"), I = a.size(5, "I");
  const DropoutMask mask = dropout_mask_args(a, 6);
  MBERT_CPU_DISPATCH_FLOAT("gegluBackward", dt, {
    geglu_backward<T>(buf<T>(a, 1, dt, rows * 2 * I, "dx"), buf<T>(a, 2, dt, rows * I, "dy"),
                      buf<T>(a, 3, dt, rows * 2 * I, "x"), rows, I, mask);
  });
  return info.Env().Undefined();
}

}  // namespace

MBERT_EXPORT(cpu, gegluForward, geglu_forward_js);
MBERT_EXPORT(cpu, gegluBackward, geglu_backward_js);

}  // namespace cpu
}  // namespace mbert
