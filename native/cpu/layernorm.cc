// layernorm.cc — layernormForward (with fused residual add, and optionally the
// dropout of x before it: h = dropout(x) + residual, with the dropout mask rule
// of common/dropout.h and dropoutForward's rounding) and layernormBackward
// (optionally also x's gradient through that dropout).
// Accumulation: out, residualOut, mean, rstd, dx written `=`; dweight and dbias
// `=` or `+=` by `accumulate`. Row statistics and parameter-gradient sums
// accumulate in double, the latter over fixed blocks of rows (deterministic).
// Stat buffers (mean, rstd) are float64 for float64 and float32 otherwise.
#include <cmath>
#include <vector>

#include "common/dropout.h"
#include "cpu/cpu.h"

namespace mbert {
namespace cpu {
namespace {

// out: (rows, C)  x, residual, residualOut: (rows, C)  mean, rstd: (rows)  weight, bias: (C)
template <typename T>
void layernorm_forward(T* out, acc_t<T>* mean, acc_t<T>* rstd, const T* x, const T* residual, T* residual_out,
                       const T* weight, const T* bias, int64_t rows, int64_t C, double eps, const DropoutMask& m) {
  using A = acc_t<T>;
  const A scale = m.on() ? m.template scale<A>() : A(1);
  // x dropped out as dropoutForward stores it (rounded to T); one Philox call per
  // 4 elements, carried along the row in `word`.
  auto xin = [&](const T* xr, int64_t r, int64_t c, Philox4& word) -> T {
    if (!m.on()) return xr[c];
    const int64_t i = r * C + c;
    if (c == 0 || (i & 3) == 0) word = philox4x32_10(m.seed, m.offset + static_cast<uint64_t>(i >> 2));
    return m.keep_word(word.w[i & 3]) ? T(A(xr[c]) * scale) : T(A(0));
  };
  parallel_for(rows, std::max<int64_t>(1, 2048 / std::max<int64_t>(1, C)), [&](int64_t lo, int64_t hi) {
    std::vector<A> h(static_cast<std::size_t>(C));
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * C;
      Philox4 word{};
      for (int64_t c = 0; c < C; ++c) {
        const T xv = xin(xr, r, c, word);
        h[c] = residual ? A(T(A(xv) + A(residual[r * C + c]))) : A(xv);
      }
      if (residual && residual_out) {
        for (int64_t c = 0; c < C; ++c) residual_out[r * C + c] = T(h[c]);
      }
      double s = 0;
      for (int64_t c = 0; c < C; ++c) s += double(h[c]);
      double mu = C > 0 ? s / double(C) : 0.0;
      double v = 0;
      for (int64_t c = 0; c < C; ++c) { double d = double(h[c]) - mu; v += d * d; }
      double rs = 1.0 / std::sqrt((C > 0 ? v / double(C) : 0.0) + eps);
      if (mean) mean[r] = A(mu);
      if (rstd) rstd[r] = A(rs);
      A m = A(mu), rsa = A(rs);
      T* o = out + r * C;
      for (int64_t c = 0; c < C; ++c) {
        A n = (h[c] - m) * rsa;
        A w = weight ? A(weight[c]) : A(1);
        A b = bias ? A(bias[c]) : A(0);
        o[c] = T(n * w + b);
      }
    }
  });
}

// dx: (rows, C)  dweight, dbias: (C) in G  dy, x (= h): (rows, C)  mean, rstd: (rows)  weight: (C)
template <typename T, typename G>
void layernorm_backward(T* dx, G* dweight, G* dbias, const T* dy, const T* x, const acc_t<T>* mean,
                        const acc_t<T>* rstd, const T* weight, int64_t rows, int64_t C, bool accumulate) {
  using A = acc_t<T>;
  constexpr int64_t kRowBlock = 32;
  int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
  bool params = dweight || dbias;
  std::vector<double> pw(params ? static_cast<std::size_t>(blocks * C) : 0, 0.0);
  std::vector<double> pb(params ? static_cast<std::size_t>(blocks * C) : 0, 0.0);
  parallel_for(blocks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<A> g(static_cast<std::size_t>(C));
    for (int64_t blk = lo; blk < hi; ++blk) {
      double* sw = params ? pw.data() + blk * C : nullptr;
      double* sb = params ? pb.data() + blk * C : nullptr;
      int64_t r1 = std::min(rows, (blk + 1) * kRowBlock);
      for (int64_t r = blk * kRowBlock; r < r1; ++r) {
        const T* dyr = dy + r * C;
        const T* xr = x + r * C;
        A m = mean[r], rs = rstd[r];
        double mg = 0, mgx = 0;
        for (int64_t c = 0; c < C; ++c) {
          A xhat = (A(xr[c]) - m) * rs;
          A w = weight ? A(weight[c]) : A(1);
          g[c] = A(dyr[c]) * w;
          mg += double(g[c]);
          mgx += double(g[c]) * double(xhat);
          if (params) {
            sw[c] += double(dyr[c]) * double(xhat);
            sb[c] += double(dyr[c]);
          }
        }
        A mga = A(C > 0 ? mg / double(C) : 0.0), mgxa = A(C > 0 ? mgx / double(C) : 0.0);
        T* dxr = dx + r * C;
        for (int64_t c = 0; c < C; ++c) {
          A xhat = (A(xr[c]) - m) * rs;
          dxr[c] = T(rs * (g[c] - mga - xhat * mgxa));
        }
      }
    }
  });
  if (!params) return;
  for (int64_t c = 0; c < C; ++c) {
    double w = 0, b = 0;
    for (int64_t blk = 0; blk < blocks; ++blk) {
      w += pw[blk * C + c];
      b += pb[blk * C + c];
    }
    using GA = acc_t<G>;
    if (dweight) dweight[c] = G(GA(accumulate ? double(dweight[c]) + w : w));
    if (dbias) dbias[c] = G(GA(accumulate ? double(dbias[c]) + b : b));
  }
}

// layernormForward(dtype, out, mean, rstd, x, residual, residualOut, weight, bias, rows, C, eps,
//                  dropoutP, dropoutSeed, dropoutOffset)
Napi::Value layernorm_forward_js(const Napi::CallbackInfo& info) {
  Args a(info, "layernormForward", 15);
  DType dt = a.dtype(0);
  int64_t rows = a.size(9, "rows"), C = a.size(10, "C");
  double eps = a.f64(11);
  MBERT_CHECK(eps >= 0, "layernormForward: eps must be >= 0, got ", eps);
  const DropoutMask m = dropout_mask_args(a, 12);
  DType st = dt == DType::F64 ? DType::F64 : DType::F32;
  int64_t n = rows * C;
  MBERT_CPU_DISPATCH_FLOAT("layernormForward", dt, {
    using A = acc_t<T>;
    T* residual_out = buf<T>(a, 6, dt, n, "residualOut", false);
    MBERT_CHECK(!m.on() || (a.ptr(5) && residual_out), "layernormForward: dropout needs residual and residualOut ",
                "(h = dropout(x) + residual is what backward reads)");
    layernorm_forward<T>(buf<T>(a, 1, dt, n, "out"), buf<A>(a, 2, st, rows, "mean", false),
                         buf<A>(a, 3, st, rows, "rstd", false), buf<T>(a, 4, dt, n, "x"),
                         buf<T>(a, 5, dt, n, "residual", false), residual_out, buf<T>(a, 7, dt, C, "weight", false),
                         buf<T>(a, 8, dt, C, "bias", false), rows, C, eps, m);
  });
  return info.Env().Undefined();
}

// layernormBackward(dtype, gradDtype, dx, dweight, dbias, dy, x, mean, rstd, weight, rows, C, accumulate,
//                   dxDropout, dropoutP, dropoutSeed, dropoutOffset)
// With dropoutP > 0, dxDropout also receives dx through x's dropout mask (h = dropout(x) +
// residual), exactly as dropoutBackward(dx) would write it.
Napi::Value layernorm_backward_js(const Napi::CallbackInfo& info) {
  Args a(info, "layernormBackward", 17);
  DType dt = a.dtype(0), gdt = a.dtype(1);
  int64_t rows = a.size(10, "rows"), C = a.size(11, "C");
  bool accumulate = a.flag(12);
  const DropoutMask m = dropout_mask_args(a, 14);
  DType st = dt == DType::F64 ? DType::F64 : DType::F32;
  int64_t n = rows * C;
  MBERT_CPU_DISPATCH_FLOAT("layernormBackward", dt, {
    using A = acc_t<T>;
    T* dx = buf<T>(a, 2, dt, n, "dx");
    const T* dy = buf<T>(a, 5, dt, n, "dy");
    const T* x = buf<T>(a, 6, dt, n, "x");
    const A* mean = buf<A>(a, 7, st, rows, "mean");
    const A* rstd = buf<A>(a, 8, st, rows, "rstd");
    const T* weight = buf<T>(a, 9, dt, C, "weight", false);
    T* dx_drop = m.on() ? buf<T>(a, 13, dt, n, "dxDropout") : nullptr;
    using TT = T;
    MBERT_CPU_DISPATCH_FLOAT("layernormBackward", gdt, {
      layernorm_backward<TT, T>(dx, buf<T>(a, 3, gdt, C, "dweight", false), buf<T>(a, 4, gdt, C, "dbias", false), dy,
                                x, mean, rstd, weight, rows, C, accumulate);
    });
    if (dx_drop) {
      const A scale = m.template scale<A>();
      parallel_for(n, 1 << 14, [&](int64_t lo, int64_t hi) {
        Philox4 r{};
        for (int64_t i = lo; i < hi; ++i) {
          if (i == lo || (i & 3) == 0) r = philox4x32_10(m.seed, m.offset + static_cast<uint64_t>(i >> 2));
          dx_drop[i] = m.keep_word(r.w[i & 3]) ? T(A(dx[i]) * scale) : T(A(0));
        }
      });
    }
  });
  return info.Env().Undefined();
}

}  // namespace

MBERT_EXPORT(cpu, layernormForward, layernorm_forward_js);
MBERT_EXPORT(cpu, layernormBackward, layernorm_backward_js);

}  // namespace cpu
}  // namespace mbert
