// adamw.cc — one fused AdamW step (torch AdamW / Composer DecoupledAdamW via the
// caller's decayFactor). param, m, v: float32 or float64 (= dtype), updated in
// place; grad read in gradDtype and multiplied by gradScale; paramCopy, when
// given, receives the new param in copyDtype (e.g. bf16 weights). Math in dtype:
//   g = grad * gradScale;  p *= 1 - decayFactor
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^step) * m / (sqrt(v / (1 - beta2^step)) + eps)
#include <cmath>

#include "cpu/cpu.h"

namespace mbert {
namespace cpu {
namespace {

template <typename T, typename G, typename P>
void adamw(T* param, const G* grad, T* m, T* v, P* copy, int64_t n, double lr, double b1, double b2, double eps,
           double decay, double step, double gscale) {
  T bc1 = T(1.0 - std::pow(b1, step));
  T bc2 = T(1.0 - std::pow(b2, step));
  T lr_t = T(lr), b1_t = T(b1), b2_t = T(b2), eps_t = T(eps), keep = T(1.0 - decay), gs = T(gscale);
  parallel_for(n, 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      T g = T(acc_t<G>(grad[i])) * gs;
      T p = param[i] * keep;
      T mi = b1_t * m[i] + (T(1) - b1_t) * g;
      T vi = b2_t * v[i] + (T(1) - b2_t) * g * g;
      p -= lr_t / bc1 * mi / (std::sqrt(vi / bc2) + eps_t);
      m[i] = mi;
      v[i] = vi;
      param[i] = p;
      if (copy) copy[i] = P(acc_t<P>(p));
    }
  });
}

// adamw(dtype, gradDtype, param, grad, m, v, n, lr, beta1, beta2, eps, decayFactor, step, gradScale, copyDtype, paramCopy)
Napi::Value adamw_js(const Napi::CallbackInfo& info) {
  Args a(info, "adamw", 16);
  DType dt = a.dtype(0), gdt = a.dtype(1), cdt = a.dtype(14);
  int64_t n = a.size(6, "n");
  double lr = a.f64(7), b1 = a.f64(8), b2 = a.f64(9), eps = a.f64(10), decay = a.f64(11), step = a.f64(12);
  double gscale = a.f64(13);
  MBERT_CHECK(step >= 1, "adamw: step must be >= 1 (1 on the first update), got ", step);
  MBERT_CHECK(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1, "adamw: beta1 and beta2 must be in [0, 1), got ", b1, ", ", b2);
  MBERT_CPU_DISPATCH_F32_F64("adamw", dt, {
    using PT = T;
    PT* param = buf<PT>(a, 2, dt, n, "param");
    PT* m = buf<PT>(a, 4, dt, n, "m");
    PT* v = buf<PT>(a, 5, dt, n, "v");
    MBERT_CPU_DISPATCH_FLOAT("adamw", gdt, {
      using GT = T;
      const GT* grad = buf<GT>(a, 3, gdt, n, "grad");
      MBERT_CPU_DISPATCH_FLOAT("adamw", cdt, {
        T* copy = buf<T>(a, 15, cdt, n, "paramCopy", false);
        adamw<PT, GT, T>(param, grad, m, v, copy, n, lr, b1, b2, eps, decay, step, gscale);
      });
    });
  });
  return info.Env().Undefined();
}

}  // namespace

MBERT_EXPORT(cpu, adamw, adamw_js);

}  // namespace cpu
}  // namespace mbert
