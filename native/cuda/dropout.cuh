// dropout.cuh — the device side of the dropout mask rule (common/dropout.h) shared by
// the dropout kernels (random.cu) and the GeGLU kernels that fuse it (geglu.cu).
#pragma once

#include <cstdint>

#include "common/dropout.h"
#include "common/philox.h"
#include "cuda/kernel_util.cuh"

namespace mbert {
namespace cuda {

// Mask words of the N elements from flat index i0 (a multiple of 4 when N >= 4):
// element i uses word (i & 3) of philox(seed, offset + (i >> 2)).
template <int N>
__device__ __forceinline__ void mask_words(uint32_t (&w)[N], const DropoutMask& m, int64_t i0) {
  if constexpr (N == 1) {
    w[0] = philox4x32_10(m.seed, m.offset + uint64_t(i0 >> 2)).w[i0 & 3];
  } else {
    static_assert(N % 4 == 0, "vector masks cover whole Philox calls");
#pragma unroll
    for (int h = 0; h < N / 4; ++h) {
      const Philox4 r = philox4x32_10(m.seed, m.offset + uint64_t(i0 >> 2) + h);
#pragma unroll
      for (int k = 0; k < 4; ++k) w[h * 4 + k] = r.w[k];
    }
  }
}

// x (already in T) dropped out by its mask word: T(float(x) * scale) or 0. Forward (x)
// and backward (dy) share it.
template <typename T>
__device__ __forceinline__ T dropout_one(T x, uint32_t word, const DropoutMask& m, float scale) {
  return m.keep_word(word) ? from_f<T>(to_f<T>(x) * scale) : from_f<T>(0.f);
}

// Element x at flat index i dropped out.
template <typename T>
__device__ __forceinline__ T dropout_at(T x, const DropoutMask& m, int64_t i, float scale) {
  uint32_t w[1];
  mask_words<1>(w, m, i);
  return dropout_one(x, w[0], m, scale);
}

// The N elements of v, flat indices from i0, dropped out in place.
template <typename T, int N>
__device__ __forceinline__ void dropout_elems(T (&v)[N], const DropoutMask& m, int64_t i0, float scale) {
  uint32_t w[N];
  mask_words<N>(w, m, i0);
#pragma unroll
  for (int k = 0; k < N; ++k) v[k] = dropout_one(v[k], w[k], m, scale);
}

}  // namespace cuda
}  // namespace mbert
