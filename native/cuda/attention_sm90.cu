// attention_sm90.cu — fused varlen ALiBi attention for head size 64 on Hopper warpgroup
// MMA (wgmma.mma_async, bf16 operands from 128-byte-swizzled shared memory or registers,
// fp32 accumulation). Same math, inputs and outputs as the mma.sync kernels in
// attention.cu (see the comment there); scores and probabilities never leave the
// registers of the warpgroup that computes them.
//
//   forward, maxSeqlen > 128   one CTA per 128 queries: a producer warpgroup streams
//             128-key K/V tiles through a three-stage cp.async pipeline on mbarriers
//             (24 registers, setmaxnreg), two consumer warpgroups of 64 queries (240
//             registers) issue S_j = Q K_j^T together with P_{j-1} V_{j-1} and take turns
//             at the tensor cores (ping-pong), so each one's softmax overlaps MMAs. Tiles
//             wholly left or right of a warpgroup's queries carry the ALiBi term as one
//             FMA per score.
//   backward, maxSeqlen > 128   one CTA per 128 keys: a producer warpgroup streams
//             64-query tiles (Q, dO, lse * log2e, D) through a three-stage mbarrier
//             pipeline; two consumer warpgroups of 64 keys each: S^T = K Q^T and
//             dP^T = V dO^T from shared memory; dV += P^T dO and dK += dS^T Q with P^T,
//             dS^T as register operands; dQ = dS K from a transposed dS^T tile in shared
//             memory. S^T of the next query tile is issued with this tile's dK and dQ
//             MMAs, so the next P^T is computed while they run. Each warpgroup's dQ
//             covers its own 64 keys; for a sequence of at most 128 keys the two halves
//             are added through shared memory and stored as bf16 (deterministic), longer
//             sequences add them to the fp32 scratch with atomics.
//   backward, maxSeqlen <= 128   one warpgroup per (sequence, head), everything resident
//             in shared memory (see attention_backward_short_sm90_kernel).
// The forward of batches with no sequence over 128 tokens stays on the mma.sync kernel of
// attention.cu: there one 128-query CTA per (sequence, head) has a single key tile and
// nothing to pipeline, and the mma.sync kernel at four CTAs per SM measured faster.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>

#include <algorithm>

#include "cuda/attention.cuh"
#include "cuda/attention_sm90.h"
#include "cuda/kernel_util.cuh"
#include "cuda/wgmma.cuh"

namespace mbert {
namespace {

using bf16 = __nv_bfloat16;
using attn::cp_async16;
using attn::cp_async_commit;
using attn::cp_async_wait;
using attn::fast_exp2;
using attn::kLog2e;
using attn::quad_max;
using attn::quad_sum;
using attn::row_lse;
using attn::pack_bf16;
using attn::SeqHead;
using attn::smem_addr;

constexpr int kHS = 64;
constexpr int kTile = kHS * 2 * 64;  // bytes of a 64-row swizzled tile (8 KiB)
constexpr int kBwdBC = 128, kBwdBR = 64;  // key and query tile rows of the backward

// Reports which image is loaded: 1 from the sm_90a code, 0 from a JIT of the PTX.
__global__ void sm90_probe_kernel(int* flag) { *flag = MBERT_WGMMA; }

// The device helpers exist only in the sm_90a pass (MBERT_WGMMA); elsewhere the kernels
// below have empty bodies.
#if MBERT_WGMMA

// Rows [row0, row0 + ROWS) of one head (64 bf16 each, `stride` elements apart) into a
// 128-byte-swizzled tile; rows at or past `nvalid` become zeros.
template <int ROWS, int NT>
__device__ __forceinline__ void load_sw(unsigned char* s, const bf16* g, int64_t stride, int row0, int nvalid,
                                        int tid) {
#pragma unroll
  for (int c = tid; c < ROWS * 8; c += NT) {
    const int r = c / 8, ch = c % 8;
    const bool ok = r < nvalid;
    cp_async16(s + wg::sw128(r, ch), g + static_cast<int64_t>(ok ? row0 + r : 0) * stride + ch * 8, ok);
  }
}

// Byte offset of element (row, col) in a swizzled tile (col even: a bf16 pair).
__device__ __forceinline__ uint32_t sw_elem(int row, int col) {
  return wg::sw128(row, col >> 3) + ((col & 7) << 1);
}

__device__ __forceinline__ void named_barrier(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// The first 1024-byte-aligned byte (in the shared window, which the swizzle is defined
// on) at or after p. An offset on the __shared__ array itself, never an integer round
// trip: that keeps the shared address space visible, so accesses through the result
// compile to LDS/STS rather than generic loads and stores.
__device__ __forceinline__ unsigned char* align1024(unsigned char* p) {
  return p + ((1024u - (smem_addr(p) & 1023u)) & 1023u);
}

// ---- backward ---------------------------------------------------------------------

// acc = A B over K = 64 with A and B K-major (64 rows of 64 in shared memory at a, b).
__device__ __forceinline__ void mma_k64_nn(float (&acc)[32], uint32_t a, uint32_t b) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    wg::mma_ss_n64<0, 0>(acc, wg::desc(a + kk * 32, 16, 1024), wg::desc(b + kk * 32, 16, 1024), kk > 0);
  }
}

// acc = A B over K = 64 with A and B read transposed (MN-major tiles at a, b).
__device__ __forceinline__ void mma_k64_tt(float (&acc)[32], uint32_t a, uint32_t b) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    wg::mma_ss_n64<1, 1>(acc, wg::desc(a + kk * 2048, 16, 1024), wg::desc(b + kk * 2048, 16, 1024), kk > 0);
  }
}

// acc += A B over K = 64: A in registers (four k16 fragments), B read transposed at b.
__device__ __forceinline__ void mma_k64_rt(float (&acc)[32], const uint32_t (&a)[4][4], uint32_t b) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) wg::mma_rs_n64<1>(acc, a[kk], wg::desc(b + kk * 2048, 16, 1024), 1);
}

// The pieces of one 64-key x 64-query step of the backward for the calling warpgroup,
// in order: S^T = K Q^T (issue_st), P^T (make_pt), dV += P^T dO and dP^T = V dO^T
// (issue_dv_dp, wait_dv_dp), dS^T into registers and the warpgroup's rows of the dS^T tile (make_ds),
// then dK += dS^T Q and this step's dQ part = dS K over the warpgroup's keys (issue_dk_dq,
// dqp unscaled). The kernels issue S^T of their next step together with issue_dk_dq, so
// the next P^T is computed while those MMAs run. aK/aV: the warpgroup's 64 key rows;
// aQt/adOt: the query tile; stat: lse*log2e (64) then D (64) of the query tile; kr: the
// thread's first key row within the warpgroup.

__device__ __forceinline__ void issue_st(float (&st)[32], uint32_t aK, uint32_t aQt) {
  wg::fence();
  mma_k64_nn(st, aK, aQt);
  wg::commit();
}

// The thread's 16 columns of a 64-query statistics row (element 8j + 2(lane % 4) + e is
// v[j].x or .y). Loaded before the wait for the MMA whose result they meet, so the
// shared-memory latency overlaps it.
__device__ __forceinline__ void load_stat(float2 (&v)[8], const float* stat) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = *reinterpret_cast<const float2*>(stat + j * 8 + (lane % 4) * 2);
}

// P^T from the scores st of query tile q0 against the warpgroup's keys from kw0 (lse2:
// lse*log2e of the tile's queries from load_stat; kbias: the key bias of rows kr, kr + 8,
// log2 domain); queries past the end have lse = +inf, so P = 0.
__device__ __forceinline__ void make_pt(uint32_t (&pa)[4][4], float (&st)[32], const float2 (&lse2)[8], int q0,
                                        int kw0, int kr, const float (&kbias)[2], float slope2, float scale2) {
  const int lane = threadIdx.x % 32;
  // query - key = dist0 + (an immediate): no integer-to-float conversion per score
  const float dist0 = static_cast<float>(q0 + (lane % 4) * 2 - kw0 - kr);
#pragma unroll
  for (int j = 0; j < 8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int half = e >> 1;
      const float x = st[4 * j + e] * scale2 + kbias[half] -
                      slope2 * fabsf(dist0 + static_cast<float>(j * 8 + (e & 1) - half * 8));
      st[4 * j + e] = fast_exp2(x - ((e & 1) ? lse2[j].y : lse2[j].x));
    }
  }
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    pa[kk][0] = pack_bf16(st[8 * kk + 0], st[8 * kk + 1]);
    pa[kk][1] = pack_bf16(st[8 * kk + 2], st[8 * kk + 3]);
    pa[kk][2] = pack_bf16(st[8 * kk + 4], st[8 * kk + 5]);
    pa[kk][3] = pack_bf16(st[8 * kk + 6], st[8 * kk + 7]);
  }
}

// dV += P^T dO (dO read transposed), dP^T = V dO^T: issue, then wait for both.
__device__ __forceinline__ void issue_dv_dp(float (&dvacc)[32], float (&dp)[32], const uint32_t (&pa)[4][4],
                                            uint32_t aV, uint32_t adOt) {
  wg::fence();
  mma_k64_rt(dvacc, pa, adOt);
  mma_k64_nn(dp, aV, adOt);
  wg::commit();
}
__device__ __forceinline__ void wait_dv_dp(float (&dvacc)[32], float (&dp)[32]) {
  wg::wait<0>();
  wg::fence_regs(dp);
  wg::fence_regs(dvacc);
}

// dS^T = P^T * (dP^T - D) (the factor `scale` is applied at the stores), as bf16
// register fragments and into the warpgroup's rows of the dS^T tile at sdS, then
// published to the warpgroup's MMAs (named barrier `barrier`, 128 threads).
__device__ __forceinline__ void make_ds(uint32_t (&da)[4][4], unsigned char* sdS, const uint32_t (&pa)[4][4],
                                        const float (&dp)[32], const float2 (&d2)[8], int kr, int barrier) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; e += 2) {
      const uint32_t w = pa[j / 2][(j & 1) * 2 + (e >> 1)];
      const float p0 = __uint_as_float(w << 16), p1 = __uint_as_float(w & 0xffff0000u);
      const int c = j * 8 + (lane % 4) * 2;
      const uint32_t packed = pack_bf16(p0 * (dp[4 * j + e] - d2[j].x), p1 * (dp[4 * j + e + 1] - d2[j].y));
      da[j / 2][(j & 1) * 2 + (e >> 1)] = packed;
      *reinterpret_cast<uint32_t*>(sdS + sw_elem(kr + (e >> 1) * 8, c)) = packed;
    }
  }
  wg::fence_proxy_async();
  named_barrier(barrier, 128);
}

// dK += dS^T Q (Q read transposed); dQ_part = dS K over the warpgroup's keys (dS^T and K
// both read transposed). Issued, not waited for.
__device__ __forceinline__ void issue_dk_dq(float (&dkacc)[32], float (&dqp)[32], const uint32_t (&da)[4][4],
                                            uint32_t aQt, uint32_t adS, uint32_t aK) {
  wg::fence();
  mma_k64_rt(dkacc, da, aQt);
  mma_k64_tt(dqp, adS, aK);
  wg::commit();
}

// Stores from this thread's fragments of a 64-row x 64 tile: element (j, e) of an
// accumulator is row r0 + kr + 8 (e >> 1), column 8 j + 2 (lane % 4) + (e & 1).

// One row's 64 columns from the thread's bf16 pairs v[j] (columns 8j + 2 (lane % 4), +1).
// Neighbouring lanes of a quad swap one pair per two column groups, so each lane writes
// four consecutive columns with one 8-byte store and a quad fills a whole 32-byte
// sector. Every lane of the warp calls it (the swap is warp-wide); only `valid` rows are
// written.
__device__ __forceinline__ void store_row(bf16* row, const uint32_t (&v)[8], bool valid) {
  const int q = threadIdx.x % 4;
  const bool odd = q & 1;
#pragma unroll
  for (int j = 0; j < 8; j += 2) {
    const uint32_t mine = odd ? v[j + 1] : v[j];
    const uint32_t theirs = __shfl_xor_sync(0xffffffffu, odd ? v[j] : v[j + 1], 1);
    if (valid) {
      // even lane: columns 8j + 2q .. +3; odd lane: 8(j + 1) + 2(q - 1) .. +3
      const int col = odd ? (j + 1) * 8 + (q - 1) * 2 : j * 8 + q * 2;
      *reinterpret_cast<uint2*>(row + col) = odd ? make_uint2(theirs, mine) : make_uint2(mine, theirs);
    }
  }
}

// The fp32 twin of store_row: one row's 64 columns from the thread's pairs v[j] added to
// `row` with one 16-byte atomic per lane and two column groups (half the atomics of one
// per pair). Kept apart from store_row: one exchange helper for both, handing each lane's
// columns to a write callback, compiled the dQ scaling into a different schedule and
// measured 1.65 against 1.58 ms for the S = 2048 backward.
__device__ __forceinline__ void add_row(float* row, const float2 (&v)[8], bool valid) {
  const int q = threadIdx.x % 4;
  const bool odd = q & 1;
#pragma unroll
  for (int j = 0; j < 8; j += 2) {
    const float2 mine = odd ? v[j + 1] : v[j], send = odd ? v[j] : v[j + 1];
    const float2 theirs = make_float2(__shfl_xor_sync(0xffffffffu, send.x, 1), __shfl_xor_sync(0xffffffffu, send.y, 1));
    if (valid) {
      const int col = odd ? (j + 1) * 8 + (q - 1) * 2 : j * 8 + q * 2;
      atomicAdd(reinterpret_cast<float4*>(row + col), odd ? make_float4(theirs.x, theirs.y, mine.x, mine.y)
                                                           : make_float4(mine.x, mine.y, theirs.x, theirs.y));
    }
  }
}

// dQ rows of query tile q0 as bf16, (dqp + other) * scale; `other` (or null) holds a
// second partial of the same layout in shared memory, this thread's slot i at
// other[i * 128 + t]. Rows at or past len are not written.
__device__ __forceinline__ void store_dq(bf16* dq, const float (&dqp)[32], const float* other, int t, int q0, int kr,
                                         int len, int start, int64_t stride, int64_t headOff, float scale) {
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int qi = q0 + kr + half * 8;
    uint32_t v[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int i0 = 4 * j + 2 * half;
      float x0 = dqp[i0], x1 = dqp[i0 + 1];
      if (other) {
        x0 += other[i0 * 128 + t];
        x1 += other[(i0 + 1) * 128 + t];
      }
      v[j] = pack_bf16(x0 * scale, x1 * scale);
    }
    const bool valid = qi < len;
    store_row(dq + (static_cast<int64_t>(start) + (valid ? qi : 0)) * stride + headOff, v, valid);
  }
}

// dK (times scale) and dV of this thread's key rows kw0 + kr and kw0 + kr + 8.
__device__ __forceinline__ void store_dk_dv(bf16* dk, bf16* dv, const float (&dkacc)[32], const float (&dvacc)[32],
                                            int kw0, int kr, int len, int start, int64_t stride, int64_t headOff,
                                            float scale) {
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int kj = kw0 + kr + half * 8;
    const bool valid = kj < len;
    const int64_t row = (static_cast<int64_t>(start) + (valid ? kj : 0)) * stride + headOff;
    uint32_t a[8], b[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int i0 = 4 * j + 2 * half;
      a[j] = pack_bf16(dkacc[i0] * scale, dkacc[i0 + 1] * scale);
      b[j] = pack_bf16(dvacc[i0], dvacc[i0 + 1]);
    }
    store_row(dk + row, a, valid);
    store_row(dv + row, b, valid);
  }
}

#endif  // MBERT_WGMMA

// ---- backward, sequences of at most 128 tokens --------------------------------------
// One warpgroup per (sequence, head): Q, dO, K and V of the whole sequence stay in
// shared memory, and D = rowsum(dO * O) is computed here from O (no prep kernel); the
// two 64-key halves run one after the other (dK, dV in registers), and dQ of each
// query tile is summed
// over the halves in shared memory (fp32) and stored once as bf16: no atomics, no
// scratch, deterministic. Two CTAs per SM.
constexpr int kShortThreads = 128;
constexpr size_t kShortSmem = 1024 + 8 * kTile + kTile + 2 * 64 * 64 * sizeof(float) + 2 * 128 * sizeof(float);

__global__ void __launch_bounds__(kShortThreads, 2)
    attention_backward_short_sm90_kernel(bf16* __restrict__ dq, bf16* __restrict__ dk, bf16* __restrict__ dv,
                                         const bf16* __restrict__ dout, const bf16* __restrict__ out,
                                         const float* __restrict__ lse, const bf16* __restrict__ q,
                                         const bf16* __restrict__ k, const bf16* __restrict__ v, int64_t stride,
                                         const int* __restrict__ cuSeqlens, int T, int NH,
                                         const float* __restrict__ slopes, const float* __restrict__ keyBias,
                                         float scale) {
#if MBERT_WGMMA
  extern __shared__ unsigned char smem_raw[];
  unsigned char* sK = align1024(smem_raw);  // 128 rows each
  unsigned char* sV = sK + 2 * kTile;
  unsigned char* sQ = sV + 2 * kTile;
  unsigned char* sdO = sQ + 2 * kTile;
  unsigned char* sdS = sdO + 2 * kTile;                    // 64 keys x 64 queries
  float* sDQ = reinterpret_cast<float*>(sdS + kTile);      // 2 query tiles x 32 x 128 (thread-private)
  float* sStat = sDQ + 2 * 64 * 64;                        // 2 query tiles x (lse*log2e, D) x 64

  const int b = blockIdx.z, h = blockIdx.y;
  const SeqHead sh(cuSeqlens, b, h, NH, kHS);
  const int start = sh.start, len = sh.len;
  if (len <= 0) return;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  if (len > 128) {
    // maxSeqlen was smaller than this sequence: this kernel holds 128 rows. Make it
    // loud, as the mma.sync backward does for a dq it has no scratch for.
    const uint4 nan = make_uint4(0x7fc07fc0u, 0x7fc07fc0u, 0x7fc07fc0u, 0x7fc07fc0u);  // bf16 NaN
    for (int c = tid; c < len * 8; c += kShortThreads) {
      const int64_t off = (static_cast<int64_t>(start) + c / 8) * stride + sh.headOff + (c % 8) * 8;
      *reinterpret_cast<uint4*>(dq + off) = nan;
      *reinterpret_cast<uint4*>(dk + off) = nan;
      *reinterpret_cast<uint4*>(dv + off) = nan;
    }
    return;
  }
  const float slope2 = slopes ? slopes[h] * kLog2e : 0.f;
  const float scale2 = scale * kLog2e;
  const int nT = (len + 63) / 64;  // 64-row tiles: 1 or 2
  const int64_t headOff = sh.headOff, rowLen = sh.rowLen;
  const bf16* qb = sh.rows(q, stride);
  const bf16* kb = sh.rows(k, stride);
  const bf16* vb = sh.rows(v, stride);
  const bf16* dob = sh.rows(dout, rowLen);
  const bf16* ob = sh.rows(out, rowLen);
  const float* lseb = sh.stats(lse, h, T);
  // O rows, until D is computed: in the second query tile's dQ partial, which is written
  // only after the step that first reads query tile 1 (after D of both tiles).
  unsigned char* sO = reinterpret_cast<unsigned char*>(sDQ + 64 * 64);
  const int kr = warp * 16 + lane / 4;  // this thread's key rows in a 64-key half: kr, kr + 8

  // The query statistics and the key bias are plain loads: issued first, their latency
  // overlaps the tiles' copies. lseIn[t]: row 64t + tid (threads 0..63); kbias[hk][half]:
  // key 64hk + kr + 8half, -inf past the end.
  float lseIn[2], kbias[2][2];
#pragma unroll
  for (int t = 0; t < 2; ++t) {
    const int r = t * 64 + tid;
    lseIn[t] = tid < 64 && r < len ? lseb[r] * kLog2e : INFINITY;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int kj = t * 64 + kr + half * 8;
      kbias[t][half] = kj < len ? (keyBias ? keyBias[start + kj] * kLog2e : 0.f) : -INFINITY;
    }
  }

  // Group t (t = 0, 1; one cp.async group each): rows [64t, 64t + 64) of K, V, Q, dO
  // and O, and the lse of those queries.
  for (int t = 0; t < nT; ++t) {
    const int r0 = t * 64;
    load_sw<64, kShortThreads>(sK + t * kTile, kb, stride, r0, len - r0, tid);
    load_sw<64, kShortThreads>(sV + t * kTile, vb, stride, r0, len - r0, tid);
    load_sw<64, kShortThreads>(sQ + t * kTile, qb, stride, r0, len - r0, tid);
    load_sw<64, kShortThreads>(sdO + t * kTile, dob, rowLen, r0, len - r0, tid);
    load_sw<64, kShortThreads>(sO + t * kTile, ob, rowLen, r0, len - r0, tid);
    cp_async_commit();
    if (tid < 64) sStat[t * 128 + tid] = t ? lseIn[1] : lseIn[0];
  }
  // Waits for group t, then D = rowsum(dO * O) (fp32) of its 64 queries, one thread per
  // row (rows past the end are zeros).
  auto finish_group = [&](int t) {
    if (t + 1 < nT) {
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // every thread's copies of group t have landed
    {
      // Two threads per row (adjacent lanes), four 16-byte chunks each.
      const int row = tid / 2, ch0 = (tid % 2) * 4;
      float acc = 0.f;
#pragma unroll
      for (int ch = ch0; ch < ch0 + 4; ++ch) {
        const uint4 av = *reinterpret_cast<const uint4*>(sdO + t * kTile + wg::sw128(row, ch));
        const uint4 ov = *reinterpret_cast<const uint4*>(sO + t * kTile + wg::sw128(row, ch));
        const __nv_bfloat162* a2 = reinterpret_cast<const __nv_bfloat162*>(&av);
        const __nv_bfloat162* o2 = reinterpret_cast<const __nv_bfloat162*>(&ov);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const float2 af = __bfloat1622float2(a2[j]);
          const float2 of = __bfloat1622float2(o2[j]);
          acc += af.x * of.x + af.y * of.y;
        }
      }
      acc += __shfl_xor_sync(0xffffffffu, acc, 1);
      if (tid % 2 == 0) sStat[t * 128 + 64 + row] = acc;
    }
    wg::fence_proxy_async();
    __syncthreads();  // D of group t is visible
  };
  const uint32_t aK = smem_addr(sK), aV = smem_addr(sV), aQ = smem_addr(sQ), adO = smem_addr(sdO);

  const uint32_t adS = smem_addr(sdS);
  float dkacc[32], dvacc[32];
  for (int hk = 0; hk < nT; ++hk) {  // key half
    const float kb[2] = {hk ? kbias[1][0] : kbias[0][0], hk ? kbias[1][1] : kbias[0][1]};
#pragma unroll
    for (int i = 0; i < 32; ++i) dkacc[i] = dvacc[i] = 0.f;
    for (int qt = 0; qt < nT; ++qt) {
      // First use of query tile qt (and of key half 0 / 1): wait for it and compute D.
      // Nothing else needs a CTA barrier between steps: a warp that is past the
      // previous step's wait<0> knows the warpgroup's MMAs that read dS^T are done, and
      // make_ds's barrier orders the O reads of finish_group before the dQ partial
      // stores that reuse that memory.
      if (hk == 0) finish_group(qt);
      // One step, not overlapped with the next: at two CTAs per SM that measured faster
      // (0.221 against 0.232 ms at S = 128) than issuing the next S^T with dK/dQ.
      const float* stat = sStat + qt * 128;
      const uint32_t aKh = aK + hk * kTile, aQt = aQ + qt * kTile;
      float st[32], dp[32], dqp[32];
      uint32_t pa[4][4], da[4][4];
      float2 sv[8];
      issue_st(st, aKh, aQt);
      load_stat(sv, stat);
      wg::wait<0>();
      wg::fence_regs(st);
      make_pt(pa, st, sv, qt * 64, hk * 64, kr, kb, slope2, scale2);
      issue_dv_dp(dvacc, dp, pa, aV + hk * kTile, adO + qt * kTile);
      load_stat(sv, stat + kBwdBR);
      wait_dv_dp(dvacc, dp);
      make_ds(da, sdS, pa, dp, sv, kr, 1);
      issue_dk_dq(dkacc, dqp, da, aQt, adS, aKh);
      wg::wait<0>();
      wg::fence_regs(dqp);
      wg::fence_regs(dkacc);

      float* part = sDQ + qt * 64 * 64;
      if (hk + 1 < nT) {
#pragma unroll
        for (int i = 0; i < 32; ++i) part[i * 128 + tid] = dqp[i];
      } else {
        // Last key half: dQ of this query tile is complete.
        store_dq(dq, dqp, hk > 0 ? part : nullptr, tid, qt * 64, kr, len, start, stride, headOff, scale);
      }
    }
    // dK (times scale) and dV of this key half.
    store_dk_dv(dk, dv, dkacc, dvacc, hk * 64, kr, len, start, stride, headOff, scale);
  }
#endif
}

// ---- forward, sequences longer than 128 tokens --------------------------------------
// One CTA per 128 queries of a (sequence, head): two consumer warpgroups of 64 query
// rows each and one producer warpgroup. The producer streams 128-key K and V tiles (and the
// raw key bias) through a two-stage cp.async pipeline on mbarriers; each consumer
// warpgroup issues S_j = Q K_j^T (m64n128) together with O += P_{j-1} V_{j-1}, so the
// softmax of tile j runs while the tensor cores finish tile j-1.
constexpr int kFwdBR = 128, kFwdBC = 128, kFwdStages = 3;
constexpr int kFwdConsumers = 256, kFwdThreads = kFwdConsumers + 128;
constexpr int kKV = kFwdBC * 128;  // bytes of a 128-row swizzled tile
// Barriers: query tile full / free, then per stage: K full, V full, stage free.
enum { kBarQFull = 0, kBarQFree = 1, kBarKFull = 2, kBarVFull = 2 + kFwdStages, kBarFree = 2 + 2 * kFwdStages };
constexpr size_t kFwdSmem =
    1024 + 2 * kTile + 2 * kFwdStages * kKV + kFwdStages * kFwdBC * sizeof(float) + (kBarFree + kFwdStages) * 8;

#if MBERT_WGMMA
// Rows [row0, row0 + ROWS) of one head into a 128-byte-swizzled tile, by the 128
// threads of a producer warpgroup (ROWS/16 rows each, one 16-byte chunk column per
// thread); rows at or past `nvalid` become zeros. Kept rolled: the producer runs on 24
// registers.
template <int ROWS = 128>
__device__ __forceinline__ void produce_tile(unsigned char* s, const bf16* g, int64_t stride, int row0, int nvalid,
                                             int lt) {
  const int ch = lt % 8;
  int r = lt / 8;
  const bf16* src = g + static_cast<int64_t>(row0 + r) * stride + ch * 8;
  const int64_t step = 16 * stride;
#pragma unroll 1
  for (; r < ROWS; r += 16, src += step) {
    const bool ok = r < nvalid;
    cp_async16(s + wg::sw128(r, ch), ok ? src : g, ok);
  }
}

// o += P V over 128 keys: P as four-register A fragments per k16, V read transposed.
__device__ __forceinline__ void mma_pv_k128(float (&o)[32], const uint32_t (&p)[8][4], uint32_t v) {
#pragma unroll
  for (int kk = 0; kk < 8; ++kk) wg::mma_rs_n64<1>(o, p[kk], wg::desc(v + kk * 2048, 16, 1024), 1);
}
#endif

// KEY_BIAS: keyBias is read (a separate instance, so the common unbiased case keeps its
// registers free of the bias values).
template <bool KEY_BIAS>
__global__ void __launch_bounds__(kFwdThreads, 1)
    attention_forward_sm90_kernel(bf16* __restrict__ out, float* __restrict__ lse, const bf16* __restrict__ q,
                                  const bf16* __restrict__ k, const bf16* __restrict__ v, int64_t stride,
                                  const int* __restrict__ cuSeqlens, int T, int NH,
                                  const float* __restrict__ slopes, const float* __restrict__ keyBias,
                                  float scale) {
#if MBERT_WGMMA
  extern __shared__ unsigned char smem_raw[];
  unsigned char* sQ = align1024(smem_raw);     // 128 rows: warpgroup w reads rows 64w..
  unsigned char* sK = sQ + 2 * kTile;          // kFwdStages x 128 rows
  unsigned char* sV = sK + kFwdStages * kKV;   // kFwdStages x 128 rows
  float* sBias = reinterpret_cast<float*>(sV + kFwdStages * kKV);  // kFwdStages x 128 raw keyBias
  const uint32_t bar0 = smem_addr(sBias + kFwdStages * kFwdBC);
  auto bar = [bar0](int i) { return bar0 + 8u * i; };

  const int b = blockIdx.z, h = blockIdx.y;
  const SeqHead sh(cuSeqlens, b, h, NH, kHS);
  const int start = sh.start, len = sh.len;
  const int nQT = (len + kFwdBR - 1) / kFwdBR, nKT = (len + kFwdBC - 1) / kFwdBC;
  if (static_cast<int>(blockIdx.x) >= nQT) return;  // the whole CTA, before any barrier
  const int tid = threadIdx.x;
  const int64_t headOff = sh.headOff, rowLen = sh.rowLen;
  if (tid == 0) {
    wg::mbar_init(bar(kBarQFull), 128);
    wg::mbar_init(bar(kBarQFree), 8);
    for (int st = 0; st < kFwdStages; ++st) {
      wg::mbar_init(bar(kBarKFull + st), 128);
      wg::mbar_init(bar(kBarVFull + st), 128);
      wg::mbar_init(bar(kBarFree + st), 8);
    }
  }
  __syncthreads();

  // Warpgroup index, read through a shuffle so the compiler sees it is warp-uniform
  // (a branch it cannot prove uniform makes it serialize the wgmma instructions).
  const int wgi = __shfl_sync(0xffffffffu, tid / 128, 0);
  if (wgi == kFwdConsumers / 128) {
    // Producer warpgroup. `it` counts K/V tiles over all query tiles of this CTA;
    // consumers count the same way, so stage and phase agree.
    wg::regs_dec<24>();
    const int lt = tid - kFwdConsumers;
    const bf16* qb = sh.rows(q, stride);
    const bf16* kb = sh.rows(k, stride);
    const bf16* vb = sh.rows(v, stride);
    int it = 0, n = 0;
    for (int qt = blockIdx.x; qt < nQT; qt += gridDim.x, ++n) {
      const int q0 = qt * kFwdBR;
      if (n > 0) wg::mbar_wait(bar(kBarQFree), (n - 1) & 1);
      produce_tile(sQ, qb, stride, q0, len - q0, lt);
      wg::mbar_arrive_cp_async(bar(kBarQFull));
      for (int j = 0; j < nKT; ++j, ++it) {
        const int st = it % kFwdStages;
        if (it >= kFwdStages) wg::mbar_wait(bar(kBarFree + st), (it / kFwdStages - 1) & 1);
        const int k0 = j * kFwdBC;
        produce_tile(sK + st * kKV, kb, stride, k0, len - k0, lt);
        if (KEY_BIAS) {
          for (int c = lt; c < kFwdBC; c += 128) {
            const bool ok = k0 + c < len;
            attn::cp_async4(sBias + st * kFwdBC + c, keyBias + start + (ok ? k0 + c : 0), ok);
          }
        }
        wg::mbar_arrive_cp_async(bar(kBarKFull + st));
        produce_tile(sV + st * kKV, vb, stride, k0, len - k0, lt);
        wg::mbar_arrive_cp_async(bar(kBarVFull + st));
      }
    }
    return;
  }

  // Consumer warpgroups.
  wg::regs_inc<240>();
  const int wt = tid % 128, warp = wt / 32, lane = tid % 32;
  const float slope2 = slopes ? slopes[h] * kLog2e : 0.f;  // scores live in the log2 domain
  const float scale2 = scale * kLog2e;
  unsigned char* sQw = sQ + wgi * kTile;  // this warpgroup's 64 query rows
  const uint32_t aQ = smem_addr(sQw), aK = smem_addr(sK), aV = smem_addr(sV);
  const int lr = warp * 16 + lane / 4;  // this thread's rows in the warpgroup: lr, lr + 8
  // Ping-pong: the two warpgroups take turns issuing their MMAs (barrier 3 + w is
  // warpgroup w's turn), so one's softmax runs while the other's MMAs do.
  auto turn_wait = [&]() { named_barrier(3 + wgi, 256); };
  auto turn_pass = [&]() { named_barrier_arrive(3 + (wgi ^ 1), 256); };
  if (wgi == 1) named_barrier_arrive(3, 256);  // warpgroup 0 goes first
  int it = 0, n = 0;
  for (int qt = blockIdx.x; qt < nQT; qt += gridDim.x, ++n) {
    const int q0 = qt * kFwdBR + wgi * 64;  // first query of this warpgroup
    const float qpos[2] = {static_cast<float>(q0 + lr), static_cast<float>(q0 + lr + 8)};
    float o[32];
#pragma unroll
    for (int i = 0; i < 32; ++i) o[i] = 0.f;
    float m[2] = {-INFINITY, -INFINITY};
    float l[2] = {0.f, 0.f};
    uint32_t p[8][4];
    float sc[64];
    float alpha[2];

    // S_j = Q K_j^T into sc (issued, not waited for).
    auto issue_s = [&](int st) {
      wg::mbar_wait(bar(kBarKFull + st), (it / kFwdStages) & 1);
      wg::fence_proxy_async();
      wg::fence();
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        wg::mma_ss_n128<0, 0>(sc, wg::desc(aQ + kk * 32, 16, 1024), wg::desc(aK + st * kKV + kk * 32, 16, 1024),
                              kk > 0);
      }
      wg::commit();
    };
    // O += P V of the previous tile (stage sp, tile counter it - 1).
    auto issue_pv = [&](int sp) {
      wg::mbar_wait(bar(kBarVFull + sp), ((it - 1) / kFwdStages) & 1);
      wg::fence_proxy_async();
      wg::fence();
      mma_pv_k128(o, p, aV + sp * kKV);
      wg::commit();
    };
    // Scale, ALiBi, key bias / mask of tile j, online softmax statistics (alpha: the
    // factor for O and l), P in sc. Element (jb, e): row lr + 8 (e >> 1), key
    // k0 + 8 jb + 2 (lane % 4) + (e & 1).
    // Scale, ALiBi, key bias / mask of tile j and the online-softmax statistics (alpha:
    // the factor for O and l); P in sc. Element (jb, e) of sc: row lr + 8 (e >> 1), key
    // k0 + 8 jb + 2 (lane % 4) + (e & 1). Max and sum run in four independent chains per
    // row (only two consumer warps share a scheduler, so latency is not hidden by others).
    auto softmax = [&](int j, int st) {
      const int k0 = j * kFwdBC;
      // Terms are written against this thread's first key c0 = k0 + 2 (lane % 4), so
      // every per-column term is an immediate (nothing column-wise stays live).
      const int c0 = k0 + (lane % 4) * 2;
      float mp[2][4];
#pragma unroll
      for (int i = 0; i < 4; ++i) mp[0][i] = mp[1][i] = -INFINITY;
      // exp2 argument: sc * escale + off - m.
      float escale = 1.f, off[2] = {0.f, 0.f};
      // A full tile wholly left or right of this warpgroup's rows, without key bias: the
      // ALiBi term is linear in the key there, slope2 (kj - qi) or slope2 (qi - kj), so
      // u = s + (sign slope2 / scale2) c carries the column part in one FMA and the row
      // part goes into `off`.
      const bool left = k0 + kFwdBC - 1 <= q0, right = k0 >= q0 + 63;
      if (!KEY_BIAS && scale2 > 0.f && k0 + kFwdBC <= len && (slope2 == 0.f || left || right)) {
        const float sign = left ? 1.f : -1.f;
        if (slope2 != 0.f) {
          const float k1 = sign * slope2 / scale2;
#pragma unroll
          for (int jb = 0; jb < 16; ++jb) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
#pragma unroll
              for (int half = 0; half < 2; ++half) {
                float& x = sc[4 * jb + 2 * half + e];
                x = fmaf(static_cast<float>(jb * 8 + e), k1, x);
                mp[half][jb % 4] = fmaxf(mp[half][jb % 4], x);
              }
            }
          }
        } else {
#pragma unroll
          for (int i = 0; i < 64; ++i) mp[(i >> 1) & 1][(i >> 2) % 4] = fmaxf(mp[(i >> 1) & 1][(i >> 2) % 4], sc[i]);
        }
        escale = scale2;
#pragma unroll
        for (int half = 0; half < 2; ++half) off[half] = sign * slope2 * (static_cast<float>(c0) - qpos[half]);
      } else {
        const int lim = len - c0;  // columns at or past it are masked
        const float* bias = sBias + st * kFwdBC + (lane % 4) * 2;
        const float d[2] = {qpos[0] - static_cast<float>(c0), qpos[1] - static_cast<float>(c0)};
#pragma unroll
        for (int jb = 0; jb < 16; ++jb) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int c = jb * 8 + e;
            const float kbias = c < lim ? (KEY_BIAS ? bias[c] * kLog2e : 0.f) : -INFINITY;
#pragma unroll
            for (int half = 0; half < 2; ++half) {
              float& x = sc[4 * jb + 2 * half + e];
              x = x * scale2 + kbias - slope2 * fabsf(d[half] - static_cast<float>(c));
              mp[half][jb % 4] = fmaxf(mp[half][jb % 4], x);
            }
          }
        }
      }
      float mUse[2];
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        // Back to scores before the quad is combined (off depends on the lane's c0);
        // escale > 0, so the same element is the max.
        float mx = fmaxf(fmaxf(mp[half][0], mp[half][1]), fmaxf(mp[half][2], mp[half][3])) * escale + off[half];
        mx = quad_max(mx);
        const float mNew = fmaxf(m[half], mx);
        mUse[half] = mNew == -INFINITY ? 0.f : mNew;  // all masked so far: p = 0, no NaN
        alpha[half] = fast_exp2(m[half] - mUse[half]);
        m[half] = mNew;
        off[half] -= mUse[half];
      }
      float sp[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
      for (int i = 0; i < 64; ++i) {
        const int half = (i >> 1) & 1;
        sc[i] = fast_exp2(fmaf(sc[i], escale, off[half]));
        sp[half][(i >> 2) % 4] += sc[i];
      }
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        // per-thread partials; the quad is summed at the end
        l[half] = l[half] * alpha[half] + ((sp[half][0] + sp[half][1]) + (sp[half][2] + sp[half][3]));
      }
    };
    auto pack_p = [&]() {
#pragma unroll
      for (int kk = 0; kk < 8; ++kk) {
        p[kk][0] = pack_bf16(sc[8 * kk + 0], sc[8 * kk + 1]);
        p[kk][1] = pack_bf16(sc[8 * kk + 2], sc[8 * kk + 3]);
        p[kk][2] = pack_bf16(sc[8 * kk + 4], sc[8 * kk + 5]);
        p[kk][3] = pack_bf16(sc[8 * kk + 6], sc[8 * kk + 7]);
      }
    };
    auto release = [&](int sp) { wg::mbar_arrive_warp(bar(kBarFree + sp)); };

    wg::mbar_wait(bar(kBarQFull), n & 1);
    // Tile 0: nothing to overlap with yet.
    turn_wait();
    issue_s(it % kFwdStages);
    turn_pass();
    wg::wait<0>();
    wg::fence_regs(sc);
    softmax(0, it % kFwdStages);
    pack_p();
    ++it;
    for (int j = 1; j < nKT; ++j, ++it) {
      const int st = it % kFwdStages, sp = (it - 1) % kFwdStages;
      turn_wait();
      issue_s(st);
      issue_pv(sp);
      turn_pass();
      wg::wait<1>();  // S_j is in; P_{j-1} V_{j-1} may still run
      wg::fence_regs(sc);
      softmax(j, st);
      wg::wait<0>();
      wg::fence_regs(o);
      release(sp);
#pragma unroll
      for (int i = 0; i < 32; ++i) o[i] *= alpha[(i >> 1) & 1];
      pack_p();
    }
    // The last tile's P V.
    turn_wait();
    issue_pv((it - 1) % kFwdStages);
    turn_pass();
    wg::wait<0>();
    wg::fence_regs(o);
    release((it - 1) % kFwdStages);

    // O / l and lse = ln(sum exp(score)); rows staged in this warpgroup's Q rows (its
    // MMAs are done) for 16-byte stores.
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const float sum = quad_sum(l[half]);
      const float inv = sum > 0.f ? 1.f / sum : 0.f;
      const int r = lr + half * 8;
#pragma unroll
      for (int jd = 0; jd < 8; ++jd) {
        *reinterpret_cast<uint32_t*>(sQw + sw_elem(r, jd * 8 + (lane % 4) * 2)) =
            pack_bf16(o[4 * jd + 2 * half] * inv, o[4 * jd + 2 * half + 1] * inv);
      }
      const int qi = q0 + r;
      if (lane % 4 == 0 && qi < len) {
        lse[static_cast<int64_t>(h) * T + start + qi] = row_lse(m[half], sum);
      }
    }
    named_barrier(1 + wgi, 128);
#pragma unroll
    for (int c = wt; c < 64 * 8; c += 128) {
      const int r = c / 8, ch = c % 8;
      if (q0 + r < len) {
        *reinterpret_cast<uint4*>(out + (static_cast<int64_t>(start) + q0 + r) * rowLen + headOff + ch * 8) =
            *reinterpret_cast<const uint4*>(sQw + wg::sw128(r, ch));
      }
    }
    wg::mbar_arrive_warp(bar(kBarQFree));  // the producer may reload the Q rows
  }
  if (wgi == 0) named_barrier(3, 256);  // takes warpgroup 1's last pass
#endif
}

// ---- backward, batches with a sequence over 128 tokens --------------------------------
// One CTA per 128 keys of a (sequence, head). The query tiles (Q, dO, lse * log2e, D)
// come from a producer warpgroup through a three-stage mbarrier pipeline; the two
// consumer warpgroups (64 keys each) never wait for each other (except to add the dQ
// halves of a one-tile sequence), and each issues S^T of the next query tile together
// with dK += dS^T Q and dQ = dS K of this one, so the next P^T is computed while those
// MMAs run. Taking turns at the tensor cores as the forward does measured no gain here
// (S = 2048: 2.07 against 2.03 ms).
constexpr int kWsStages = 3, kWsThreads = 384;
enum { kWsBarKV = 0, kWsBarKVFree = 1, kWsBarFull = 2, kWsBarFree = 2 + kWsStages };
// K, V (128 rows each), stages x (Q, dO) (64 rows), dS^T (128 rows), two dQ exchange
// buffers (fp32 64 x 64), stages x (lse*log2e, D) x 64, barriers.
constexpr size_t kWsSmem = 1024 + 4 * kTile + 2 * kWsStages * kTile + 2 * kTile + 2 * 64 * 64 * sizeof(float) +
                           kWsStages * 2 * kBwdBR * sizeof(float) + (kWsBarFree + kWsStages) * 8;

__global__ void __launch_bounds__(kWsThreads, 1)
    attention_backward_ws_sm90_kernel(bf16* __restrict__ dq, bf16* __restrict__ dk, bf16* __restrict__ dv,
                                      float* __restrict__ dqacc, const bf16* __restrict__ dout,
                                      const float* __restrict__ lse, const float* __restrict__ D,
                                      const bf16* __restrict__ q, const bf16* __restrict__ k,
                                      const bf16* __restrict__ v, int64_t stride, const int* __restrict__ cuSeqlens,
                                      int T, int NH, const float* __restrict__ slopes,
                                      const float* __restrict__ keyBias, float scale) {
#if MBERT_WGMMA
  extern __shared__ unsigned char smem_raw[];
  unsigned char* sK = align1024(smem_raw);           // 128 rows: warpgroup w uses rows 64w..
  unsigned char* sV = sK + 2 * kTile;
  unsigned char* sQ = sV + 2 * kTile;                // kWsStages x 64 rows
  unsigned char* sdO = sQ + kWsStages * kTile;       // kWsStages x 64 rows
  unsigned char* sdS = sdO + kWsStages * kTile;      // 128 key rows x 64 queries
  float* sRed = reinterpret_cast<float*>(sdS + 2 * kTile);  // 2 x 32 x 128
  float* sStat = sRed + 2 * 64 * 64;                        // kWsStages x (lse*log2e, D) x 64
  const uint32_t bar0 = smem_addr(sStat + kWsStages * 2 * kBwdBR);
  auto bar = [bar0](int i) { return bar0 + 8u * i; };

  const int b = blockIdx.z, h = blockIdx.y;
  const SeqHead sh(cuSeqlens, b, h, NH, kHS);
  const int start = sh.start, len = sh.len;
  const int nQT = (len + kBwdBR - 1) / kBwdBR, nKT = (len + kBwdBC - 1) / kBwdBC;
  if (static_cast<int>(blockIdx.x) >= nKT) return;  // the whole CTA, before any barrier
  const int tid = threadIdx.x;
  const int64_t headOff = sh.headOff, rowLen = sh.rowLen;
  if (tid == 0) {
    wg::mbar_init(bar(kWsBarKV), 128);
    wg::mbar_init(bar(kWsBarKVFree), 8);
    for (int st = 0; st < kWsStages; ++st) {
      wg::mbar_init(bar(kWsBarFull + st), 256);  // 128 cp.async arrivals + 128 after the statistics
      wg::mbar_init(bar(kWsBarFree + st), 8);
    }
  }
  __syncthreads();

  const int wgi = __shfl_sync(0xffffffffu, tid / 128, 0);  // warp-uniform, see the forward
  if (wgi == 2) {
    // Producer warpgroup; `it` counts query tiles over all key tiles of this CTA.
    wg::regs_dec<24>();
    const int lt = tid - 256;
    const bf16* qb = sh.rows(q, stride);
    const bf16* kb = sh.rows(k, stride);
    const bf16* vb = sh.rows(v, stride);
    const bf16* dob = sh.rows(dout, rowLen);
    const float* lseb = sh.stats(lse, h, T);
    const float* Db = sh.stats(D, h, T);
    int it = 0, n = 0;
    for (int kt = blockIdx.x; kt < nKT; kt += gridDim.x, ++n) {
      const int k0 = kt * kBwdBC;
      if (n > 0) wg::mbar_wait(bar(kWsBarKVFree), (n - 1) & 1);
      produce_tile(sK, kb, stride, k0, len - k0, lt);
      produce_tile(sV, vb, stride, k0, len - k0, lt);
      wg::mbar_arrive_cp_async(bar(kWsBarKV));
      for (int qt = 0; qt < nQT; ++qt, ++it) {
        const int st = it % kWsStages;
        if (it >= kWsStages) wg::mbar_wait(bar(kWsBarFree + st), (it / kWsStages - 1) & 1);
        const int q1 = qt * kBwdBR;
        produce_tile<kBwdBR>(sQ + st * kTile, qb, stride, q1, len - q1, lt);
        produce_tile<kBwdBR>(sdO + st * kTile, dob, rowLen, q1, len - q1, lt);
        wg::mbar_arrive_cp_async(bar(kWsBarFull + st));
        // Statistics with plain stores, published by the arrive's release.
        const int c = q1 + lt % kBwdBR;
        sStat[st * 2 * kBwdBR + lt] =
            lt < kBwdBR ? (c < len ? lseb[c] * kLog2e : INFINITY) : (c < len ? Db[c] : 0.f);
        wg::mbar_arrive(bar(kWsBarFull + st));
      }
    }
    return;
  }

  // Consumer warpgroups: 64 keys each.
  wg::regs_inc<240>();
  const int wt = tid % 128, warp = wt / 32, lane = tid % 32;
  const float slope2 = slopes ? slopes[h] * kLog2e : 0.f;
  const float scale2 = scale * kLog2e;
  const int kr = warp * 16 + lane / 4;  // this thread's key rows in the warpgroup: kr, kr + 8
  const uint32_t aK = smem_addr(sK) + wgi * kTile, aV = smem_addr(sV) + wgi * kTile;
  const uint32_t aQ = smem_addr(sQ), adO = smem_addr(sdO);
  unsigned char* sdSw = sdS + wgi * kTile;
  const uint32_t adS = smem_addr(sdSw);
  int it = 0, n = 0;
  for (int kt = blockIdx.x; kt < nKT; kt += gridDim.x, ++n) {
    const int k0 = kt * kBwdBC, kw0 = k0 + wgi * 64;
    float kbias[2];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int kj = kw0 + kr + half * 8;
      kbias[half] = kj < len ? (keyBias ? keyBias[start + kj] * kLog2e : 0.f) : -INFINITY;
    }
    float dkacc[32], dvacc[32], st[32];
#pragma unroll
    for (int i = 0; i < 32; ++i) dkacc[i] = dvacc[i] = 0.f;
    uint32_t pa[4][4];

    wg::mbar_wait(bar(kWsBarKV), n & 1);
    {
      const int s0 = it % kWsStages;
      wg::mbar_wait(bar(kWsBarFull + s0), (it / kWsStages) & 1);
      wg::fence_proxy_async();
      float2 sv[8];
      issue_st(st, aK, aQ + s0 * kTile);
      load_stat(sv, sStat + s0 * 2 * kBwdBR);
      wg::wait<0>();
      wg::fence_regs(st);
      make_pt(pa, st, sv, 0, kw0, kr, kbias, slope2, scale2);
    }
    for (int qt = 0; qt < nQT; ++qt, ++it) {
      const int stg = it % kWsStages, q0 = qt * kBwdBR;
      const float* stat = sStat + stg * 2 * kBwdBR;
      const uint32_t aQt = aQ + stg * kTile, adOt = adO + stg * kTile;
      float dp[32];
      issue_dv_dp(dvacc, dp, pa, aV, adOt);
      float2 sv[8];
      load_stat(sv, stat + kBwdBR);
      wait_dv_dp(dvacc, dp);
      uint32_t da[4][4];
      make_ds(da, sdSw, pa, dp, sv, kr, 1 + wgi);

      // S^T of the next query tile (of this one again after the last, unused: the MMAs
      // stay unconditional), then dK += dS^T Q and dQ_part = dS K.
      const bool more = qt + 1 < nQT;
      const int sn = more ? (it + 1) % kWsStages : stg;
      if (more) {
        wg::mbar_wait(bar(kWsBarFull + sn), ((it + 1) / kWsStages) & 1);
        wg::fence_proxy_async();
      }
      issue_st(st, aK, aQ + sn * kTile);
      float dqp[32];
      issue_dk_dq(dkacc, dqp, da, aQt, adS, aK);
      load_stat(sv, sStat + sn * 2 * kBwdBR);
      wg::wait<1>();
      wg::fence_regs(st);
      if (more) make_pt(pa, st, sv, q0 + kBwdBR, kw0, kr, kbias, slope2, scale2);
      wg::wait<0>();
      wg::fence_regs(dqp);
      wg::fence_regs(dkacc);
      wg::mbar_arrive_warp(bar(kWsBarFree + stg));

      // dQ: element (j, e) is query q0 + 16*warp + lane/4 + 8*(e>>1), dim 8j + 2*(lane%4) + (e&1).
      if (nKT == 1) {
        // One key tile: add the two warpgroups' halves here and store bf16 (deterministic).
        // Two exchange buffers: warpgroup 1 refills one only after passing the next
        // barrier, which warpgroup 0 reaches after reading it.
        float* red = sRed + (qt & 1) * 64 * 64;
        if (wgi == 1) {
#pragma unroll
          for (int i = 0; i < 32; ++i) red[i * 128 + wt] = dqp[i];
        }
        named_barrier(3, 256);
        if (wgi == 0) store_dq(dq, dqp, red, wt, q0, kr, len, start, stride, headOff, scale);
      } else {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int qi = q0 + kr + half * 8;
          float2 v[8];
#pragma unroll
          for (int j = 0; j < 8; ++j) v[j] = make_float2(dqp[4 * j + 2 * half] * scale, dqp[4 * j + 2 * half + 1] * scale);
          const bool valid = qi < len;
          add_row(dqacc + (static_cast<int64_t>(start) + (valid ? qi : 0)) * rowLen + headOff, v, valid);
        }
      }
    }
    wg::mbar_arrive_warp(bar(kWsBarKVFree));  // K and V are read for the last time above

    // dK (times scale) and dV of this thread's keys.
    store_dk_dv(dk, dv, dkacc, dvacc, kw0, kr, len, start, stride, headOff, scale);
  }
#endif
}

template <typename Kernel>
void set_smem(Kernel kernel, size_t bytes) {
  MBERT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

}  // namespace

// MBERT_ATTN_SM90=0 turns the wgmma kernels off (for comparisons).
bool attention_sm90_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("MBERT_ATTN_SM90");
    if (env && env[0] == '0') return false;
    int dev = 0;
    cudaDeviceProp prop;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) return false;
    if (prop.major != 9 || prop.minor != 0) return false;
    int* flag = nullptr;
    if (cudaMalloc(&flag, sizeof(int)) != cudaSuccess) return false;
    int host = 0;
    sm90_probe_kernel<<<1, 1>>>(flag);
    const bool ok = cudaGetLastError() == cudaSuccess &&
                    cudaMemcpy(&host, flag, sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess;
    cudaFree(flag);
    return ok && host == 1;
  }();
  return enabled;
}

void attention_forward_sm90(void* out, float* lse, const void* q, const void* k, const void* v, int64_t stride,
                            const int* cuSeqlens, int B, int T, int NH, int maxSeqlen, const float* slopes,
                            const float* keyBias, float scale, cudaStream_t stream) {
  static const bool configured = [] {
    set_smem(attention_forward_sm90_kernel<false>, kFwdSmem);
    set_smem(attention_forward_sm90_kernel<true>, kFwdSmem);
    return true;
  }();
  (void)configured;
  const int tiles = std::max(1, (maxSeqlen + kFwdBR - 1) / kFwdBR);
  auto kernel = keyBias ? attention_forward_sm90_kernel<true> : attention_forward_sm90_kernel<false>;

  kernel<<<dim3(tiles, NH, B), kFwdThreads, kFwdSmem, stream>>>(
      static_cast<bf16*>(out), lse, static_cast<const bf16*>(q), static_cast<const bf16*>(k),
      static_cast<const bf16*>(v), stride, cuSeqlens, T, NH, slopes, keyBias, scale);
  MBERT_CUDA_CHECK(cudaGetLastError());
}

void attention_backward_short_sm90(void* dq, void* dk, void* dv, const void* dout, const void* out, const float* lse,
                                   const void* q, const void* k, const void* v, int64_t stride, const int* cuSeqlens,
                                   int B, int T, int NH, const float* slopes, const float* keyBias, float scale,
                                   cudaStream_t stream) {
  static const bool configured = [] {
    set_smem(attention_backward_short_sm90_kernel, kShortSmem);
    return true;
  }();
  (void)configured;
  attention_backward_short_sm90_kernel<<<dim3(1, NH, B), kShortThreads, kShortSmem, stream>>>(
      static_cast<bf16*>(dq), static_cast<bf16*>(dk), static_cast<bf16*>(dv), static_cast<const bf16*>(dout),
      static_cast<const bf16*>(out), lse, static_cast<const bf16*>(q), static_cast<const bf16*>(k),
      static_cast<const bf16*>(v), stride, cuSeqlens, T, NH, slopes, keyBias, scale);
  MBERT_CUDA_CHECK(cudaGetLastError());
}

void attention_backward_sm90(void* dq, void* dk, void* dv, float* dqacc, const void* dout, const float* lse,
                             const float* D, const void* q, const void* k, const void* v, int64_t stride,
                             const int* cuSeqlens, int B, int T, int NH, int maxSeqlen, const float* slopes,
                             const float* keyBias, float scale, cudaStream_t stream) {
  static const bool configured = [] {
    set_smem(attention_backward_ws_sm90_kernel, kWsSmem);
    return true;
  }();
  (void)configured;
  const int tiles = std::max(1, (maxSeqlen + kBwdBC - 1) / kBwdBC);
  attention_backward_ws_sm90_kernel<<<dim3(tiles, NH, B), kWsThreads, kWsSmem, stream>>>(
      static_cast<bf16*>(dq), static_cast<bf16*>(dk), static_cast<bf16*>(dv), dqacc,
      static_cast<const bf16*>(dout), lse, D, static_cast<const bf16*>(q), static_cast<const bf16*>(k),
      static_cast<const bf16*>(v), stride, cuSeqlens, T, NH, slopes, keyBias, scale);
  MBERT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace mbert
