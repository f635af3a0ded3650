// adamw.cc — one fused AdamW step (torch AdamW / Composer DecoupledAdamW via the
// caller's decayFactor). param, m, v: float32 or float64 (= dtype), updated in
// place; grad read in gradDtype and multiplied by gradScale; paramCopy, when
// given, receives the new param in copyDtype (e.g. bf16 weights). Math in dtype:
//   g = grad * gradScale;  p *= 1 - decayFactor
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^step) * m / (sqrt(v / (1 - beta2^step)) + eps)
// adamwList runs the same step over a table of tensors, with the gradient scale
// optionally multiplied by the clipping coefficient of a global norm held in a
// buffer (sqrt of a sum of squares from sumSquaresList).
#include <cmath>
#include <vector>

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

// maxNorm / (norm + 1e-6) when norm = sqrt(sumsq) is finite and above maxNorm, else 1.
double clip_coef(double sumsq, double maxNorm) {
  const double norm = std::sqrt(sumsq);
  return std::isfinite(norm) && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1.0;
}

// adamwList(dtype, gradDtype, copyDtype, table, beta1, beta2, eps, gradScale, clipSumSquares, maxNorm)
//   table: Float64Array of 9 numbers per tensor: param, grad, m, v, paramCopy (0: none), n,
//   lr, decayFactor, step. clipSumSquares: (1) in the stat dtype (float64 for float64
//   params, else float32), or 0 for no clipping.
Napi::Value adamw_list_js(const Napi::CallbackInfo& info) {
  Args a(info, "adamwList", 10);
  DType dt = a.dtype(0), gdt = a.dtype(1), cdt = a.dtype(2);
  constexpr int kWidth = 9;
  const std::vector<double> tab = a.table(3, kWidth, "table");
  const double b1 = a.f64(4), b2 = a.f64(5), eps = a.f64(6), gradScale = a.f64(7), maxNorm = a.f64(9);
  MBERT_CHECK(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1, "adamwList: beta1 and beta2 must be in [0, 1), got ", b1, ", ",
              b2);
  MBERT_CPU_DISPATCH_F32_F64("adamwList", dt, {
    using PT = T;
    const PT* clip = buf<PT>(a, 8, dt, 1, "clipSumSquares", false);
    MBERT_CHECK(!clip || maxNorm > 0, "adamwList: maxNorm must be > 0 when clipping, got ", maxNorm);
    MBERT_CPU_DISPATCH_FLOAT("adamwList", gdt, {
      using GT = T;
      MBERT_CPU_DISPATCH_FLOAT("adamwList", cdt, {
        using CT = T;
        struct Entry {
          PT *param, *m, *v;
          const GT* grad;
          CT* copy;
          int64_t n;
          double lr, decay, step;
        };
        std::vector<Entry> entries;  // every entry is checked before any is updated
        for (std::size_t e = 0; e < tab.size() / kWidth; ++e) {
          const TableRow row(a, 3, tab, kWidth, e);
          const int64_t n = row.size(5, "n");
          MBERT_CHECK(row.num(8) >= 1, "adamwList: argument 3 ", row.name("step"), " must be >= 1, got ", row.num(8));
          auto ptr = [&](int k, DType d, const char* what, bool required) {
            return checked_row_ptr(a, 3, row, k, static_cast<std::size_t>(n) * dtype_size(d), what, required,
                                   check_range);
          };
          entries.push_back(Entry{static_cast<PT*>(ptr(0, dt, "param", true)), static_cast<PT*>(ptr(2, dt, "m", true)),
                                  static_cast<PT*>(ptr(3, dt, "v", true)),
                                  static_cast<const GT*>(ptr(1, gdt, "grad", true)),
                                  static_cast<CT*>(ptr(4, cdt, "paramCopy", false)), n, row.num(6), row.num(7),
                                  row.num(8)});
        }
        const double gscale = gradScale * (clip ? clip_coef(double(*clip), maxNorm) : 1.0);
        for (const Entry& E : entries) {
          adamw<PT, GT, CT>(E.param, E.grad, E.m, E.v, E.copy, E.n, E.lr, b1, b2, eps, E.decay, E.step, gscale);
        }
      });
    });
  });
  return info.Env().Undefined();
}

}  // namespace

MBERT_EXPORT(cpu, adamw, adamw_js);
MBERT_EXPORT(cpu, adamwList, adamw_list_js);

}  // namespace cpu
}  // namespace mbert
