// random.cu — randUniform, randNormal, dropoutForward/Backward on Philox4x32-10
// (common/philox.h, the same streams as the CPU backend): element i draws from
// philox(key = seed, counter = offset + i). Accumulation: `=`.
//   uniform: low + (high - low) * u, u = (word0 >> 8) * 2^-24
//   normal:  mean + std * Box-Muller(word0, word1), computed in double as on the CPU
//   dropout: one Philox call feeds 4 elements: element i uses word (i & 3) of
//            philox(seed, offset + (i >> 2)) and is dropped when
//            ((word >> 8) * 2^-24) < float(p); kept ones are scaled by 1/(1-p).
//            The mask is bit-identical to the CPU rule; backward redraws it.
#include "common/philox.h"
#include "cuda/dropout.cuh"
#include "cuda/kernel_util.cuh"

namespace mbert {
namespace cuda {
namespace {

template <typename T>
__global__ void rand_uniform_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, float low, float span) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const Philox4 r = philox4x32_10(seed, offset + uint64_t(i));
    out[i] = from_f<T>(low + span * uniform01(r.w[0]));
  }
}

template <typename T>
__global__ void rand_normal_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double sd) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const Philox4 r = philox4x32_10(seed, offset + uint64_t(i));
    out[i] = from_f<T>(float(mean + sd * box_muller(r.w[0], r.w[1])));
  }
}

// Any alignment: thread per group of 4 elements (one Philox call), scalar accesses.
template <typename T>
__global__ void dropout_kernel(T* out, const T* x, int64_t n, DropoutMask m, float scale) {
  const int64_t groups = (n + 3) / 4;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < groups; g += int64_t(gridDim.x) * blockDim.x) {
    const Philox4 r = philox4x32_10(m.seed, m.offset + uint64_t(g));
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int64_t i = g * 4 + k;
      if (i < n) out[i] = dropout_one(x[i], r.w[k], m, scale);
    }
  }
}

// 16-byte aligned out and x: thread per 16-byte vector, N = 8 (bf16, two
// Philox calls) or 4 (fp32, one call) elements; the ragged tail is scalar.
template <typename T>
__global__ void dropout_vec_kernel(T* out, const T* x, int64_t n, DropoutMask m, float scale) {
  constexpr int N = Vec<T>::N;
  const int64_t nv = (n + N - 1) / N;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < nv; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i0 = t * N;
    uint32_t w[N];
    mask_words<N>(w, m, i0);
    if (i0 + N <= n) {
      const Vec<T> xv = load_vec_cs(x + i0);
      Vec<T> o;
#pragma unroll
      for (int k = 0; k < N; ++k) o.v[k] = dropout_one(xv.v[k], w[k], m, scale);
      store_vec(out + i0, o);
    } else {
#pragma unroll
      for (int k = 0; k < N; ++k)
        if (i0 + k < n) out[i0 + k] = dropout_one(x[i0 + k], w[k], m, scale);
    }
  }
}

uint64_t u64_arg(const Args& a, int i, const char* what) {
  const int64_t v = a.i64(i);
  MBERT_CHECK(v >= 0, "cuda.", a.fn(), ": argument ", i, " (", what, ") must be a non-negative integer, got ", v);
  return uint64_t(v);
}

double prob_arg(const Args& a, int i) {
  const double p = a.f64(i);
  MBERT_CHECK(p >= 0 && p <= 1, "cuda.", a.fn(), ": p must be in [0, 1], got ", p);
  return p;
}

// Philox is arithmetic-heavy: more blocks than the memory-bound kernels.
unsigned rng_grid(int64_t n) { return grid_for(n, 256, 16); }

Napi::Value rand_uniform_js(const Napi::CallbackInfo& info) {
  Args a(info, "randUniform", 7);
  const DType dt = float_dtype(a, 0);
  const int64_t n = a.size(2, "n");
  const uint64_t seed = u64_arg(a, 3, "seed"), offset = u64_arg(a, 4, "offset");
  const double low = a.f64(5), high = a.f64(6);
  void* out = dbuf(a, 1, dt, n, "out");
  if (n == 0) return undefined(a);
  const float lo = float(low), span = float(high) - float(low);
  MBERT_CUDA_DISPATCH(dt, rand_uniform_kernel<T><<<rng_grid(n), 256, 0, stream()>>>(static_cast<T*>(out), n, seed,
                                                                                    offset, lo, span));
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

Napi::Value rand_normal_js(const Napi::CallbackInfo& info) {
  Args a(info, "randNormal", 7);
  const DType dt = float_dtype(a, 0);
  const int64_t n = a.size(2, "n");
  const uint64_t seed = u64_arg(a, 3, "seed"), offset = u64_arg(a, 4, "offset");
  const double mean = a.f64(5), sd = a.f64(6);
  void* out = dbuf(a, 1, dt, n, "out");
  if (n == 0) return undefined(a);
  MBERT_CUDA_DISPATCH(dt, rand_normal_kernel<T><<<rng_grid(n), 256, 0, stream()>>>(static_cast<T*>(out), n, seed,
                                                                                  offset, mean, sd));
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

Napi::Value dropout_js(const Napi::CallbackInfo& info, const char* name) {
  Args a(info, name, 7);
  const DType dt = float_dtype(a, 0);
  const int64_t n = a.size(3, "n");
  DropoutMask m;
  m.p = prob_arg(a, 4);
  m.pf = float(m.p);
  m.seed = u64_arg(a, 5, "seed");
  m.offset = u64_arg(a, 6, "offset");
  void* out = dbuf(a, 1, dt, n, "out");
  const void* x = dbuf(a, 2, dt, n, "x");
  if (n == 0) return undefined(a);
  const float scale = m.p < 1 ? m.scale<float>() : 0.f;
  MBERT_CUDA_DISPATCH(dt, {
    T* o = static_cast<T*>(out);
    const T* xi = static_cast<const T*>(x);
    if (aligned16(o) && aligned16(xi))
      dropout_vec_kernel<T><<<rng_grid(ceil_div(n, Vec<T>::N)), 256, 0, stream()>>>(o, xi, n, m, scale);
    else
      dropout_kernel<T><<<rng_grid(ceil_div(n, 4)), 256, 0, stream()>>>(o, xi, n, m, scale);
  });
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

Napi::Value dropout_forward_js(const Napi::CallbackInfo& info) { return dropout_js(info, "dropoutForward"); }
Napi::Value dropout_backward_js(const Napi::CallbackInfo& info) { return dropout_js(info, "dropoutBackward"); }

}  // namespace

MBERT_EXPORT(cuda, randUniform, rand_uniform_js);
MBERT_EXPORT(cuda, randNormal, rand_normal_js);
MBERT_EXPORT(cuda, dropoutForward, dropout_forward_js);
MBERT_EXPORT(cuda, dropoutBackward, dropout_backward_js);

}  // namespace cuda
}  // namespace mbert
