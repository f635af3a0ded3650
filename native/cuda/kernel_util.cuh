// kernel_util.cuh — device helpers shared by the CUDA kernel files: fp32 <->
// storage conversion (bf16 computes in fp32), 16-byte vector loads/stores,
// warp/block reductions, grid sizing, and the host-side helpers the N-API
// wrappers use (typed, range-checked buffer arguments; dtype dispatch).
// Accumulation rule everywhere: fp32 accumulators, round once on store.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "common/args.h"
#include "common/dtype.h"
#include "common/error.h"
#include "common/registry.h"
#include "cuda/runtime.h"

namespace mbert {
namespace cuda {

using bf16 = __nv_bfloat16;

// ---- conversions ----------------------------------------------------------------

template <typename T> __device__ __forceinline__ float to_f(T v);
template <> __device__ __forceinline__ float to_f<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f<bf16>(bf16 v) { return __bfloat162float(v); }
template <> __device__ __forceinline__ float to_f<int>(int v) { return static_cast<float>(v); }

template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 from_f<bf16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ int from_f<int>(float v) { return static_cast<int>(v); }

// ---- 16-byte vectors ----------------------------------------------------------------

// N = elements of T per 16 bytes (8 bf16, 4 float/int).
template <typename T> struct Vec {
  static constexpr int N = 16 / sizeof(T);
  union {
    int4 raw;
    T v[N];
  };
};

template <typename T>
__device__ __forceinline__ Vec<T> load_vec(const T* p) {
  Vec<T> r;
  r.raw = *reinterpret_cast<const int4*>(p);
  return r;
}

// Streaming load (read once, don't keep in L1).
template <typename T>
__device__ __forceinline__ Vec<T> load_vec_cs(const T* p) {
  Vec<T> r;
  r.raw = __ldcs(reinterpret_cast<const int4*>(p));
  return r;
}

template <typename T>
__device__ __forceinline__ void store_vec(T* p, const Vec<T>& v) {
  *reinterpret_cast<int4*>(p) = v.raw;
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// ---- reductions -------------------------------------------------------------------------

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float warp_min(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fminf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Block-wide sum/max; every thread gets the result. `shared` holds >= 32 floats.
// blockDim.x must be a multiple of 32. Fixed order: deterministic.
__device__ __forceinline__ float block_sum(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // shared may still be read from a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < nwarps ? shared[lane] : 0.f;
  return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < nwarps ? shared[lane] : -INFINITY;
  return warp_max(v);
}

// Online softmax state (running max m, sum s of exp(x - m)) and its merge.
__device__ __forceinline__ void online_merge(float& m, float& s, float m2, float s2) {
  const float mx = fmaxf(m, m2);
  if (mx == -INFINITY) return;  // both empty
  s = s * __expf(m - mx) + s2 * __expf(m2 - mx);
  m = mx;
}

__device__ __forceinline__ void online_add(float& m, float& s, float x) {
  if (x > m) {
    s = s * __expf(m - x) + 1.f;
    m = x;
  } else if (x != -INFINITY) {  // -inf adds nothing (and -inf - -inf would be NaN)
    s += __expf(x - m);
  }
}

// Block-wide merge of (m, s); every thread gets the result. shared: >= 64 floats.
__device__ __forceinline__ void block_online(float& m, float& s, float* shared) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
    online_merge(m, s, m2, s2);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) {
    shared[warp] = m;
    shared[32 + warp] = s;
  }
  __syncthreads();
  m = lane < nwarps ? shared[lane] : -INFINITY;
  s = lane < nwarps ? shared[32 + lane] : 0.f;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
    online_merge(m, s, m2, s2);
  }
}

// Records a bad index/label in the runtime's device error flag (first one
// wins); the host reads it through takeDeviceError.
__device__ __forceinline__ void raise_device_error(DeviceError* e, int code, long long position, long long value,
                                                   long long limit) {
  if (atomicCAS(&e->code, 0, code) == 0) {
    e->position = position;
    e->value = value;
    e->limit = limit;
  }
}

// ---- launch helpers (host) ----------------------------------------------------------------

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Grid for a grid-stride loop over `work` items with `threads` per block:
// enough blocks to fill the GPU several times, never more than needed.
inline unsigned grid_for(int64_t work, int threads, int per_sm = 8) {
  int64_t blocks = ceil_div(work, threads);
  int64_t cap = int64_t(sm_count()) * per_sm;
  if (blocks > cap) blocks = cap;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

#define MBERT_LAUNCH_CHECK() MBERT_CUDA_CHECK(cudaGetLastError())

// ---- wrapper helpers (host) -----------------------------------------------------------------

// Buffer argument i: `count` elements of `dt`, range-checked against live
// allocations. required=false accepts 0 (returns nullptr).
template <typename T = void>
T* dbuf(const Args& a, int i, DType dt, int64_t count, const char* what, bool required = true) {
  return static_cast<T*>(
      checked_ptr(a, i, static_cast<std::size_t>(count) * dtype_size(dt), what, required, check_range));
}

// float32 or bfloat16 compute dtype; float64 and int32 throw a clear error.
inline DType float_dtype(const Args& a, int i) {
  DType d = a.dtype(i);
  if (d == DType::F64) throw_f64(a.fn());
  if (d == DType::I32) {
    throw Error(str("cuda.", a.fn(), ": int32 is not supported by this kernel; use float32 or bfloat16"),
                "UNSUPPORTED_DTYPE");
  }
  return d;
}

inline Napi::Value undefined(const Args& a) { return a.env().Undefined(); }

}  // namespace cuda
}  // namespace mbert

// Instantiates BODY with T = float / bf16 (dt must already be F32 or BF16).
#define MBERT_CUDA_DISPATCH(dt, ...)                                            \
  do {                                                                          \
    if ((dt) == ::mbert::DType::BF16) {                                         \
      using T = ::mbert::cuda::bf16;                                            \
      __VA_ARGS__;                                                              \
    } else {                                                                    \
      using T = float;                                                          \
      __VA_ARGS__;                                                              \
    }                                                                           \
  } while (0)
