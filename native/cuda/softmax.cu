// softmax.cu — softmaxForward / softmaxBackward over the last axis of
// (rows, cols), plain or log-softmax. Accumulation: `=`; fp32 row statistics
// (online max/sum in one pass, then a second pass that writes), one block per row.
//   forward:  y = softmax(x) or x - logsumexp(x)
//   backward: dx = y * (dy - sum(dy * y))  or  dx = dy - exp(y) * sum(dy)
#include "cuda/kernel_util.cuh"

namespace mbert {
namespace cuda {
namespace {

template <typename T>
__global__ void softmax_forward_kernel(T* y, const T* x, int64_t cols, bool log_softmax, bool vec) {
  __shared__ float shared[64];
  const T* xr = x + int64_t(blockIdx.x) * cols;
  T* yr = y + int64_t(blockIdx.x) * cols;
  constexpr int N = Vec<T>::N;
  float m = -INFINITY, s = 0.f;
  if (vec) {
    for (int64_t i = int64_t(threadIdx.x) * N; i < cols; i += int64_t(blockDim.x) * N) {
      const Vec<T> v = load_vec(xr + i);
#pragma unroll
      for (int k = 0; k < N; ++k) online_add(m, s, to_f<T>(v.v[k]));
    }
  } else {
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) online_add(m, s, to_f<T>(xr[i]));
  }
  block_online(m, s, shared);
  const float lse = m + logf(s), inv = 1.f / s;
  if (vec) {
    for (int64_t i = int64_t(threadIdx.x) * N; i < cols; i += int64_t(blockDim.x) * N) {
      Vec<T> v = load_vec(xr + i);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        const float f = to_f<T>(v.v[k]);
        v.v[k] = from_f<T>(log_softmax ? f - lse : __expf(f - m) * inv);
      }
      store_vec(yr + i, v);
    }
  } else {
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
      const float f = to_f<T>(xr[i]);
      yr[i] = from_f<T>(log_softmax ? f - lse : __expf(f - m) * inv);
    }
  }
}

template <typename T>
__global__ void softmax_backward_kernel(T* dx, const T* dy, const T* y, int64_t cols, bool log_softmax, bool vec) {
  __shared__ float shared[32];
  const int64_t off = int64_t(blockIdx.x) * cols;
  const T *dyr = dy + off, *yr = y + off;
  T* dxr = dx + off;
  constexpr int N = Vec<T>::N;
  float acc = 0.f;
  if (vec) {
    for (int64_t i = int64_t(threadIdx.x) * N; i < cols; i += int64_t(blockDim.x) * N) {
      const Vec<T> g = load_vec(dyr + i), v = load_vec(yr + i);
#pragma unroll
      for (int k = 0; k < N; ++k) acc += log_softmax ? to_f<T>(g.v[k]) : to_f<T>(g.v[k]) * to_f<T>(v.v[k]);
    }
  } else {
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x)
      acc += log_softmax ? to_f<T>(dyr[i]) : to_f<T>(dyr[i]) * to_f<T>(yr[i]);
  }
  const float sum = block_sum(acc, shared);
  if (vec) {
    for (int64_t i = int64_t(threadIdx.x) * N; i < cols; i += int64_t(blockDim.x) * N) {
      Vec<T> g = load_vec(dyr + i);
      const Vec<T> v = load_vec(yr + i);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        const float gf = to_f<T>(g.v[k]), yf = to_f<T>(v.v[k]);
        g.v[k] = from_f<T>(log_softmax ? gf - __expf(yf) * sum : yf * (gf - sum));
      }
      store_vec(dxr + i, g);
    }
  } else {
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
      const float gf = to_f<T>(dyr[i]), yf = to_f<T>(yr[i]);
      dxr[i] = from_f<T>(log_softmax ? gf - __expf(yf) * sum : yf * (gf - sum));
    }
  }
}

int threads_for(int64_t cols, int per_thread) {
  const int64_t t = ceil_div(ceil_div(cols, per_thread), 32) * 32;
  return int(std::min<int64_t>(1024, std::max<int64_t>(32, t)));
}

Napi::Value softmax_forward_js(const Napi::CallbackInfo& info) {
  Args a(info, "softmaxForward", 6);
  const DType dt = float_dtype(a, 0);
  const int64_t rows = a.size(3, "rows"), cols = a.size(4, "cols");
  const bool log_softmax = a.flag(5);
  void* y = dbuf(a, 1, dt, rows * cols, "y");
  const void* x = dbuf(a, 2, dt, rows * cols, "x");
  if (rows * cols == 0) return undefined(a);
  MBERT_CHECK(rows <= INT32_MAX, "cuda.softmaxForward: rows too large");
  MBERT_CUDA_DISPATCH(dt, {
    const bool vec = cols % Vec<T>::N == 0 && aligned16(x) && aligned16(y);
    softmax_forward_kernel<T><<<unsigned(rows), threads_for(cols, vec ? 2 * Vec<T>::N : 4), 0, stream()>>>(
        static_cast<T*>(y), static_cast<const T*>(x), cols, log_softmax, vec);
  });
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

Napi::Value softmax_backward_js(const Napi::CallbackInfo& info) {
  Args a(info, "softmaxBackward", 7);
  const DType dt = float_dtype(a, 0);
  const int64_t rows = a.size(4, "rows"), cols = a.size(5, "cols");
  const bool log_softmax = a.flag(6);
  const int64_t n = rows * cols;
  void* dx = dbuf(a, 1, dt, n, "dx");
  const void* dy = dbuf(a, 2, dt, n, "dy");
  const void* y = dbuf(a, 3, dt, n, "y");
  if (n == 0) return undefined(a);
  MBERT_CHECK(rows <= INT32_MAX, "cuda.softmaxBackward: rows too large");
  MBERT_CUDA_DISPATCH(dt, {
    const bool vec = cols % Vec<T>::N == 0 && aligned16(dx) && aligned16(dy) && aligned16(y);
    softmax_backward_kernel<T><<<unsigned(rows), threads_for(cols, vec ? 2 * Vec<T>::N : 4), 0, stream()>>>(
        static_cast<T*>(dx), static_cast<const T*>(dy), static_cast<const T*>(y), cols, log_softmax, vec);
  });
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

}  // namespace

MBERT_EXPORT(cuda, softmaxForward, softmax_forward_js);
MBERT_EXPORT(cuda, softmaxBackward, softmax_backward_js);

}  // namespace cuda
}  // namespace mbert
