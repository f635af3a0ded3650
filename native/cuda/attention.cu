// attention.cu — fused non-causal attention over packed (unpadded) sequences,
// FlashAttention-2 style, on bf16 tensor cores (mma.sync m16n8k16, fp32
// accumulation):
//   attention_forward_kernel   out = softmax(scale*q.k - slope_h*|i-j| + keyBias[j]) v,
//                              lse = log-sum-exp per (head, query), fp32
//   attention_prep_kernel      D = rowsum(dout * out) (fp32), zeroes the fp32 dq scratch
//   attention_backward_kernel  per (key tile, head, sequence): dk, dv in registers,
//                              dq of the tile's queries by fp32 atomics (or a direct
//                              store when the sequence has a single key tile)
//   attention_dq_convert_kernel  fp32 dq scratch -> bf16 dq
// Accumulation rule: out, lse, dq, dk, dv are activations / input gradients and
// are written with `=`. Nothing of size (S, S) ever reaches global memory.
//
// Shapes: q, k, v: (T, NH, HS) rows `stride` elements apart (3*NH*HS for a packed
// (T, 3, NH, HS) buffer); out, dout: (T, NH, HS) contiguous; lse, D: (NH, T);
// cuSeqlens: int32 (B+1); slopes: float32 (NH) or null; keyBias: float32 (T) or null.
//
// dtype: bfloat16 only (float32 and float64 throw a clear error: the kernels run on
// bf16 tensor cores; cast q, k, v first). HS in {16, 32, 64, 128}; any NH; sequence
// lengths from 1 up (tested to 2048; no upper limit in the tiling); B <= 65535.
// A query row whose keys are all masked by -inf in keyBias gets out = 0, lse = +inf.
//
// On sm_90a, HS = 64 runs the wgmma kernels of attention_sm90.cu instead (same
// contract; see there): the backward always, the forward when some sequence is longer
// than 128 tokens. Every other case uses the kernels here, which also make the
// compute_80 PTX fallback.
//
// Determinism: sequences of up to 128 tokens (one key tile) are computed without
// atomics and are bitwise reproducible; longer sequences add the dq partial sums
// of their key tiles with fp32 atomics, so dq may differ in the last bits between
// runs. out, lse, dk and dv are always deterministic.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>

#include <algorithm>

#include "cuda/attention.cuh"
#include "cuda/attention_sm90.h"
#include "cuda/kernel_util.cuh"

namespace mbert {
namespace {

using bf16 = __nv_bfloat16;
using namespace attn;

// Forward: NW warps of 16 query rows each (BR = 16*NW queries per CTA), key tiles of BC.
constexpr int kFwdWarps = 4;
constexpr int kFwdBC = 64;
// On sm_90a, batches with a sequence longer than this take the wgmma forward for HS = 64.
constexpr int kFwdShortMax = 128;
// Backward: 8 warps of 16 keys each (BC = 128 keys per CTA); query tiles of BR = 32,
// double-buffered.
constexpr int kBwdWarps = 8;
constexpr int kBwdBC = 16 * kBwdWarps;
constexpr int kBwdBR = 32;
// Rows of a sequence per block in the prep/convert kernels.
constexpr int kRowsPerBlock = 8;

// Copies rows [row0, row0 + ROWS) of one head (g points at the sequence's first row,
// head offset included) into a padded shared tile; rows at or past `nvalid` become zeros.
template <int ROWS, int HS, int NT>
__device__ __forceinline__ void load_tile(bf16* s, const bf16* g, int64_t stride, int row0, int nvalid) {
  constexpr int LD = HS + 8;
  constexpr int CPR = HS / 8;  // 16-byte chunks per row
#pragma unroll
  for (int c = threadIdx.x; c < ROWS * CPR; c += NT) {
    const int r = c / CPR, cc = c % CPR;
    const bool ok = r < nvalid;
    const bf16* src = g + static_cast<int64_t>(ok ? row0 + r : 0) * stride + cc * 8;
    cp_async16(s + r * LD + cc * 8, src, ok);
  }
}

// ---- forward ----------------------------------------------------------------------
// grid (query-tile slots, NH, B); each CTA loops over the query tiles of its sequence
// (blockIdx.x, += gridDim.x) so a too-small maxSeqlen costs speed, never correctness.
template <int HS, int NW, int BC>
__global__ void __launch_bounds__(NW * 32, (HS >= 128 ? 2 : 4) * 4 / NW)
    attention_forward_kernel(bf16* __restrict__ out, float* __restrict__ lse, const bf16* __restrict__ q,
                             const bf16* __restrict__ k, const bf16* __restrict__ v, int64_t stride,
                             const int* __restrict__ cuSeqlens, int T, int NH, const float* __restrict__ slopes,
                             const float* __restrict__ keyBias, float scale) {
  constexpr int BR = NW * 16;
  constexpr int NT = NW * 32;
  constexpr int LD = HS + 8;  // padded row: ldmatrix rows land in distinct banks
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* sQ = reinterpret_cast<bf16*>(smem_raw);
  bf16* sK = sQ + BR * LD;
  bf16* sV = sK + BC * LD;
  float* sBias = reinterpret_cast<float*>(sV + BC * LD);

  const int b = blockIdx.z, h = blockIdx.y;
  const SeqHead sh(cuSeqlens, b, h, NH, HS);
  const int start = sh.start, len = sh.len;
  if (len <= 0) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const float slope2 = slopes ? slopes[h] * kLog2e : 0.f;  // scores live in the log2 domain
  const float scale2 = scale * kLog2e;
  const int nQT = (len + BR - 1) / BR, nKT = (len + BC - 1) / BC;
  const int64_t headOff = sh.headOff;
  const bf16* qb = sh.rows(q, stride);
  const bf16* kb = sh.rows(k, stride);
  const bf16* vb = sh.rows(v, stride);

  for (int qt = blockIdx.x; qt < nQT; qt += gridDim.x) {
    const int q0 = qt * BR;
    load_tile<BR, HS, NT>(sQ, qb, stride, q0, len - q0);
    load_tile<BC, HS, NT>(sK, kb, stride, 0, len);
    for (int j = threadIdx.x; j < BC; j += NT) {
      sBias[j] = j < len ? (keyBias ? keyBias[start + j] * kLog2e : 0.f) : -INFINITY;
    }
    cp_async_commit();

    float o[HS / 8][4];
#pragma unroll
    for (int i = 0; i < HS / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    float m[2] = {-INFINITY, -INFINITY};
    float l[2] = {0.f, 0.f};
    uint32_t qf[HS / 16][4];
    const int qi0 = q0 + warp * 16 + lane / 4;  // this thread's rows: qi0, qi0 + 8

    for (int kt = 0; kt < nKT; ++kt) {
      const int k0 = kt * BC;
      load_tile<BC, HS, NT>(sV, vb, stride, k0, len - k0);
      cp_async_commit();
      cp_async_wait<1>();  // Q (first tile) and K_kt have landed
      __syncthreads();
      if (kt == 0) {
#pragma unroll
        for (int kk = 0; kk < HS / 16; ++kk) {
          ldmatrix_x4(qf[kk], sQ + (warp * 16 + lane % 16) * LD + kk * 16 + (lane / 16) * 8);
        }
      }
      // S = Q K^T for this warp's 16 rows x BC keys.
      float s[BC / 8][4];
#pragma unroll
      for (int i = 0; i < BC / 8; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < HS / 16; ++kk) {
#pragma unroll
        for (int nb = 0; nb < BC / 8; nb += 2) {
          uint32_t bfr[4];
          ldmatrix_x4(bfr, sK + (nb * 8 + (lane / 16) * 8 + lane % 8) * LD + kk * 16 + ((lane / 8) % 2) * 8);
          mma_bf16(s[nb], qf[kk], bfr[0], bfr[1]);
          mma_bf16(s[nb + 1], qf[kk], bfr[2], bfr[3]);
        }
      }
      // Scale, ALiBi, key bias / mask (log2 domain). query - key = dist0 + (an
      // immediate): no integer-to-float conversion per score.
      const float dist0 = static_cast<float>(qi0 - k0 - (lane % 4) * 2);
#pragma unroll
      for (int nb = 0; nb < BC / 8; ++nb) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int c = nb * 8 + (lane % 4) * 2 + (e & 1);
          const float dist = dist0 + static_cast<float>((e >= 2 ? 8 : 0) - nb * 8 - (e & 1));
          s[nb][e] = s[nb][e] * scale2 + sBias[c] - slope2 * fabsf(dist);
        }
      }
      __syncthreads();  // every warp is done with sK and sBias
      if (kt + 1 < nKT) {
        const int k1 = k0 + BC;
        load_tile<BC, HS, NT>(sK, kb, stride, k1, len - k1);
        for (int j = threadIdx.x; j < BC; j += NT) {
          sBias[j] = k1 + j < len ? (keyBias ? keyBias[start + k1 + j] * kLog2e : 0.f) : -INFINITY;
        }
        cp_async_commit();
      }
      // Online softmax; a row's 4 owners are the lanes of one quad.
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float mx = -INFINITY;
#pragma unroll
        for (int nb = 0; nb < BC / 8; ++nb) mx = fmaxf(mx, fmaxf(s[nb][2 * half], s[nb][2 * half + 1]));
        mx = quad_max(mx);
        const float mNew = fmaxf(m[half], mx);
        const float mUse = mNew == -INFINITY ? 0.f : mNew;  // all masked so far: p = 0, no NaN
        const float alpha = fast_exp2(m[half] - mUse);
        m[half] = mNew;
        float sum = 0.f;
#pragma unroll
        for (int nb = 0; nb < BC / 8; ++nb) {
          s[nb][2 * half] = fast_exp2(s[nb][2 * half] - mUse);
          s[nb][2 * half + 1] = fast_exp2(s[nb][2 * half + 1] - mUse);
          sum += s[nb][2 * half] + s[nb][2 * half + 1];
        }
        l[half] = l[half] * alpha + sum;  // per-thread partial; the quad is summed at the end
#pragma unroll
        for (int nd = 0; nd < HS / 8; ++nd) {
          o[nd][2 * half] *= alpha;
          o[nd][2 * half + 1] *= alpha;
        }
      }
      if (kt + 1 < nKT) {
        cp_async_wait<1>();
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();  // V_kt visible
      // O += P V; the S accumulators are already laid out as mma A fragments.
#pragma unroll
      for (int kk = 0; kk < BC / 16; ++kk) {
        uint32_t a[4];
        a[0] = pack_bf16(s[2 * kk][0], s[2 * kk][1]);
        a[1] = pack_bf16(s[2 * kk][2], s[2 * kk][3]);
        a[2] = pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        a[3] = pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
        for (int nd = 0; nd < HS / 8; nd += 2) {
          uint32_t bfr[4];
          ldmatrix_x4_trans(bfr, sV + (kk * 16 + ((lane / 8) % 2) * 8 + lane % 8) * LD + nd * 8 + (lane / 16) * 8);
          mma_bf16(o[nd], a, bfr[0], bfr[1]);
          mma_bf16(o[nd + 1], a, bfr[2], bfr[3]);
        }
      }
      __syncthreads();  // every warp is done with sV
    }

    // Finish: O / l, lse = ln(sum exp(score)); stage the warp's rows in sQ for 16-byte stores.
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const float sum = quad_sum(l[half]);
      const float inv = sum > 0.f ? 1.f / sum : 0.f;
      const int r = warp * 16 + lane / 4 + half * 8;
#pragma unroll
      for (int nd = 0; nd < HS / 8; ++nd) {
        *reinterpret_cast<uint32_t*>(sQ + r * LD + nd * 8 + (lane % 4) * 2) =
            pack_bf16(o[nd][2 * half] * inv, o[nd][2 * half + 1] * inv);
      }
      const int qi = q0 + r;
      if (lane % 4 == 0 && qi < len) {
        lse[static_cast<int64_t>(h) * T + start + qi] = row_lse(m[half], sum);
      }
    }
    __syncwarp();
    constexpr int CPR = HS / 8;
    for (int c = lane; c < 16 * CPR; c += 32) {
      const int r = warp * 16 + c / CPR, cc = c % CPR;
      if (q0 + r < len) {
        *reinterpret_cast<uint4*>(out + (static_cast<int64_t>(start) + q0 + r) * NH * HS + headOff + cc * 8) =
            *reinterpret_cast<const uint4*>(sQ + r * LD + cc * 8);
      }
    }
    __syncthreads();  // sQ is reloaded by the next query tile
  }
}

// ---- backward: prep -------------------------------------------------------------
// grid (row-block slots, B). D(NH, T) = rowsum(dout * out) in fp32; zeroes the rows of
// the fp32 dq scratch (T, NH, HS) that belong to sequences longer than one key tile.
template <int HS>
__global__ void attention_prep_kernel(float* __restrict__ D, float* __restrict__ dqacc,
                                      const bf16* __restrict__ dout, const bf16* __restrict__ out,
                                      const int* __restrict__ cuSeqlens, int T, int NH) {
  const int b = blockIdx.y;
  const int start = cuSeqlens[b];
  const int len = cuSeqlens[b + 1] - start;
  const int rowLen = NH * HS;
  const bool zero = dqacc != nullptr && len > kBwdBC;
  for (int r0 = blockIdx.x * kRowsPerBlock; r0 < len; r0 += gridDim.x * kRowsPerBlock) {
    const int nrows = min(kRowsPerBlock, len - r0);
    const int64_t base = (static_cast<int64_t>(start) + r0) * rowLen;
    // One thread per (row, head): HS/8 16-byte loads of each operand.
    for (int i = threadIdx.x; i < nrows * NH; i += blockDim.x) {
      const int r = i / NH, hh = i % NH;
      const bf16* a = dout + base + static_cast<int64_t>(r) * rowLen + hh * HS;
      const bf16* o = out + base + static_cast<int64_t>(r) * rowLen + hh * HS;
      float acc = 0.f;
#pragma unroll
      for (int c = 0; c < HS; c += 8) {
        uint4 av = *reinterpret_cast<const uint4*>(a + c);
        uint4 ov = *reinterpret_cast<const uint4*>(o + c);
        const __nv_bfloat162* a2 = reinterpret_cast<const __nv_bfloat162*>(&av);
        const __nv_bfloat162* o2 = reinterpret_cast<const __nv_bfloat162*>(&ov);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          float2 af = __bfloat1622float2(a2[j]);
          float2 of = __bfloat1622float2(o2[j]);
          acc += af.x * of.x + af.y * of.y;
        }
      }
      D[static_cast<int64_t>(hh) * T + start + r0 + r] = acc;
    }
    if (zero) {
      float4* z = reinterpret_cast<float4*>(dqacc + base);
      for (int i = threadIdx.x; i < nrows * rowLen / 4; i += blockDim.x) z[i] = make_float4(0.f, 0.f, 0.f, 0.f);
    }
  }
}

// ---- backward: main ---------------------------------------------------------------
// grid (key-tile slots, NH, B). Warp w owns keys k0 + 16w .. +15 and works on the
// transposed problem (S^T = K Q^T), so P^T and dS^T are mma A fragments in registers
// for dV += P^T dO and dK += dS^T Q. dS^T goes through shared memory for dQ = dS K.
// The query tiles (Q, dO, lse, D) are double-buffered: tile qt+1 is fetched during tile
// qt. P is kept as bf16 fragments once dV is done, to save registers. MINB: CTAs per SM.
template <int HS, int MINB>
__global__ void __launch_bounds__(kBwdWarps * 32, MINB)
    attention_backward_kernel(bf16* __restrict__ dq, bf16* __restrict__ dk, bf16* __restrict__ dv,
                              float* __restrict__ dqacc, const bf16* __restrict__ dout,
                              const float* __restrict__ lse, const float* __restrict__ D,
                              const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                              int64_t stride, const int* __restrict__ cuSeqlens, int T, int NH,
                              const float* __restrict__ slopes, const float* __restrict__ keyBias, float scale) {
  constexpr int BC = kBwdBC;
  constexpr int BR = kBwdBR;
  constexpr int NBUF = 2;
  constexpr int NT = kBwdWarps * 32;
  constexpr int LD = HS + 8;
  constexpr int LDS = BR + 8;  // dS^T row (keys x queries)
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* sK = reinterpret_cast<bf16*>(smem_raw);
  bf16* sV = sK + BC * LD;
  bf16* sQbuf = sV + BC * LD;              // NBUF x (BR, LD)
  bf16* sdObuf = sQbuf + NBUF * BR * LD;   // NBUF x (BR, LD)
  bf16* sdS = sdObuf + NBUF * BR * LD;
  float* sStat = reinterpret_cast<float*>(sdS + BC * LDS);  // NBUF x (lse*log2e (BR), D (BR))

  const int b = blockIdx.z, h = blockIdx.y;
  const SeqHead sh(cuSeqlens, b, h, NH, HS);
  const int start = sh.start, len = sh.len;
  if (len <= 0) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const float slope2 = slopes ? slopes[h] * kLog2e : 0.f;
  const float scale2 = scale * kLog2e;
  const int nQT = (len + BR - 1) / BR, nKT = (len + BC - 1) / BC;
  const int64_t headOff = sh.headOff, rowLen = sh.rowLen;
  const bf16* qb = sh.rows(q, stride);
  const bf16* kb = sh.rows(k, stride);
  const bf16* vb = sh.rows(v, stride);
  const bf16* dob = sh.rows(dout, rowLen);
  const float* lseb = sh.stats(lse, h, T);
  const float* Db = sh.stats(D, h, T);

  // Issues the loads of query tile `qt` into buffer `buf` (stats by plain stores,
  // visible after the next __syncthreads).
  auto fetch_query_tile = [&](int qt, int buf) {
    const int q1 = qt * BR;
    load_tile<BR, HS, NT>(sQbuf + buf * BR * LD, qb, stride, q1, len - q1);
    load_tile<BR, HS, NT>(sdObuf + buf * BR * LD, dob, rowLen, q1, len - q1);
    load_query_stats<BR>(sStat + buf * 2 * BR, lseb, Db, q1, len, threadIdx.x, NT);
  };

  for (int kt = blockIdx.x; kt < nKT; kt += gridDim.x) {
    const int k0 = kt * BC;
    load_tile<BC, HS, NT>(sK, kb, stride, k0, len - k0);
    load_tile<BC, HS, NT>(sV, vb, stride, k0, len - k0);
    fetch_query_tile(0, 0);
    cp_async_commit();

    // This thread's key rows kr0, kr0 + 8 (tile-local) and their bias (log2 domain).
    const int kr0 = warp * 16 + lane / 4;
    float kbias[2];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int kj = k0 + kr0 + half * 8;
      kbias[half] = kj < len ? (keyBias ? keyBias[start + kj] * kLog2e : 0.f) : -INFINITY;
    }

    float dkacc[HS / 8][4], dvacc[HS / 8][4];
#pragma unroll
    for (int i = 0; i < HS / 8; ++i) {
      dkacc[i][0] = dkacc[i][1] = dkacc[i][2] = dkacc[i][3] = 0.f;
      dvacc[i][0] = dvacc[i][1] = dvacc[i][2] = dvacc[i][3] = 0.f;
    }

    for (int qt = 0; qt < nQT; ++qt) {
      const int q0 = qt * BR;
      const int buf = qt & 1;
      const bf16* sQ = sQbuf + buf * BR * LD;
      const bf16* sdO = sdObuf + buf * BR * LD;
      cp_async_wait<0>();
      __syncthreads();
      if (qt + 1 < nQT) {
        fetch_query_tile(qt + 1, buf ^ 1);  // buffer buf^1 was last read in tile qt-1
        cp_async_commit();
      }
      // Per-column (query) statistics; queries past the end have lse = +inf, so P = 0.
      const float* stat = sStat + buf * 2 * BR;

      // S^T = K Q^T (16 keys x BR queries per warp), then P^T.
      float p[BR / 8][4];
#pragma unroll
      for (int i = 0; i < BR / 8; ++i) p[i][0] = p[i][1] = p[i][2] = p[i][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < HS / 16; ++kk) {
        uint32_t a[4];
        ldmatrix_x4(a, sK + (warp * 16 + lane % 16) * LD + kk * 16 + (lane / 16) * 8);
#pragma unroll
        for (int nb = 0; nb < BR / 8; nb += 2) {
          uint32_t bfr[4];
          ldmatrix_x4(bfr, sQ + (nb * 8 + (lane / 16) * 8 + lane % 8) * LD + kk * 16 + ((lane / 8) % 2) * 8);
          mma_bf16(p[nb], a, bfr[0], bfr[1]);
          mma_bf16(p[nb + 1], a, bfr[2], bfr[3]);
        }
      }
      const float dist0 = static_cast<float>(q0 + (lane % 4) * 2 - k0 - kr0);  // query - key, as in the forward
#pragma unroll
      for (int nb = 0; nb < BR / 8; ++nb) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int half = e >> 1;
          const int c = nb * 8 + (lane % 4) * 2 + (e & 1);
          const float x = p[nb][e] * scale2 + kbias[half] -
                          slope2 * fabsf(dist0 + static_cast<float>(nb * 8 + (e & 1) - half * 8));
          p[nb][e] = fast_exp2(x - stat[c]);
        }
      }

      // dV += P^T dO.
      uint32_t pa[BR / 16][4];
#pragma unroll
      for (int kk = 0; kk < BR / 16; ++kk) {
        pa[kk][0] = pack_bf16(p[2 * kk][0], p[2 * kk][1]);
        pa[kk][1] = pack_bf16(p[2 * kk][2], p[2 * kk][3]);
        pa[kk][2] = pack_bf16(p[2 * kk + 1][0], p[2 * kk + 1][1]);
        pa[kk][3] = pack_bf16(p[2 * kk + 1][2], p[2 * kk + 1][3]);
      }
#pragma unroll
      for (int kk = 0; kk < BR / 16; ++kk) {
        const uint32_t(&a)[4] = pa[kk];
#pragma unroll
        for (int nd = 0; nd < HS / 8; nd += 2) {
          uint32_t bfr[4];
          ldmatrix_x4_trans(bfr, sdO + (kk * 16 + ((lane / 8) % 2) * 8 + lane % 8) * LD + nd * 8 + (lane / 16) * 8);
          mma_bf16(dvacc[nd], a, bfr[0], bfr[1]);
          mma_bf16(dvacc[nd + 1], a, bfr[2], bfr[3]);
        }
      }

      // dP^T = V dO^T, then dS^T = P^T * (dP^T - D) (the factor `scale` is applied at the stores).
      float ds[BR / 8][4];
#pragma unroll
      for (int i = 0; i < BR / 8; ++i) ds[i][0] = ds[i][1] = ds[i][2] = ds[i][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < HS / 16; ++kk) {
        uint32_t a[4];
        ldmatrix_x4(a, sV + (warp * 16 + lane % 16) * LD + kk * 16 + (lane / 16) * 8);
#pragma unroll
        for (int nb = 0; nb < BR / 8; nb += 2) {
          uint32_t bfr[4];
          ldmatrix_x4(bfr, sdO + (nb * 8 + (lane / 16) * 8 + lane % 8) * LD + kk * 16 + ((lane / 8) % 2) * 8);
          mma_bf16(ds[nb], a, bfr[0], bfr[1]);
          mma_bf16(ds[nb + 1], a, bfr[2], bfr[3]);
        }
      }
#pragma unroll
      for (int nb = 0; nb < BR / 8; ++nb) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          // P from its bf16 fragment (fp32 P is dead by now: fewer live registers).
          const uint32_t w = pa[nb / 2][(nb & 1) * 2 + (e >> 1)];
          const float pv = __uint_as_float((e & 1) ? (w & 0xffff0000u) : (w << 16));
          const int c = nb * 8 + (lane % 4) * 2 + (e & 1);
          ds[nb][e] = pv * (ds[nb][e] - stat[BR + c]);
        }
      }

      // dK += dS^T Q, and dS^T -> shared memory for dQ.
#pragma unroll
      for (int kk = 0; kk < BR / 16; ++kk) {
        uint32_t a[4];
        a[0] = pack_bf16(ds[2 * kk][0], ds[2 * kk][1]);
        a[1] = pack_bf16(ds[2 * kk][2], ds[2 * kk][3]);
        a[2] = pack_bf16(ds[2 * kk + 1][0], ds[2 * kk + 1][1]);
        a[3] = pack_bf16(ds[2 * kk + 1][2], ds[2 * kk + 1][3]);
        const int col = kk * 16 + (lane % 4) * 2;
        *reinterpret_cast<uint32_t*>(sdS + kr0 * LDS + col) = a[0];
        *reinterpret_cast<uint32_t*>(sdS + (kr0 + 8) * LDS + col) = a[1];
        *reinterpret_cast<uint32_t*>(sdS + kr0 * LDS + col + 8) = a[2];
        *reinterpret_cast<uint32_t*>(sdS + (kr0 + 8) * LDS + col + 8) = a[3];
#pragma unroll
        for (int nd = 0; nd < HS / 8; nd += 2) {
          uint32_t bfr[4];
          ldmatrix_x4_trans(bfr, sQ + (kk * 16 + ((lane / 8) % 2) * 8 + lane % 8) * LD + nd * 8 + (lane / 16) * 8);
          mma_bf16(dkacc[nd], a, bfr[0], bfr[1]);
          mma_bf16(dkacc[nd + 1], a, bfr[2], bfr[3]);
        }
      }
      __syncthreads();  // dS^T complete

      // dQ(BR x HS) = dS K, split over the warps in 16x16 units.
      constexpr int NU = (BR / 16) * (HS / 16);
#pragma unroll
      for (int u = warp; u < NU; u += kBwdWarps) {
        const int mb = u / (HS / 16), n16 = u % (HS / 16);
        float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
        for (int kk = 0; kk < BC / 16; ++kk) {
          uint32_t a[4], bfr[4];
          const int mat = lane / 8;
          ldmatrix_x4_trans(a, sdS + (kk * 16 + (mat / 2) * 8 + lane % 8) * LDS + mb * 16 + (mat % 2) * 8);
          ldmatrix_x4_trans(bfr, sK + (kk * 16 + (mat % 2) * 8 + lane % 8) * LD + n16 * 16 + (mat / 2) * 8);
          mma_bf16(acc[0], a, bfr[0], bfr[1]);
          mma_bf16(acc[1], a, bfr[2], bfr[3]);
        }
#pragma unroll
        for (int j = 0; j < 2; ++j) {
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const int qi = q0 + mb * 16 + lane / 4 + half * 8;
            if (qi >= len) continue;
            const int col = n16 * 16 + j * 8 + (lane % 4) * 2;
            const float x0 = acc[j][2 * half] * scale, x1 = acc[j][2 * half + 1] * scale;
            if (nKT == 1) {
              *reinterpret_cast<uint32_t*>(dq + (static_cast<int64_t>(start) + qi) * stride + headOff + col) =
                  pack_bf16(x0, x1);
            } else if (dqacc != nullptr) {
              float* dst = dqacc + (static_cast<int64_t>(start) + qi) * rowLen + headOff + col;
              atomicAdd(dst, x0);
              atomicAdd(dst + 1, x1);
            } else {
              // maxSeqlen was smaller than this sequence: no scratch was reserved. Make it loud.
              *reinterpret_cast<uint32_t*>(dq + (static_cast<int64_t>(start) + qi) * stride + headOff + col) =
                  pack_bf16(NAN, NAN);
            }
          }
        }
      }
    }

    // dK (times scale) and dV of this warp's 16 keys.
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int kj = k0 + kr0 + half * 8;
      if (kj >= len) continue;
      const int64_t row = (static_cast<int64_t>(start) + kj) * stride + headOff;
#pragma unroll
      for (int nd = 0; nd < HS / 8; ++nd) {
        const int col = nd * 8 + (lane % 4) * 2;
        *reinterpret_cast<uint32_t*>(dk + row + col) =
            pack_bf16(dkacc[nd][2 * half] * scale, dkacc[nd][2 * half + 1] * scale);
        *reinterpret_cast<uint32_t*>(dv + row + col) = pack_bf16(dvacc[nd][2 * half], dvacc[nd][2 * half + 1]);
      }
    }
    __syncthreads();  // sK/sV/sQ/sdO are reloaded by the next key tile
  }
}

// grid (row-block slots, B): fp32 dq scratch -> bf16 dq (stride layout), for the
// sequences longer than one key tile (the others were stored directly).
template <int HS>
__global__ void attention_dq_convert_kernel(bf16* __restrict__ dq, const float* __restrict__ dqacc, int64_t stride,
                                            const int* __restrict__ cuSeqlens, int NH) {
  const int b = blockIdx.y;
  const int start = cuSeqlens[b];
  const int len = cuSeqlens[b + 1] - start;
  if (len <= kBwdBC) return;
  const int rowLen = NH * HS;
  for (int r0 = blockIdx.x * kRowsPerBlock; r0 < len; r0 += gridDim.x * kRowsPerBlock) {
    const int nrows = min(kRowsPerBlock, len - r0);
    for (int i = threadIdx.x; i < nrows * rowLen / 4; i += blockDim.x) {
      const int r = i / (rowLen / 4), c = (i % (rowLen / 4)) * 4;
      const int64_t t = static_cast<int64_t>(start) + r0 + r;
      const float4 x = *reinterpret_cast<const float4*>(dqacc + t * rowLen + c);
      uint2 y;
      y.x = pack_bf16(x.x, x.y);
      y.y = pack_bf16(x.z, x.w);
      *reinterpret_cast<uint2*>(dq + t * stride + c) = y;
    }
  }
}

// ---- launchers ----------------------------------------------------------------------

struct AttnShape {
  int B, T, NH, HS, maxSeqlen;
  int64_t stride;
};

template <int HS, int NW>
void forward_launch(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnShape& s,
                    const int* cuSeqlens, const float* slopes, const float* keyBias, float scale, cudaStream_t stream) {
  constexpr int BR = 16 * NW;
  constexpr int LD = HS + 8;
  const size_t smem = static_cast<size_t>(BR + 2 * kFwdBC) * LD * sizeof(bf16) + kFwdBC * sizeof(float);
  auto kernel = attention_forward_kernel<HS, NW, kFwdBC>;
  static const bool configured = [&] {
    MBERT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    return true;
  }();
  (void)configured;
  const int tiles = std::max(1, (s.maxSeqlen + BR - 1) / BR);
  dim3 grid(tiles, s.NH, s.B);
  kernel<<<grid, NW * 32, smem, stream>>>(out, lse, q, k, v, s.stride, cuSeqlens, s.T, s.NH, slopes, keyBias, scale);
  MBERT_CUDA_CHECK(cudaGetLastError());
}

// The mma.sync main backward kernel (every head size; the compute_80 fallback).
template <int HS, int MINB>
void backward_main_launch(bf16* dq, bf16* dk, bf16* dv, const float* D, float* dqacc, const bf16* dout,
                          const float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnShape& s,
                          const int* cuSeqlens, const float* slopes, const float* keyBias, float scale,
                          cudaStream_t stream) {
  constexpr int BR = kBwdBR;
  constexpr int LD = HS + 8;
  const size_t smem = (static_cast<size_t>(2 * kBwdBC + 4 * BR) * LD + static_cast<size_t>(kBwdBC) * (BR + 8)) *
                          sizeof(bf16) +
                      static_cast<size_t>(4 * BR) * sizeof(float);
  auto kernel = attention_backward_kernel<HS, MINB>;
  static const bool configured = [&] {
    MBERT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    return true;
  }();
  (void)configured;
  const int tiles = std::max(1, (s.maxSeqlen + kBwdBC - 1) / kBwdBC);
  kernel<<<dim3(tiles, s.NH, s.B), kBwdWarps * 32, smem, stream>>>(dq, dk, dv, dqacc, dout, lse, D, q, k, v, s.stride,
                                                                    cuSeqlens, s.T, s.NH, slopes, keyBias, scale);
  MBERT_CUDA_CHECK(cudaGetLastError());
}

template <int HS, int MINB>
void backward_launch(bf16* dq, bf16* dk, bf16* dv, float* D, float* dqacc, const bf16* dout, const bf16* out,
                     const float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnShape& s,
                     const int* cuSeqlens, const float* slopes, const float* keyBias, float scale,
                     cudaStream_t stream) {
  if (HS == 64 && s.maxSeqlen <= kBwdBC && attention_sm90_enabled()) {
    attention_backward_short_sm90(dq, dk, dv, dout, out, lse, q, k, v, s.stride, cuSeqlens, s.B, s.T, s.NH, slopes,
                                  keyBias, scale, stream);
    return;
  }
  const int rowBlocks = std::max(1, (s.maxSeqlen + kRowsPerBlock - 1) / kRowsPerBlock);
  attention_prep_kernel<HS><<<dim3(rowBlocks, s.B), 256, 0, stream>>>(D, dqacc, dout, out, cuSeqlens, s.T, s.NH);
  MBERT_CUDA_CHECK(cudaGetLastError());

  if (HS == 64 && attention_sm90_enabled()) {
    attention_backward_sm90(dq, dk, dv, dqacc, dout, lse, D, q, k, v, s.stride, cuSeqlens, s.B, s.T, s.NH,
                            s.maxSeqlen, slopes, keyBias, scale, stream);
  } else {
    backward_main_launch<HS, MINB>(dq, dk, dv, D, dqacc, dout, lse, q, k, v, s, cuSeqlens, slopes, keyBias, scale,
                                   stream);
  }
  if (dqacc != nullptr) {
    attention_dq_convert_kernel<HS><<<dim3(rowBlocks, s.B), 256, 0, stream>>>(dq, dqacc, s.stride, cuSeqlens, s.NH);
    MBERT_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace

// out: (T, NH, HS)  lse: (NH, T)  q, k, v: (T, NH, HS) rows `stride` apart  cuSeqlens: (B+1)
void attention_forward(void* out, float* lse, const void* q, const void* k, const void* v, int64_t stride,
                       const int* cuSeqlens, int B, int T, int NH, int HS, int maxSeqlen, const float* slopes,
                       const float* keyBias, float scale, cudaStream_t stream) {
  if (B == 0 || T == 0) return;
  if (HS == 64 && maxSeqlen > kFwdShortMax && attention_sm90_enabled()) {
    attention_forward_sm90(out, lse, q, k, v, stride, cuSeqlens, B, T, NH, maxSeqlen, slopes, keyBias, scale, stream);
    return;
  }
  const AttnShape s{B, T, NH, HS, maxSeqlen, stride};
  auto* o = static_cast<bf16*>(out);
  auto* qq = static_cast<const bf16*>(q);
  auto* kk = static_cast<const bf16*>(k);
  auto* vv = static_cast<const bf16*>(v);
  switch (HS) {
    case 16: forward_launch<16, kFwdWarps>(o, lse, qq, kk, vv, s, cuSeqlens, slopes, keyBias, scale, stream); break;
    case 32: forward_launch<32, kFwdWarps>(o, lse, qq, kk, vv, s, cuSeqlens, slopes, keyBias, scale, stream); break;
    case 64: forward_launch<64, kFwdWarps>(o, lse, qq, kk, vv, s, cuSeqlens, slopes, keyBias, scale, stream); break;
    case 128: forward_launch<128, kFwdWarps>(o, lse, qq, kk, vv, s, cuSeqlens, slopes, keyBias, scale, stream); break;
    default: throw Error(str("attentionForward: head size ", HS, " is not supported on cuda (use 16, 32, 64 or 128)"));
  }
}

// Bytes of device scratch attention_backward needs: D (NH, T) fp32, plus the fp32 dq
// accumulator (T, NH, HS) when some sequence spans more than one key tile.
size_t attention_backward_scratch_bytes(int T, int NH, int HS, int maxSeqlen) {
  size_t bytes = (static_cast<size_t>(NH) * T * sizeof(float) + 255) / 256 * 256;
  if (maxSeqlen > kBwdBC) bytes += static_cast<size_t>(T) * NH * HS * sizeof(float);
  return bytes;
}

// dq, dk, dv: (T, NH, HS) rows `stride` apart, written with `=`; scratch: 256-byte
// aligned, attention_backward_scratch_bytes() long.
void attention_backward(void* dq, void* dk, void* dv, const void* dout, const void* out, const float* lse,
                        const void* q, const void* k, const void* v, int64_t stride, const int* cuSeqlens, int B,
                        int T, int NH, int HS, int maxSeqlen, const float* slopes, const float* keyBias, float scale,
                        void* scratch, cudaStream_t stream) {
  if (B == 0 || T == 0) return;
  const AttnShape s{B, T, NH, HS, maxSeqlen, stride};
  auto* D = static_cast<float*>(scratch);
  float* dqacc = nullptr;
  if (maxSeqlen > kBwdBC) {
    dqacc = reinterpret_cast<float*>(static_cast<char*>(scratch) +
                                     (static_cast<size_t>(NH) * T * sizeof(float) + 255) / 256 * 256);
  }
  auto* a = static_cast<bf16*>(dq);
  auto* bk = static_cast<bf16*>(dk);
  auto* c = static_cast<bf16*>(dv);
  auto* g = static_cast<const bf16*>(dout);
  auto* o = static_cast<const bf16*>(out);
  auto* qq = static_cast<const bf16*>(q);
  auto* kk = static_cast<const bf16*>(k);
  auto* vv = static_cast<const bf16*>(v);
  // 32-query tiles: dk/dv accumulators fit in registers with two CTAs per SM for
  // HS <= 64 (measured 26% faster than 64-query tiles at one CTA per SM, S=128).
#define MBERT_ATTN_BWD(HS_, MINB_)                                                                        \
  backward_launch<HS_, MINB_>(a, bk, c, D, dqacc, g, o, lse, qq, kk, vv, s, cuSeqlens, slopes, keyBias, scale, \
                              stream)
  switch (HS) {
    case 16: MBERT_ATTN_BWD(16, 2); break;
    case 32: MBERT_ATTN_BWD(32, 2); break;
    case 64: MBERT_ATTN_BWD(64, 2); break;
    case 128: MBERT_ATTN_BWD(128, 1); break;
    default: throw Error(str("attentionBackward: head size ", HS, " is not supported on cuda (use 16, 32, 64 or 128)"));
  }
#undef MBERT_ATTN_BWD
}

// ---- N-API wrappers ------------------------------------------------------------------

namespace {

struct AttnArgs {
  int B, T, NH, HS, maxSeqlen;
  int64_t stride;
};

// Validates the shape arguments (shared by forward and backward) starting at `i0`
// (qkvStride, cuSeqlens, B, T, NH, HS, maxSeqlen).
AttnArgs attn_shape(const Args& a, int iStride, int iB) {
  AttnArgs s;
  s.stride = a.i64(iStride);
  const int64_t B = a.size(iB, "B"), T = a.size(iB + 1, "T"), NH = a.i64(iB + 2), HS = a.i64(iB + 3);
  const int64_t maxSeqlen = a.size(iB + 4, "maxSeqlen");
  MBERT_CHECK(HS == 16 || HS == 32 || HS == 64 || HS == 128, "cuda.", a.fn(), ": head size HS = ", HS,
              " is not supported on cuda (use 16, 32, 64 or 128)");
  MBERT_CHECK(NH >= 1 && NH <= 65535, "cuda.", a.fn(), ": NH must be in [1, 65535], got ", NH);
  MBERT_CHECK(B <= 65535, "cuda.", a.fn(), ": B = ", B, " sequences is over the limit of 65535 per call");
  MBERT_CHECK(T < (int64_t(1) << 31) && maxSeqlen < (int64_t(1) << 31), "cuda.", a.fn(), ": T and maxSeqlen must be < 2^31");
  MBERT_CHECK(s.stride >= NH * HS, "cuda.", a.fn(), ": qkvStride = ", s.stride, " must be >= NH*HS = ", NH * HS);
  MBERT_CHECK(s.stride % 8 == 0, "cuda.", a.fn(), ": qkvStride = ", s.stride,
              " must be a multiple of 8 elements (16-byte rows)");
  s.B = static_cast<int>(B);
  s.T = static_cast<int>(T);
  s.NH = static_cast<int>(NH);
  s.HS = static_cast<int>(HS);
  s.maxSeqlen = static_cast<int>(maxSeqlen);
  return s;
}

// bf16 only: the kernels run on bf16 tensor cores.
void attn_dtype(const Args& a) {
  const DType d = a.dtype(0);
  if (d == DType::F64) cuda::throw_f64(a.fn());
  MBERT_CHECK(d == DType::BF16, "cuda.", a.fn(), ": ", dtype_name(d),
              " is not supported on cuda; attention runs on bf16 tensor cores (cast q, k, v to bfloat16)");
}

// A q/k/v operand: T rows `stride` apart, NH*HS elements each, 16-byte aligned.
const void* attn_qkv(const Args& a, int i, const AttnArgs& s, const char* what) {
  const int64_t count = s.T == 0 ? 0 : (int64_t(s.T) - 1) * s.stride + int64_t(s.NH) * s.HS;
  const void* p = cuda::dbuf(a, i, DType::BF16, count, what);
  MBERT_CHECK(p == nullptr || cuda::aligned16(p), "cuda.", a.fn(), ": argument ", i, " (", what,
              ") must be 16-byte aligned");
  return p;
}

Napi::Value attention_forward_js(const Napi::CallbackInfo& info) {
  Args a(info, "attentionForward", 16);
  attn_dtype(a);
  const AttnArgs s = attn_shape(a, 6, 8);
  const int64_t n = int64_t(s.T) * s.NH * s.HS;
  void* out = cuda::dbuf(a, 1, DType::BF16, n, "out");
  MBERT_CHECK(out == nullptr || cuda::aligned16(out), "cuda.attentionForward: out must be 16-byte aligned");
  auto* lse = cuda::dbuf<float>(a, 2, DType::F32, int64_t(s.NH) * s.T, "lse");
  const void* q = attn_qkv(a, 3, s, "q");
  const void* k = attn_qkv(a, 4, s, "k");
  const void* v = attn_qkv(a, 5, s, "v");
  auto* cu = cuda::dbuf<const int>(a, 7, DType::I32, int64_t(s.B) + 1, "cuSeqlens");
  auto* slopes = cuda::dbuf<const float>(a, 13, DType::F32, s.NH, "slopes", false);
  auto* keyBias = cuda::dbuf<const float>(a, 14, DType::F32, s.T, "keyBias", false);
  const float scale = static_cast<float>(a.f64(15));
  attention_forward(out, lse, q, k, v, s.stride, cu, s.B, s.T, s.NH, s.HS, s.maxSeqlen, slopes, keyBias, scale,
                    cuda::stream());
  return cuda::undefined(a);
}

Napi::Value attention_backward_js(const Napi::CallbackInfo& info) {
  Args a(info, "attentionBackward", 20);
  attn_dtype(a);
  const AttnArgs s = attn_shape(a, 10, 12);
  const int64_t n = int64_t(s.T) * s.NH * s.HS;
  void* dq = const_cast<void*>(attn_qkv(a, 1, s, "dq"));
  void* dk = const_cast<void*>(attn_qkv(a, 2, s, "dk"));
  void* dv = const_cast<void*>(attn_qkv(a, 3, s, "dv"));
  const void* dout = cuda::dbuf(a, 4, DType::BF16, n, "dout");
  const void* out = cuda::dbuf(a, 5, DType::BF16, n, "out");
  MBERT_CHECK((dout == nullptr || cuda::aligned16(dout)) && (out == nullptr || cuda::aligned16(out)),
              "cuda.attentionBackward: dout and out must be 16-byte aligned");
  auto* lse = cuda::dbuf<const float>(a, 6, DType::F32, int64_t(s.NH) * s.T, "lse");
  const void* q = attn_qkv(a, 7, s, "q");
  const void* k = attn_qkv(a, 8, s, "k");
  const void* v = attn_qkv(a, 9, s, "v");
  auto* cu = cuda::dbuf<const int>(a, 11, DType::I32, int64_t(s.B) + 1, "cuSeqlens");
  auto* slopes = cuda::dbuf<const float>(a, 17, DType::F32, s.NH, "slopes", false);
  auto* keyBias = cuda::dbuf<const float>(a, 18, DType::F32, s.T, "keyBias", false);
  const float scale = static_cast<float>(a.f64(19));
  if (s.B == 0 || s.T == 0) return cuda::undefined(a);
  // Scratch: the runtime's workspace when it is large enough, else a block of the
  // caching allocator, freed right after the launches (stream order keeps it alive).
  const size_t bytes = attention_backward_scratch_bytes(s.T, s.NH, s.HS, s.maxSeqlen);
  const bool own = bytes > cuda::workspace_bytes();
  void* scratch = own ? cuda::alloc(bytes) : cuda::workspace();
  try {
    attention_backward(dq, dk, dv, dout, out, lse, q, k, v, s.stride, cu, s.B, s.T, s.NH, s.HS, s.maxSeqlen, slopes,
                       keyBias, scale, scratch, cuda::stream());
  } catch (...) {
    if (own) cuda::free(scratch);
    throw;
  }
  if (own) cuda::free(scratch);
  return cuda::undefined(a);
}

}  // namespace

MBERT_EXPORT(cuda, attentionForward, attention_forward_js);
MBERT_EXPORT(cuda, attentionBackward, attention_backward_js);

}  // namespace mbert
