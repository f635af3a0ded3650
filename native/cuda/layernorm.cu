// layernorm.cu — layernormForward (with the fused residual add, and optionally the
// dropout of x before it: h = dropout(x) + residual, the mask and rounding of
// dropoutForward) and layernormBackward (optionally also writing x's gradient
// through that dropout, as dropoutBackward would from dx). Activations (out, residualOut, mean, rstd, dx) are
// written with `=`; parameter gradients dweight, dbias (C) with `=` or `+=` by
// `accumulate`. Accumulation: fp32; row statistics in two passes over the
// row (mean, then sum of squared deviations); parameter gradients are summed
// per warp over a fixed set of rows, then across warps and blocks in a fixed order.
//   out, x, residual, residualOut, dx, dy: (rows, C)   mean, rstd: (rows) fp32
//   weight, bias: (C) in dtype   dweight, dbias: (C) in gradDtype
// One warp per row. When C fits (C <= 1024, 16-byte aligned rows) the row
// lives in registers: 32 elements per lane, loaded as 16-byte vectors.
#include <algorithm>
#include <type_traits>

#include "cuda/dropout.cuh"
#include "cuda/kernel_util.cuh"

namespace mbert {
namespace cuda {
namespace {

constexpr int kWarps = 4;       // rows per block
constexpr int kPerLane = 32;    // cached elements per lane
constexpr int kMaxCachedC = 32 * kPerLane;
constexpr int kBwdBlocksPerSm = 4;  // resident backward blocks per SM (launch bound and grid)

// ---- forward ------------------------------------------------------------------------

template <typename T>
__global__ void __launch_bounds__(kWarps * 32) layernorm_forward_cached(
    T* out, float* mean, float* rstd, const T* x, const T* residual, T* residual_out, const T* weight,
    const T* bias, int64_t rows, int C, float eps, DropoutMask m, float scale) {
  constexpr int N = Vec<T>::N;
  constexpr int MAXV = kPerLane / N;
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int nv = C / N;
  const int64_t base = row * C;
  float h[MAXV][N];
  float sum = 0.f;
#pragma unroll
  for (int j = 0; j < MAXV; ++j) {
    const int v = j * 32 + lane;
    if (v < nv) {
      Vec<T> xv = load_vec_cs(x + base + v * N);
      if (m.on()) dropout_elems<T, N>(xv.v, m, base + v * N, scale);
      if (residual) {
        const Vec<T> rv = load_vec_cs(residual + base + v * N);
#pragma unroll
        for (int k = 0; k < N; ++k) xv.v[k] = from_f<T>(to_f<T>(xv.v[k]) + to_f<T>(rv.v[k]));  // h rounds to T
        if (residual_out) store_vec(residual_out + base + v * N, xv);
      }
#pragma unroll
      for (int k = 0; k < N; ++k) {
        h[j][k] = to_f<T>(xv.v[k]);
        sum += h[j][k];
      }
    }
  }
  const float mu = warp_sum(sum) / float(C);
  float sq = 0.f;
#pragma unroll
  for (int j = 0; j < MAXV; ++j) {
    if (j * 32 + lane < nv) {
#pragma unroll
      for (int k = 0; k < N; ++k) {
        const float d = h[j][k] - mu;
        sq += d * d;
      }
    }
  }
  const float rs = rsqrtf(warp_sum(sq) / float(C) + eps);
  if (lane == 0) {
    if (mean) mean[row] = mu;
    if (rstd) rstd[row] = rs;
  }
#pragma unroll
  for (int j = 0; j < MAXV; ++j) {
    const int v = j * 32 + lane;
    if (v < nv) {
      Vec<T> o, w, b;
      if (weight) w = load_vec(weight + v * N);
      if (bias) b = load_vec(bias + v * N);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        const float wf = weight ? to_f<T>(w.v[k]) : 1.f, bf = bias ? to_f<T>(b.v[k]) : 0.f;
        o.v[k] = from_f<T>((h[j][k] - mu) * rs * wf + bf);
      }
      store_vec(out + base + v * N, o);
    }
  }
}

// Any C, any alignment: three scalar passes over the row (re-read from L1/L2).
template <typename T>
__global__ void __launch_bounds__(kWarps * 32) layernorm_forward_generic(
    T* out, float* mean, float* rstd, const T* x, const T* residual, T* residual_out, const T* weight,
    const T* bias, int64_t rows, int C, float eps, DropoutMask m, float scale) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int64_t base = row * C;
  auto h_at = [&](int c) {
    const T xv = m.on() ? dropout_at(x[base + c], m, base + c, scale) : x[base + c];
    if (!residual) return to_f<T>(xv);
    return to_f<T>(from_f<T>(to_f<T>(xv) + to_f<T>(residual[base + c])));
  };
  float sum = 0.f;
  for (int c = lane; c < C; c += 32) {
    const float h = h_at(c);
    if (residual && residual_out) residual_out[base + c] = from_f<T>(h);
    sum += h;
  }
  const float mu = C > 0 ? warp_sum(sum) / float(C) : 0.f;
  float sq = 0.f;
  for (int c = lane; c < C; c += 32) {
    const float d = h_at(c) - mu;
    sq += d * d;
  }
  const float rs = rsqrtf((C > 0 ? warp_sum(sq) / float(C) : 0.f) + eps);
  if (lane == 0) {
    if (mean) mean[row] = mu;
    if (rstd) rstd[row] = rs;
  }
  for (int c = lane; c < C; c += 32) {
    const float wf = weight ? to_f<T>(weight[c]) : 1.f, bf = bias ? to_f<T>(bias[c]) : 0.f;
    out[base + c] = from_f<T>((h_at(c) - mu) * rs * wf + bf);
  }
}

// ---- backward -----------------------------------------------------------------------

// Warps stride over rows; each keeps its lanes' dweight/dbias partial sums and
// writes them to pw/pb[warp][C] (fp32) at the end. MAXV: 16-byte vectors per
// lane (ceil(C / (32 N))), a template parameter so that C = 768 keeps three
// vectors, not four, in registers. The row is kept as loaded (packed T) and
// x̂ and g are recomputed for dx: fewer registers, more resident warps.
template <typename T, int MAXV>
__global__ void __launch_bounds__(kWarps * 32, MAXV <= 4 ? kBwdBlocksPerSm : 2) layernorm_backward_cached(
    T* dx, float* pw, float* pb, const T* dy, const T* x, const float* mean, const float* rstd, const T* weight,
    int64_t rows, int C, T* dx_drop, DropoutMask m, float scale) {
  constexpr int N = Vec<T>::N;
  const int lane = threadIdx.x & 31;
  const int64_t warp = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  const int64_t nwarps = int64_t(gridDim.x) * kWarps;
  const int nv = C / N;
  const bool params = pw != nullptr;
  float accw[MAXV][N], accb[MAXV][N];
#pragma unroll
  for (int j = 0; j < MAXV; ++j) {
#pragma unroll
    for (int k = 0; k < N; ++k) {
      accw[j][k] = 0.f;
      accb[j][k] = 0.f;
    }
  }
  for (int64_t row = warp; row < rows; row += nwarps) {
    const int64_t base = row * C;
    const float mu = mean[row], rs = rstd[row];
    Vec<T> xs[MAXV], gs[MAXV];
#pragma unroll
    for (int j = 0; j < MAXV; ++j) {
      const int v = j * 32 + lane;
      if (v < nv) {
        xs[j] = load_vec_cs(x + base + v * N);
        gs[j] = load_vec_cs(dy + base + v * N);
      }
    }
    float sg = 0.f, sgx = 0.f;
#pragma unroll
    for (int j = 0; j < MAXV; ++j) {
      const int v = j * 32 + lane;
      if (v < nv) {
        Vec<T> wv;  // weight is re-read per row from L1: keeps registers for the row
        if (weight) wv = load_vec(weight + v * N);
#pragma unroll
        for (int k = 0; k < N; ++k) {
          const float d = to_f<T>(gs[j].v[k]);
          const float xhat = (to_f<T>(xs[j].v[k]) - mu) * rs;
          const float g = d * (weight ? to_f<T>(wv.v[k]) : 1.f);
          sg += g;
          sgx += g * xhat;
          accw[j][k] += d * xhat;
          accb[j][k] += d;
        }
      }
    }
    const float mg = warp_sum(sg) / float(C), mgx = warp_sum(sgx) / float(C);
#pragma unroll
    for (int j = 0; j < MAXV; ++j) {
      const int v = j * 32 + lane;
      if (v < nv) {
        Vec<T> wv;
        if (weight) wv = load_vec(weight + v * N);
        Vec<T> o;
#pragma unroll
        for (int k = 0; k < N; ++k) {
          const float xhat = (to_f<T>(xs[j].v[k]) - mu) * rs;
          const float g = to_f<T>(gs[j].v[k]) * (weight ? to_f<T>(wv.v[k]) : 1.f);
          o.v[k] = from_f<T>(rs * (g - mg - xhat * mgx));
        }
        store_vec(dx + base + v * N, o);
        if (dx_drop) {  // the gradient through h = dropout(x) + residual: dx by x's mask
          dropout_elems<T, N>(o.v, m, base + v * N, scale);
          store_vec(dx_drop + base + v * N, o);
        }
      }
    }
  }
  if (params) {
    // The block's warps combine their partial sums in shared memory, in warp
    // order, and write one (C) row per block: pw/pb[block][C].
    extern __shared__ float smem[];  // [2][kWarps][C]
    float* sw = smem + (threadIdx.x >> 5) * C;
    float* sb = smem + (kWarps + (threadIdx.x >> 5)) * C;
#pragma unroll
    for (int j = 0; j < MAXV; ++j) {
      const int v = j * 32 + lane;
      if (v < nv) {
#pragma unroll
        for (int k = 0; k < N; ++k) {
          sw[v * N + k] = accw[j][k];
          sb[v * N + k] = accb[j][k];
        }
      }
    }
    __syncthreads();
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
      float w = smem[c], b = smem[kWarps * C + c];
      for (int wi = 1; wi < kWarps; ++wi) {
        w += smem[wi * C + c];
        b += smem[(kWarps + wi) * C + c];
      }
      pw[int64_t(blockIdx.x) * C + c] = w;
      pb[int64_t(blockIdx.x) * C + c] = b;
    }
  }
}

// Any C: scalar passes; the warp's partial sums live in its pw/pb row.
template <typename T>
__global__ void __launch_bounds__(kWarps * 32) layernorm_backward_generic(
    T* dx, float* pw, float* pb, const T* dy, const T* x, const float* mean, const float* rstd, const T* weight,
    int64_t rows, int C, T* dx_drop, DropoutMask m, float scale) {
  const int lane = threadIdx.x & 31;
  const int64_t warp = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  const int64_t nwarps = int64_t(gridDim.x) * kWarps;
  const bool params = pw != nullptr;
  if (params) {
    for (int c = lane; c < C; c += 32) {
      pw[warp * C + c] = 0.f;
      pb[warp * C + c] = 0.f;
    }
  }
  for (int64_t row = warp; row < rows; row += nwarps) {
    const int64_t base = row * C;
    const float mu = mean[row], rs = rstd[row];
    float sg = 0.f, sgx = 0.f;
    for (int c = lane; c < C; c += 32) {
      const float d = to_f<T>(dy[base + c]);
      const float xh = (to_f<T>(x[base + c]) - mu) * rs;
      const float g = d * (weight ? to_f<T>(weight[c]) : 1.f);
      sg += g;
      sgx += g * xh;
      if (params) {
        pw[warp * C + c] += d * xh;
        pb[warp * C + c] += d;
      }
    }
    const float mg = C > 0 ? warp_sum(sg) / float(C) : 0.f, mgx = C > 0 ? warp_sum(sgx) / float(C) : 0.f;
    for (int c = lane; c < C; c += 32) {
      const float xh = (to_f<T>(x[base + c]) - mu) * rs;
      const float g = to_f<T>(dy[base + c]) * (weight ? to_f<T>(weight[c]) : 1.f);
      const T d = from_f<T>(rs * (g - mg - xh * mgx));
      dx[base + c] = d;
      if (dx_drop) dx_drop[base + c] = dropout_at(d, m, base + c, scale);
    }
  }
}

// dweight[c] (+)= sum over parts of pw[part][c]; same for dbias. Block
// (kFinishCols columns x kFinishSlices slices): slice y sums parts y, y + 64, ...
// in order, then the slice sums are combined by a fixed pairwise tree (the
// order never depends on scheduling: deterministic). Narrow blocks spread the
// few hundred partial rows over ~100 SMs instead of a couple dozen.
constexpr int kFinishCols = 8;
constexpr int kFinishSlices = 64;

template <typename G>
__global__ void __launch_bounds__(kFinishCols* kFinishSlices) layernorm_param_finish(
    G* dweight, G* dbias, const float* pw, const float* pb, int64_t nparts, int C, bool accumulate) {
  __shared__ float sw[kFinishSlices][kFinishCols + 1], sb[kFinishSlices][kFinishCols + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int c = blockIdx.x * kFinishCols + tx;
  float w = 0.f, b = 0.f;
  if (c < C) {
#pragma unroll 4  // independent loads in flight: the sums stay in part order
    for (int64_t p = ty; p < nparts; p += kFinishSlices) {
      w += pw[p * C + c];
      b += pb[p * C + c];
    }
  }
  sw[ty][tx] = w;
  sb[ty][tx] = b;
#pragma unroll
  for (int s = kFinishSlices / 2; s > 0; s /= 2) {
    __syncthreads();
    if (ty < s) {
      sw[ty][tx] += sw[ty + s][tx];
      sb[ty][tx] += sb[ty + s][tx];
    }
  }
  if (ty == 0 && c < C) {
    w = sw[0][tx];
    b = sb[0][tx];
    if (dweight) dweight[c] = from_f<G>(accumulate ? to_f<G>(dweight[c]) + w : w);
    if (dbias) dbias[c] = from_f<G>(accumulate ? to_f<G>(dbias[c]) + b : b);
  }
}

// ---- launchers ----------------------------------------------------------------------

template <typename T>
bool cached_ok(int C, std::initializer_list<const void*> ptrs) {
  if (C % Vec<T>::N != 0 || C > kMaxCachedC || C == 0) return false;
  for (const void* p : ptrs)
    if (p && !aligned16(p)) return false;
  return true;
}

template <typename T>
void layernorm_forward(T* out, float* mean, float* rstd, const T* x, const T* residual, T* residual_out,
                       const T* weight, const T* bias, int64_t rows, int C, float eps, const DropoutMask& m,
                       cudaStream_t st) {
  if (rows == 0) return;
  const unsigned grid = unsigned(ceil_div(rows, kWarps));
  const float scale = m.on() ? m.scale<float>() : 1.f;
  if (cached_ok<T>(C, {out, x, residual, residual_out, weight, bias}))
    layernorm_forward_cached<T><<<grid, kWarps * 32, 0, st>>>(out, mean, rstd, x, residual, residual_out, weight, bias,
                                                              rows, C, eps, m, scale);
  else
    layernorm_forward_generic<T><<<grid, kWarps * 32, 0, st>>>(out, mean, rstd, x, residual, residual_out, weight,
                                                               bias, rows, C, eps, m, scale);
  MBERT_LAUNCH_CHECK();
}

template <typename T>
void layernorm_backward(DType gt, T* dx, void* dweight, void* dbias, const T* dy, const T* x, const float* mean,
                        const float* rstd, const T* weight, int64_t rows, int C, bool accumulate, T* dx_drop,
                        const DropoutMask& m, cudaStream_t st) {
  const float scale = m.on() ? m.scale<float>() : 1.f;
  const bool params = (dweight || dbias) && C > 0;
  int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(ceil_div(rows, kWarps), int64_t(sm_count()) * kBwdBlocksPerSm));
  float* pw = nullptr;
  float* pb = nullptr;
  if (params) {
    // Two (nwarps, C) fp32 partial arrays must fit in the workspace.
    const int64_t max_warps = int64_t(workspace_bytes() / (2 * sizeof(float) * std::size_t(C)));
    MBERT_CHECK(max_warps >= kWarps, "cuda.layernormBackward: C = ", C, " is too large for the workspace");
    blocks = std::min<int64_t>(blocks, max_warps / kWarps);
    pw = static_cast<float*>(workspace());
    pb = pw + blocks * kWarps * C;
  }
  // The cached kernel writes one partial row per block, the generic one per warp.
  const bool cached = cached_ok<T>(C, {dx, dy, x, weight, dx_drop});
  const int64_t nparts = cached ? blocks : blocks * kWarps;
  if (rows > 0 || params) {
    if (cached) {
      const std::size_t smem = params ? 2 * kWarps * std::size_t(C) * sizeof(float) : 0;
      // Vectors per lane, rounded up to an instantiated count.
      const int mv = int(ceil_div(C / Vec<T>::N, 32));
      auto launch = [&](auto maxv) {
        layernorm_backward_cached<T, decltype(maxv)::value>
            <<<unsigned(blocks), kWarps * 32, smem, st>>>(dx, pw, pb, dy, x, mean, rstd, weight, rows, C, dx_drop,
                                                          m, scale);
      };
      if (mv <= 1) launch(std::integral_constant<int, 1>{});
      else if (mv <= 2) launch(std::integral_constant<int, 2>{});
      else if (mv <= 3) launch(std::integral_constant<int, 3>{});
      else if (mv <= 4) launch(std::integral_constant<int, 4>{});
      else if constexpr (Vec<T>::N == 4) {  // fp32 rows of up to 1024: up to 8 vectors
        if (mv <= 6) launch(std::integral_constant<int, 6>{});
        else launch(std::integral_constant<int, 8>{});
      }
    } else {
      layernorm_backward_generic<T><<<unsigned(blocks), kWarps * 32, 0, st>>>(dx, pw, pb, dy, x, mean, rstd, weight,
                                                                              rows, C, dx_drop, m, scale);
    }
    MBERT_LAUNCH_CHECK();
  }
  if (params) {
    const unsigned g = unsigned(ceil_div(C, kFinishCols));
    const dim3 block{unsigned(kFinishCols), unsigned(kFinishSlices), 1u};
    if (gt == DType::BF16)
      layernorm_param_finish<bf16><<<g, block, 0, st>>>(static_cast<bf16*>(dweight), static_cast<bf16*>(dbias), pw,
                                                        pb, nparts, C, accumulate);
    else
      layernorm_param_finish<float><<<g, block, 0, st>>>(static_cast<float*>(dweight), static_cast<float*>(dbias), pw,
                                                         pb, nparts, C, accumulate);
    MBERT_LAUNCH_CHECK();
  }
}

// ---- wrappers -----------------------------------------------------------------------

// layernormForward(dtype, out, mean, rstd, x, residual, residualOut, weight, bias, rows, C, eps,
//                  dropoutP, dropoutSeed, dropoutOffset)
Napi::Value layernorm_forward_js(const Napi::CallbackInfo& info) {
  Args a(info, "layernormForward", 15);
  const DType dt = float_dtype(a, 0);
  const int64_t rows = a.size(9, "rows"), C = a.size(10, "C");
  const double eps = a.f64(11);
  MBERT_CHECK(C <= INT32_MAX, "cuda.layernormForward: C too large");
  const DropoutMask m = dropout_mask_args(a, 12);
  const int64_t n = rows * C;
  void* out = dbuf(a, 1, dt, n, "out");
  float* mean = dbuf<float>(a, 2, DType::F32, rows, "mean", false);
  float* rstd = dbuf<float>(a, 3, DType::F32, rows, "rstd", false);
  const void* x = dbuf(a, 4, dt, n, "x");
  const void* residual = dbuf(a, 5, dt, n, "residual", false);
  void* residual_out = residual ? dbuf(a, 6, dt, n, "residualOut", false) : nullptr;
  MBERT_CHECK(!m.on() || (residual && residual_out), "cuda.layernormForward: dropout needs residual and residualOut ",
              "(h = dropout(x) + residual is what backward reads)");
  const void* weight = dbuf(a, 7, dt, C, "weight", false);
  const void* bias = dbuf(a, 8, dt, C, "bias", false);
  MBERT_CUDA_DISPATCH(dt, layernorm_forward<T>(static_cast<T*>(out), mean, rstd, static_cast<const T*>(x),
                                               static_cast<const T*>(residual), static_cast<T*>(residual_out),
                                               static_cast<const T*>(weight), static_cast<const T*>(bias), rows,
                                               int(C), float(eps), m, stream()));
  return undefined(a);
}

// layernormBackward(dtype, gradDtype, dx, dweight, dbias, dy, x, mean, rstd, weight, rows, C, accumulate,
//                   dxDropout, dropoutP, dropoutSeed, dropoutOffset)
Napi::Value layernorm_backward_js(const Napi::CallbackInfo& info) {
  Args a(info, "layernormBackward", 17);
  const DType dt = float_dtype(a, 0);
  const DType gt = float_dtype(a, 1);
  const int64_t rows = a.size(10, "rows"), C = a.size(11, "C");
  const bool accumulate = a.flag(12);
  MBERT_CHECK(C <= INT32_MAX, "cuda.layernormBackward: C too large");
  const DropoutMask m = dropout_mask_args(a, 14);
  const int64_t n = rows * C;
  void* dx = dbuf(a, 2, dt, n, "dx");
  void* dweight = dbuf(a, 3, gt, C, "dweight", false);
  void* dbias = dbuf(a, 4, gt, C, "dbias", false);
  const void* dy = dbuf(a, 5, dt, n, "dy");
  const void* x = dbuf(a, 6, dt, n, "x");
  const float* mean = dbuf<float>(a, 7, DType::F32, rows, "mean");
  const float* rstd = dbuf<float>(a, 8, DType::F32, rows, "rstd");
  const void* weight = dbuf(a, 9, dt, C, "weight", false);
  void* dx_drop = m.on() ? dbuf(a, 13, dt, n, "dxDropout") : nullptr;
  MBERT_CUDA_DISPATCH(dt, layernorm_backward<T>(gt, static_cast<T*>(dx), dweight, dbias, static_cast<const T*>(dy),
                                                static_cast<const T*>(x), mean, rstd, static_cast<const T*>(weight),
                                                rows, int(C), accumulate, static_cast<T*>(dx_drop), m, stream()));
  return undefined(a);
}

}  // namespace

MBERT_EXPORT(cuda, layernormForward, layernorm_forward_js);
MBERT_EXPORT(cuda, layernormBackward, layernorm_backward_js);

}  // namespace cuda
}  // namespace mbert
