// random.cc — randUniform, randNormal, dropoutForward/Backward on Philox4x32-10
// (common/philox.h): element i draws from philox(key = seed, counter = offset + i),
// so every backend produces the same stream and the same dropout mask.
// Accumulation: `=`. Dropout draws one Philox call per 4 elements: element i
// uses word (i & 3) of philox(seed, offset + (i >> 2)) and is dropped when
// u_i < p, u_i = (word >> 8) * 2^-24 (compared in float32).
#include <cmath>

#include "common/dropout.h"
#include "common/philox.h"
#include "cpu/cpu.h"

namespace mbert {
namespace cpu {
namespace {

uint64_t u64_arg(const Args& a, int i, const char* what) {
  int64_t v = a.i64(i);
  MBERT_CHECK(v >= 0, a.fn(), ": argument ", i, " (", what, ") must be a non-negative integer, got ", v);
  return static_cast<uint64_t>(v);
}

double prob_arg(const Args& a, int i) {
  double p = a.f64(i);
  MBERT_CHECK(p >= 0 && p <= 1, a.fn(), ": p must be in [0, 1], got ", p);
  return p;
}

// randUniform(dtype, out, n, seed, offset, low, high)
Napi::Value rand_uniform_js(const Napi::CallbackInfo& info) {
  Args a(info, "randUniform", 7);
  DType dt = a.dtype(0);
  int64_t n = a.size(2, "n");
  uint64_t seed = u64_arg(a, 3, "seed"), offset = u64_arg(a, 4, "offset");
  double low = a.f64(5), high = a.f64(6);
  MBERT_CPU_DISPATCH_FLOAT("randUniform", dt, {
    using C = acc_t<T>;
    T* out = buf<T>(a, 1, dt, n, "out");
    C lo_v = C(low), span = C(high) - C(low);
    parallel_for(n, 1 << 14, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        Philox4 r = philox4x32_10(seed, offset + static_cast<uint64_t>(i));
        out[i] = T(lo_v + span * C(uniform01(r.w[0])));
      }
    });
  });
  return info.Env().Undefined();
}

// randNormal(dtype, out, n, seed, offset, mean, std)
Napi::Value rand_normal_js(const Napi::CallbackInfo& info) {
  Args a(info, "randNormal", 7);
  DType dt = a.dtype(0);
  int64_t n = a.size(2, "n");
  uint64_t seed = u64_arg(a, 3, "seed"), offset = u64_arg(a, 4, "offset");
  double mean = a.f64(5), sd = a.f64(6);
  MBERT_CPU_DISPATCH_FLOAT("randNormal", dt, {
    T* out = buf<T>(a, 1, dt, n, "out");
    parallel_for(n, 1 << 12, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        Philox4 r = philox4x32_10(seed, offset + static_cast<uint64_t>(i));
        out[i] = T(acc_t<T>(mean + sd * box_muller(r.w[0], r.w[1])));
      }
    });
  });
  return info.Env().Undefined();
}

// out = x * mask / (1 - p); shared by forward (x) and backward (dy).
template <typename T>
void dropout(T* out, const T* x, int64_t n, const DropoutMask& m) {
  using C = acc_t<T>;
  const C scale = m.p < 1 ? m.template scale<C>() : C(0);
  parallel_for(n, 1 << 14, [&](int64_t lo, int64_t hi) {
    Philox4 r{};
    for (int64_t i = lo; i < hi; ++i) {
      if (i == lo || (i & 3) == 0) r = philox4x32_10(m.seed, m.offset + static_cast<uint64_t>(i >> 2));
      out[i] = m.keep_word(r.w[i & 3]) ? T(C(x[i]) * scale) : T(C(0));
    }
  });
}

// dropoutForward(dtype, out, x, n, p, seed, offset) and
// dropoutBackward(dtype, dx, dy, n, p, seed, offset): the same mask applied
// to the input or to the incoming gradient.
Napi::Value dropout_js(const Napi::CallbackInfo& info, const char* fn, const char* out, const char* in) {
  Args a(info, fn, 7);
  DType dt = a.dtype(0);
  int64_t n = a.size(3, "n");
  DropoutMask m;
  m.p = prob_arg(a, 4);
  m.pf = static_cast<float>(m.p);
  m.seed = u64_arg(a, 5, "seed");
  m.offset = u64_arg(a, 6, "offset");
  MBERT_CPU_DISPATCH_FLOAT(fn, dt, { dropout<T>(buf<T>(a, 1, dt, n, out), buf<T>(a, 2, dt, n, in), n, m); });
  return info.Env().Undefined();
}

Napi::Value dropout_forward_js(const Napi::CallbackInfo& info) {
  return dropout_js(info, "dropoutForward", "out", "x");
}

Napi::Value dropout_backward_js(const Napi::CallbackInfo& info) {
  return dropout_js(info, "dropoutBackward", "dx", "dy");
}

}  // namespace

MBERT_EXPORT(cpu, randUniform, rand_uniform_js);
MBERT_EXPORT(cpu, randNormal, rand_normal_js);
MBERT_EXPORT(cpu, dropoutForward, dropout_forward_js);
MBERT_EXPORT(cpu, dropoutBackward, dropout_backward_js);

}  // namespace cpu
}  // namespace mbert
