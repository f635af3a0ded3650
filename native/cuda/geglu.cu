// geglu.cu — gegluForward / gegluBackward, the gated GELU of MosaicBERT's MLP.
//   forward:  out(rows, I) = gelu(x[:, :I]) * x[:, I:]      x: (rows, 2I)
//   backward: dx[:, :I] = dy * x2 * gelu'(x1),  dx[:, I:] = dy * gelu(x1)
// gelu is the exact erf form (cuBLASLt's GELU epilogue is the tanh
// approximation, so this stays a kernel of its own). Accumulation: `=`, fp32
// math, one rounding on store. 16-byte vectors when I % 8 (bf16) or I % 4
// (fp32) is 0 and the pointers are aligned: a vector never crosses a row.
#include "cuda/kernel_util.cuh"

namespace mbert {
namespace cuda {
namespace {

__device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752440f)); }

template <typename T, bool VEC>
__global__ void geglu_forward_kernel(T* out, const T* x, int64_t rows, int64_t I) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  constexpr int N = VEC ? Vec<T>::N : 1;
  const int64_t iv = I / N, n = rows * iv;
  for (int64_t i = tid; i < n; i += stride) {
    const int64_t r = i / iv, c = (i - r * iv) * N;
    const T* xr = x + r * 2 * I;
    if constexpr (VEC) {
      const Vec<T> a = load_vec_cs(xr + c), b = load_vec_cs(xr + I + c);
      Vec<T> o;
#pragma unroll
      for (int k = 0; k < N; ++k) o.v[k] = from_f<T>(gelu_f(to_f<T>(a.v[k])) * to_f<T>(b.v[k]));
      store_vec(out + r * I + c, o);
    } else {
      out[r * I + c] = from_f<T>(gelu_f(to_f<T>(xr[c])) * to_f<T>(xr[I + c]));
    }
  }
}

template <typename T, bool VEC>
__global__ void geglu_backward_kernel(T* dx, const T* dy, const T* x, int64_t rows, int64_t I) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  constexpr int N = VEC ? Vec<T>::N : 1;
  const int64_t iv = I / N, n = rows * iv;
  for (int64_t i = tid; i < n; i += stride) {
    const int64_t r = i / iv, c = (i - r * iv) * N;
    const T* xr = x + r * 2 * I;
    T* dxr = dx + r * 2 * I;
    float a[N], b[N], g[N];
    if constexpr (VEC) {
      const Vec<T> av = load_vec_cs(xr + c), bv = load_vec_cs(xr + I + c), gv = load_vec_cs(dy + r * I + c);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        a[k] = to_f<T>(av.v[k]);
        b[k] = to_f<T>(bv.v[k]);
        g[k] = to_f<T>(gv.v[k]);
      }
    } else {
      a[0] = to_f<T>(xr[c]);
      b[0] = to_f<T>(xr[I + c]);
      g[0] = to_f<T>(dy[r * I + c]);
    }
    Vec<T> d1, d2;
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const float cdf = 0.5f * (1.f + erff(a[k] * 0.70710678118654752440f));
      const float pdf = expf(-0.5f * a[k] * a[k]) * 0.39894228040143267794f;
      d1.v[k] = from_f<T>(g[k] * b[k] * (cdf + a[k] * pdf));
      d2.v[k] = from_f<T>(g[k] * a[k] * cdf);
    }
    if constexpr (VEC) {
      store_vec(dxr + c, d1);
      store_vec(dxr + I + c, d2);
    } else {
      dxr[c] = d1.v[0];
      dxr[I + c] = d2.v[0];
    }
  }
}

bool geglu_vec(int64_t I, int n_per_vec, std::initializer_list<const void*> ptrs) {
  if (I % n_per_vec != 0) return false;
  for (const void* p : ptrs)
    if (!aligned16(p)) return false;
  return true;
}

Napi::Value geglu_forward_js(const Napi::CallbackInfo& info) {
  Args a(info, "gegluForward", 5);
  const DType dt = float_dtype(a, 0);
  const int64_t rows = a.size(3, "rows"), I = a.size(4, "I");
  void* out = dbuf(a, 1, dt, rows * I, "out");
  const void* x = dbuf(a, 2, dt, rows * 2 * I, "x");
  if (rows * I == 0) return undefined(a);
  MBERT_CUDA_DISPATCH(dt, {
    constexpr int N = Vec<T>::N;
    if (geglu_vec(I, N, {out, x}))
      geglu_forward_kernel<T, true><<<grid_for(rows * I / N, 256), 256, 0, stream()>>>(
          static_cast<T*>(out), static_cast<const T*>(x), rows, I);
    else
      geglu_forward_kernel<T, false><<<grid_for(rows * I, 256), 256, 0, stream()>>>(
          static_cast<T*>(out), static_cast<const T*>(x), rows, I);
  });
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

Napi::Value geglu_backward_js(const Napi::CallbackInfo& info) {
  Args a(info, "gegluBackward", 6);
  const DType dt = float_dtype(a, 0);
  const int64_t rows = a.size(4, "rows"), I = a.size(5, "I");
  void* dx = dbuf(a, 1, dt, rows * 2 * I, "dx");
  const void* dy = dbuf(a, 2, dt, rows * I, "dy");
  const void* x = dbuf(a, 3, dt, rows * 2 * I, "x");
  if (rows * I == 0) return undefined(a);
  MBERT_CUDA_DISPATCH(dt, {
    constexpr int N = Vec<T>::N;
    if (geglu_vec(I, N, {dx, dy, x}))
      geglu_backward_kernel<T, true><<<grid_for(rows * I / N, 256), 256, 0, stream()>>>(
          static_cast<T*>(dx), static_cast<const T*>(dy), static_cast<const T*>(x), rows, I);
    else
      geglu_backward_kernel<T, false><<<grid_for(rows * I, 256), 256, 0, stream()>>>(
          static_cast<T*>(dx), static_cast<const T*>(dy), static_cast<const T*>(x), rows, I);
  });
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

}  // namespace

MBERT_EXPORT(cuda, gegluForward, geglu_forward_js);
MBERT_EXPORT(cuda, gegluBackward, geglu_backward_js);

}  // namespace cuda
}  // namespace mbert
