// attention.cuh — PTX helpers for the fused attention kernels (attention.cu):
// mma.sync m16n8k16 bf16 -> fp32, ldmatrix (plain and transposed), cp.async, exp2, quad
// reductions and the row log-sum-exp, and the mma.sync backward's query-statistics load.
// All of them exist on sm_80 and later, so one code path serves the sm_90a
// build and the compute_80 PTX fallback.
#pragma once

#include <cuda_bf16.h>
#include <cmath>
#include <cstdint>

namespace mbert {
namespace attn {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i.
// volatile: the loads must stay on their side of __syncthreads().
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// c(16x8, fp32) += a(16x16 bf16, row) * b(16x8 bf16, col).
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 16-byte global -> shared copy; valid == false writes 16 zero bytes instead.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  int src_size = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem),
               "r"(src_size));
}

// 4-byte global -> shared copy; valid == false writes 4 zero bytes instead.
__device__ __forceinline__ void cp_async4(void* smem, const void* gmem, bool valid) {
  int src_size = valid ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem), "r"(src_size));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Where one (sequence b, head h) of a varlen call lives: q/k/v rows `stride` elements
// apart, dout/out/dq-scratch rows rowLen = NH*HS apart, statistics (lse, D) as (NH, T).
struct SeqHead {
  int start, len;
  int64_t headOff, rowLen;
  __device__ __forceinline__ SeqHead(const int* cuSeqlens, int b, int h, int NH, int HS)
      : start(cuSeqlens[b]),
        len(cuSeqlens[b + 1] - cuSeqlens[b]),
        headOff(static_cast<int64_t>(h) * HS),
        rowLen(static_cast<int64_t>(NH) * HS) {}
  // This sequence's first row, at this head, of a buffer with rows `stride` elements apart.
  template <typename P>
  __device__ __forceinline__ P* rows(P* base, int64_t stride) const {
    return base + static_cast<int64_t>(start) * stride + headOff;
  }
  // This sequence's part of head h's row of an (NH, T) statistics buffer.
  template <typename P>
  __device__ __forceinline__ P* stats(P* base, int h, int T) const {
    return base + static_cast<int64_t>(h) * T + start;
  }
};

// Row statistics of query rows [q1, q1 + BR) of a sequence of `len` tokens, for the
// backward kernels: stat[0, BR) = lse * log2(e) (+inf past the end, so P = 0 there),
// stat[BR, 2 BR) = D (0 past the end). Plain stores, visible after a barrier.
template <int BR>
__device__ __forceinline__ void load_query_stats(float* stat, const float* lse, const float* D, int q1, int len,
                                                 int tid, int nthreads) {
  for (int i = tid; i < 2 * BR; i += nthreads) {
    const int c = q1 + (i % BR);
    if (i < BR) {
      stat[i] = c < len ? lse[c] * 1.4426950408889634f : INFINITY;
    } else {
      stat[i] = c < len ? D[c] : 0.f;
    }
  }
}

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Sum / max over the four lanes of a quad: the owners of one accumulator row.
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

// ln(sum exp(score)) of a row from its running max m2 (log2 domain) and sum of
// exp2(score - m2); +inf for a row whose keys are all masked (sum 0).
__device__ __forceinline__ float row_lse(float m2, float sum) {
  return sum > 0.f ? (m2 + log2f(sum)) * kLn2 : INFINITY;
}

// 2^x on the special-function unit (subnormal results flush to zero; -inf gives 0).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

}  // namespace attn
}  // namespace mbert
