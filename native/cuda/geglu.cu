// geglu.cu — gegluForward / gegluBackward, the gated GELU of MosaicBERT's MLP.
//   forward:  out(rows, I) = gelu(x[:, :I]) * x[:, I:]      x: (rows, 2I)
//   backward: dx[:, :I] = dy * x2 * gelu'(x1),  dx[:, I:] = dy * gelu(x1)
// gelu is the exact erf form (cuBLASLt's GELU epilogue is the tanh
// approximation, so this stays a kernel of its own). Accumulation: `=`, fp32
// math, one rounding on store. 16-byte vectors when I % 8 (bf16) or I % 4
// (fp32) is 0 and the pointers are aligned: a vector never crosses a row.
// With p > 0 the output is dropped out in the same pass, with the mask of
// dropoutForward over the (rows, I) output (common/dropout.h): out equals
// dropoutForward(gegluForward(x)) bit for bit, and the backward applies the
// mask to dy before the GeGLU gradient, as dropoutBackward would.
#include <type_traits>

#include "cuda/dropout.cuh"
#include "cuda/kernel_util.cuh"

namespace mbert {
namespace cuda {
namespace {

__device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752440f)); }

// DROP: dropout on (a separate instantiation keeps the plain kernel as lean as before).
template <typename T, bool VEC, bool DROP>
__global__ void geglu_forward_kernel(T* out, const T* x, int64_t rows, int64_t I, DropoutMask mask) {
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
      if constexpr (DROP) dropout_elems(o.v, mask, r * I + c, mask.scale<float>());
      store_vec(out + r * I + c, o);
    } else {
      T y = from_f<T>(gelu_f(to_f<T>(xr[c])) * to_f<T>(xr[I + c]));
      if constexpr (DROP) y = dropout_at(y, mask, r * I + c, mask.scale<float>());
      out[r * I + c] = y;
    }
  }
}

template <typename T, bool VEC, bool DROP>
__global__ void geglu_backward_kernel(T* dx, const T* dy, const T* x, int64_t rows, int64_t I, DropoutMask mask) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  constexpr int N = VEC ? Vec<T>::N : 1;
  const int64_t iv = I / N, n = rows * iv;
  for (int64_t i = tid; i < n; i += stride) {
    const int64_t r = i / iv, c = (i - r * iv) * N;
    const T* xr = x + r * 2 * I;
    T* dxr = dx + r * 2 * I;
    float a[N], b[N], g[N];
    if constexpr (VEC) {
      const Vec<T> av = load_vec_cs(xr + c), bv = load_vec_cs(xr + I + c);
      Vec<T> gv = load_vec_cs(dy + r * I + c);
      if constexpr (DROP) dropout_elems(gv.v, mask, r * I + c, mask.scale<float>());
#pragma unroll
      for (int k = 0; k < N; ++k) {
        a[k] = to_f<T>(av.v[k]);
        b[k] = to_f<T>(bv.v[k]);
        g[k] = to_f<T>(gv.v[k]);
      }
    } else {
      a[0] = to_f<T>(xr[c]);
      b[0] = to_f<T>(xr[I + c]);
      T gt = dy[r * I + c];
      if constexpr (DROP) gt = dropout_at(gt, mask, r * I + c, mask.scale<float>());
      g[0] = to_f<T>(gt);
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

// Calls f(std::bool_constant<vec>, std::bool_constant<drop>) for the kernel
// variant to launch; the dropout variants get twice the grid (Philox is
// arithmetic: more resident warps).
template <typename F>
void launch_variant(bool vec, bool drop, F&& f) {
  if (vec && drop) f(std::true_type{}, std::true_type{});
  else if (vec) f(std::true_type{}, std::false_type{});
  else if (drop) f(std::false_type{}, std::true_type{});
  else f(std::false_type{}, std::false_type{});
}

unsigned geglu_grid(int64_t work, bool drop) { return grid_for(work, 256, drop ? 16 : 8); }

Napi::Value geglu_forward_js(const Napi::CallbackInfo& info) {
  Args a(info, "gegluForward", 8);
  const DType dt = float_dtype(a, 0);
  const int64_t rows = a.size(3, "rows"), I = a.size(4, "I");
  const DropoutMask mask = dropout_mask_args(a, 5);
  void* out = dbuf(a, 1, dt, rows * I, "out");
  const void* x = dbuf(a, 2, dt, rows * 2 * I, "x");
  if (rows * I == 0) return undefined(a);
  MBERT_CUDA_DISPATCH(dt, {
    constexpr int N = Vec<T>::N;
    launch_variant(geglu_vec(I, N, {out, x}), mask.on(), [&](auto vec, auto drop) {
      constexpr bool V = decltype(vec)::value, D = decltype(drop)::value;
      geglu_forward_kernel<T, V, D><<<geglu_grid(rows * I / (V ? N : 1), D), 256, 0, stream()>>>(
          static_cast<T*>(out), static_cast<const T*>(x), rows, I, mask);
    });
  });
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

Napi::Value geglu_backward_js(const Napi::CallbackInfo& info) {
  Args a(info, "gegluBackward", 9);
  const DType dt = float_dtype(a, 0);
  const int64_t rows = a.size(4, "rows"), I = a.size(5, "I");
  const DropoutMask mask = dropout_mask_args(a, 6);
  void* dx = dbuf(a, 1, dt, rows * 2 * I, "dx");
  const void* dy = dbuf(a, 2, dt, rows * I, "dy");
  const void* x = dbuf(a, 3, dt, rows * 2 * I, "x");
  if (rows * I == 0) return undefined(a);
  MBERT_CUDA_DISPATCH(dt, {
    constexpr int N = Vec<T>::N;
    launch_variant(geglu_vec(I, N, {dx, dy, x}), mask.on(), [&](auto vec, auto drop) {
      constexpr bool V = decltype(vec)::value, D = decltype(drop)::value;
      geglu_backward_kernel<T, V, D><<<geglu_grid(rows * I / (V ? N : 1), D), 256, 0, stream()>>>(
          static_cast<T*>(dx), static_cast<const T*>(dy), static_cast<const T*>(x), rows, I, mask);
    });
  });
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

}  // namespace

MBERT_EXPORT(cuda, gegluForward, geglu_forward_js);
MBERT_EXPORT(cuda, gegluBackward, geglu_backward_js);

}  // namespace cuda
}  // namespace mbert
