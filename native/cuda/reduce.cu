// reduce.cu — reductions: `reduce` (sum/max/min/sumsq over the middle axis of
// (outer, size, inner)), `argmax`, and `sumSquares` (global gradient norms).
// Accumulation: fp32, fixed order (two stages through the workspace when a
// reduction is split across blocks), so results are deterministic.
// Activations are written with `=`; sumSquares takes `accumulate` (+=).
//   reduce: out(outer, inner) = op over x(outer, size, inner)
//   argmax: out int32 (outer, inner), first index on ties
//   sumSquares: out(1) fp32 (+)= sum x(N)^2
//   sumSquaresList: out(1) fp32 (+)= sum of x^2 over a table of tensors, one launch
#include <algorithm>
#include <cfloat>
#include <vector>

#include "cuda/kernel_util.cuh"
#include "cuda/reduce.h"
#include "cuda/tensor_list.cuh"

namespace mbert {
namespace cuda {
namespace {

__device__ __forceinline__ float identity(int op) {
  return op == kReduceMax ? -INFINITY : op == kReduceMin ? INFINITY : 0.f;
}
__device__ __forceinline__ float combine(int op, float a, float b) {
  return op == kReduceMax ? fmaxf(a, b) : op == kReduceMin ? fminf(a, b) : a + b;
}
__device__ __forceinline__ float prep(int op, float v) { return op == kReduceSumSq ? v * v : v; }

__device__ __forceinline__ float warp_reduce(int op, float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = combine(op, v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float block_reduce(int op, float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_reduce(op, v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < nwarps ? shared[lane] : identity(op);
  return warp_reduce(op, v);
}

template <typename O>
__device__ __forceinline__ void write_out(int op, O* out, int64_t i, float v, bool accumulate) {
  if (accumulate) v = combine(op, to_f<O>(out[i]), v);
  out[i] = from_f<O>(v);
}

// inner == 1: block (row, split) reduces x[row, split's chunk]. With one split
// it writes out directly; otherwise partial[row * splits + split] (fp32).
template <typename T, typename O>
__global__ void reduce_rows_kernel(int op, O* out, float* partial, const T* x, int64_t size, int64_t chunk,
                                   bool vec, bool accumulate) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.y;
  const int64_t begin = blockIdx.x * chunk;
  const int64_t end = min(size, begin + chunk);
  const T* xr = x + row * size;
  float acc = identity(op);
  if (vec) {  // chunk and size are multiples of VEC, x 16-byte aligned
    constexpr int N = Vec<T>::N;
    for (int64_t i = begin + int64_t(threadIdx.x) * N; i < end; i += int64_t(blockDim.x) * N) {
      Vec<T> v = load_vec(xr + i);
#pragma unroll
      for (int k = 0; k < N; ++k) acc = combine(op, acc, prep(op, to_f<T>(v.v[k])));
    }
  } else {
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) acc = combine(op, acc, prep(op, to_f<T>(xr[i])));
  }
  acc = block_reduce(op, acc, shared);
  if (threadIdx.x == 0) {
    if (gridDim.x == 1)
      write_out(op, out, row, acc, accumulate);
    else
      partial[row * gridDim.x + blockIdx.x] = acc;
  }
}

// inner > 1: block (32 x 8) covers 32*VEC columns of one outer index and one
// split of the rows; the 8 row-lanes are combined in order through shared memory.
template <typename T, typename O, int VEC>
__global__ void reduce_cols_kernel(int op, O* out, float* partial, const T* x, int64_t size, int64_t inner,
                                   int64_t chunk, bool accumulate) {
  __shared__ float shared[8][32 * VEC + 1];
  const int64_t o = blockIdx.y;
  const int64_t c0 = (int64_t(blockIdx.x) * 32 + threadIdx.x) * VEC;
  const int64_t begin = blockIdx.z * chunk;
  const int64_t end = min(size, begin + chunk);
  float acc[VEC];
#pragma unroll
  for (int k = 0; k < VEC; ++k) acc[k] = identity(op);
  if (c0 < inner) {
    const T* xo = x + o * size * inner + c0;
    for (int64_t r = begin + threadIdx.y; r < end; r += 8) {
      if constexpr (VEC > 1) {
        Vec<T> v = load_vec(xo + r * inner);
#pragma unroll
        for (int k = 0; k < VEC; ++k) acc[k] = combine(op, acc[k], prep(op, to_f<T>(v.v[k])));
      } else {
        acc[0] = combine(op, acc[0], prep(op, to_f<T>(xo[r * inner])));
      }
    }
  }
#pragma unroll
  for (int k = 0; k < VEC; ++k) shared[threadIdx.y][threadIdx.x * VEC + k] = acc[k];
  __syncthreads();
  // 256 threads finish 32*VEC columns: thread t takes columns t, t + 256, ...
  const int t = threadIdx.y * 32 + threadIdx.x;
  for (int col = t; col < 32 * VEC; col += 256) {
    const int64_t c = int64_t(blockIdx.x) * 32 * VEC + col;
    if (c >= inner) continue;
    float v = shared[0][col];
    for (int y = 1; y < 8; ++y) v = combine(op, v, shared[y][col]);
    if (gridDim.z == 1)
      write_out(op, out, o * inner + c, v, accumulate);
    else
      partial[(o * gridDim.z + blockIdx.z) * inner + c] = v;
  }
}

// out[o, c] = combine over s of partial[(o * splits + s) * inner + c], in order.
template <typename O>
__global__ void reduce_finish_kernel(int op, O* out, const float* partial, int64_t outer, int64_t inner,
                                     int splits, bool accumulate) {
  const int64_t n = outer * inner;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = i / inner, c = i - o * inner;
    const float* p = partial + o * splits * inner + c;
    float v = p[0];
    for (int s = 1; s < splits; ++s) v = combine(op, v, p[int64_t(s) * inner]);
    write_out(op, out, i, v, accumulate);
  }
}

template <typename T, typename O>
void reduce_impl(int op, O* out, const T* x, int64_t outer, int64_t size, int64_t inner, bool accumulate) {
  cudaStream_t st = stream();
  const int64_t target = int64_t(sm_count()) * 4;  // blocks to fill the GPU
  float* partial = static_cast<float*>(workspace());
  const int64_t ws_floats = int64_t(workspace_bytes() / sizeof(float));
  if (inner == 1) {
    constexpr int N = Vec<T>::N;
    const bool vec = size % N == 0 && aligned16(x);
    int64_t splits = 1;
    if (outer < target && size > 16384) {
      splits = std::min<int64_t>(ceil_div(target, outer), ceil_div(size, 4096));
      splits = std::min<int64_t>(splits, std::max<int64_t>(1, ws_floats / outer));
      splits = std::min<int64_t>(splits, 65535);
    }
    int64_t chunk = size == 0 ? 1 : ceil_div(size, splits);
    if (vec) chunk = ceil_div(chunk, N) * N;
    splits = std::max<int64_t>(1, ceil_div(size, chunk));
    const int64_t per_block = vec ? chunk / N : chunk;
    const int threads = int(std::min<int64_t>(256, std::max<int64_t>(32, ceil_div(per_block, 32) * 32)));
    MBERT_CHECK(outer <= 65535 * 1024, "cuda.reduce: outer too large");
    // grid.y is limited to 65535: walk the rows in slabs.
    for (int64_t r0 = 0; r0 < outer; r0 += 65535) {
      const int64_t rows = std::min<int64_t>(65535, outer - r0);
      dim3 grid{unsigned(splits), unsigned(rows), 1u};
      reduce_rows_kernel<T, O><<<grid, threads, 0, st>>>(op, out + r0, partial + r0 * splits, x + r0 * size, size,
                                                         chunk, vec, accumulate);
      MBERT_LAUNCH_CHECK();
    }
    if (splits > 1) {
      reduce_finish_kernel<O><<<grid_for(outer, 256), 256, 0, st>>>(op, out, partial, outer, 1, int(splits), accumulate);
      MBERT_LAUNCH_CHECK();
    }
    return;
  }
  constexpr int N = Vec<T>::N;
  const bool vec = inner % N == 0 && aligned16(x);
  const int vecw = vec ? N : 1;
  const int64_t col_blocks = ceil_div(inner, 32 * vecw);
  int64_t splits = 1;
  if (col_blocks * outer < target && size > 64) {
    splits = std::min<int64_t>(ceil_div(target, col_blocks * outer), ceil_div(size, 64));
    splits = std::min<int64_t>(splits, std::max<int64_t>(1, ws_floats / (outer * inner)));
    splits = std::min<int64_t>(splits, 65535);
  }
  const int64_t chunk = ceil_div(std::max<int64_t>(size, 1), splits);
  splits = std::max<int64_t>(1, ceil_div(size, chunk));
  MBERT_CHECK(outer <= 65535, "cuda.reduce: outer (", outer, ") above 65535 with inner > 1 is not supported");
  dim3 grid{unsigned(col_blocks), unsigned(outer), unsigned(splits)};
  dim3 block{32u, 8u, 1u};
  if (vec)
    reduce_cols_kernel<T, O, Vec<T>::N><<<grid, block, 0, st>>>(op, out, partial, x, size, inner, chunk, accumulate);
  else
    reduce_cols_kernel<T, O, 1><<<grid, block, 0, st>>>(op, out, partial, x, size, inner, chunk, accumulate);
  MBERT_LAUNCH_CHECK();
  if (splits > 1) {
    reduce_finish_kernel<O><<<grid_for(outer * inner, 256), 256, 0, st>>>(op, out, partial, outer, inner, int(splits),
                                                                         accumulate);
    MBERT_LAUNCH_CHECK();
  }
}

// ---- argmax ----------------------------------------------------------------------------

struct ArgMax {
  float v;
  int64_t i;
};

__device__ __forceinline__ ArgMax better(ArgMax a, ArgMax b) {
  // Larger value wins; equal values keep the smaller index; NaN counts as largest.
  const bool an = isnan(a.v), bn = isnan(b.v);
  if (an || bn) {
    if (an && bn) return a.i <= b.i ? a : b;
    return an ? a : b;
  }
  if (b.v > a.v || (b.v == a.v && b.i < a.i)) return b;
  return a;
}

// One block per (outer) row when inner == 1.
template <typename T>
__global__ void argmax_rows_kernel(int* out, const T* x, int64_t size) {
  __shared__ float sv[32];
  __shared__ int64_t si[32];
  const T* xr = x + int64_t(blockIdx.x) * size;
  ArgMax best{-INFINITY, INT64_MAX};
  for (int64_t i = threadIdx.x; i < size; i += blockDim.x) best = better(best, ArgMax{to_f<T>(xr[i]), i});
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    ArgMax other{__shfl_xor_sync(0xffffffffu, best.v, o), __shfl_xor_sync(0xffffffffu, best.i, o)};
    best = better(best, other);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    sv[warp] = best.v;
    si[warp] = best.i;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    ArgMax b{sv[0], si[0]};
    for (int w = 1; w < int(blockDim.x >> 5); ++w) b = better(b, ArgMax{sv[w], si[w]});
    out[blockIdx.x] = b.i == INT64_MAX ? 0 : int(b.i);
  }
}

// One thread per (outer, inner) column when inner > 1 (coalesced across inner).
template <typename T>
__global__ void argmax_cols_kernel(int* out, const T* x, int64_t outer, int64_t size, int64_t inner) {
  const int64_t n = outer * inner;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = t / inner, c = t - o * inner;
    const T* xo = x + o * size * inner + c;
    ArgMax best{-INFINITY, INT64_MAX};
    for (int64_t i = 0; i < size; ++i) best = better(best, ArgMax{to_f<T>(xo[i * inner]), i});
    out[t] = best.i == INT64_MAX ? 0 : int(best.i);
  }
}

// ---- sumSquares --------------------------------------------------------------------------

template <typename T>
__global__ void sum_squares_kernel(float* partial, const T* x, int64_t n, bool vec) {
  __shared__ float shared[32];
  float acc = 0.f;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  int64_t tail = 0;
  if (vec) {
    constexpr int N = Vec<T>::N;
    const int64_t nv = n / N;
    for (int64_t i = tid; i < nv; i += stride) {
      Vec<T> v = load_vec_cs(x + i * N);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        const float f = to_f<T>(v.v[k]);
        acc = fmaf(f, f, acc);
      }
    }
    tail = nv * N;
  }
  for (int64_t i = tail + tid; i < n; i += stride) {
    const float f = to_f<T>(x[i]);
    acc = fmaf(f, f, acc);
  }
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void sum_squares_finish_kernel(float* out, const float* partial, int blocks, bool accumulate) {
  __shared__ float shared[32];
  float acc = 0.f;
  for (int i = threadIdx.x; i < blocks; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) out[0] = accumulate ? out[0] + acc : acc;
}

// ---- sumSquaresList: many tensors in one launch ---------------------------------------------
// The tensors' 4-element vectors are numbered one after another; block b sums the
// squares of vectors [b * kSqChunk, (b + 1) * kSqChunk) into partial[b], and the
// finish kernel adds the partials in order (deterministic for a given table).

struct SqEntry {
  const void* x;
  long long n;      // elements
  long long first;  // index of the tensor's first 4-element vector in the launch
  int vec;          // aligned for 4-element loads
};
constexpr int kSqMax = 320;
constexpr int kSqThreads = 256;
constexpr int kSqChunk = kSqThreads * 8;
struct SqList {
  int count;
  long long total;
  SqEntry e[kSqMax];
};
static_assert(sizeof(SqList) < 32000, "kernel parameters are limited to 32 KiB");

template <typename T>
__global__ void __launch_bounds__(kSqThreads) sum_squares_list_kernel(const __grid_constant__ SqList t, float* partial) {
  __shared__ float shared[32];
  const long long r0 = static_cast<long long>(blockIdx.x) * kSqChunk;
  const long long r1 = r0 + kSqChunk < t.total ? r0 + kSqChunk : t.total;
  float acc = 0.f;
  for (int ei = list_find(t, r0); ei < t.count && t.e[ei].first < r1; ++ei) {
    const SqEntry& E = t.e[ei];
    const T* __restrict__ x = static_cast<const T*>(E.x);
    const long long n = E.n;
    const ListSpan sp = list_span(E.first, n, r0, r1);
    for (long long i = sp.a + threadIdx.x; i < sp.b; i += kSqThreads) {
      if (E.vec && 4 * i + 4 <= n) {
        const Four<T> v = reinterpret_cast<const Four<T>*>(x)[i];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const float f = to_f<T>(v.v[k]);
          acc = fmaf(f, f, acc);
        }
      } else {
        for (long long j = 4 * i; j < 4 * i + 4 && j < n; ++j) {
          const float f = to_f<T>(x[j]);
          acc = fmaf(f, f, acc);
        }
      }
    }
  }
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// ---- wrappers ----------------------------------------------------------------------------

Napi::Value reduce_js(const Napi::CallbackInfo& info) {
  Args a(info, "reduce", 7);
  const int64_t op = a.i64(0);
  MBERT_CHECK(op >= 0 && op <= 3, "cuda.reduce: op must be 0..3 (sum, max, min, sumsq), got ", op);
  const DType dt = float_dtype(a, 1);
  const int64_t outer = a.size(4, "outer"), size = a.size(5, "size"), inner = a.size(6, "inner");
  void* out = dbuf(a, 2, dt, outer * inner, "out");
  const void* x = dbuf(a, 3, dt, outer * size * inner, "x", size > 0);
  reduce_middle(int(op), dt, dt, out, x, outer, size, inner, false);
  return undefined(a);
}

Napi::Value argmax_js(const Napi::CallbackInfo& info) {
  Args a(info, "argmax", 6);
  const DType dt = float_dtype(a, 0);
  const int64_t outer = a.size(3, "outer"), size = a.size(4, "size"), inner = a.size(5, "inner");
  MBERT_CHECK(size <= INT32_MAX, "cuda.argmax: size must fit in int32");
  int* out = dbuf<int>(a, 1, DType::I32, outer * inner, "out");
  const void* x = dbuf(a, 2, dt, outer * size * inner, "x", size > 0);
  if (outer * inner == 0) return undefined(a);
  MBERT_CUDA_DISPATCH(dt, {
    if (inner == 1) {
      MBERT_CHECK(outer <= INT32_MAX, "cuda.argmax: outer too large");
      argmax_rows_kernel<T><<<unsigned(outer), 256, 0, stream()>>>(out, static_cast<const T*>(x), size);
    } else {
      argmax_cols_kernel<T><<<grid_for(outer * inner, 256), 256, 0, stream()>>>(out, static_cast<const T*>(x), outer,
                                                                                size, inner);
    }
  });
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

Napi::Value sum_squares_js(const Napi::CallbackInfo& info) {
  Args a(info, "sumSquares", 5);
  const DType dt = float_dtype(a, 0);
  const int64_t n = a.size(3, "n");
  const bool accumulate = a.flag(4);
  float* out = dbuf<float>(a, 1, DType::F32, 1, "out");
  const void* x = dbuf(a, 2, dt, n, "x", n > 0);
  float* partial = static_cast<float*>(workspace());
  const int threads = 512;
  const int blocks = int(std::max<int64_t>(1, std::min<int64_t>(ceil_div(n, int64_t(threads) * 16), sm_count() * 4)));
  MBERT_CUDA_DISPATCH(dt, {
    const bool vec = aligned16(x);
    sum_squares_kernel<T><<<blocks, threads, 0, stream()>>>(partial, static_cast<const T*>(x), n, vec);
  });
  MBERT_LAUNCH_CHECK();
  sum_squares_finish_kernel<<<1, 1024, 0, stream()>>>(out, partial, blocks, accumulate);
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

// sumSquaresList(dtype, out, table, accumulate)  out: float32 (1), (+)= the sum of x^2
// over every tensor of the table (Float64Array of 2 numbers per tensor: x, n).
Napi::Value sum_squares_list_js(const Napi::CallbackInfo& info) {
  Args a(info, "sumSquaresList", 4);
  const DType dt = float_dtype(a, 0);
  float* out = dbuf<float>(a, 1, DType::F32, 1, "out");
  constexpr int kWidth = 2;
  const std::vector<double> tab = a.table(2, kWidth, "table");
  const bool accumulate = a.flag(3);
  std::vector<SqEntry> entries;
  const std::size_t rows = tab.size() / kWidth;
  for (std::size_t e = 0; e < rows; ++e) {
    const TableRow row(a, 2, tab, kWidth, e);
    const int64_t n = row.size(1, "n");
    const void* x =
        checked_row_ptr(a, 2, row, 0, static_cast<std::size_t>(n) * dtype_size(dt), "x", true, check_range);
    if (n > 0) entries.push_back(SqEntry{x, n, 0, reinterpret_cast<uintptr_t>(x) % (4 * dtype_size(dt)) == 0});
  }
  float* partial = static_cast<float*>(workspace());
  const std::size_t capacity = workspace_bytes() / sizeof(float);
  std::size_t blocks = 0;  // partials written so far
  for (std::size_t c0 = 0; c0 < entries.size(); c0 += kSqMax) {
    SqList t{};
    fill_list(t, entries, c0, kSqMax);
    const std::size_t nb = static_cast<std::size_t>((t.total + kSqChunk - 1) / kSqChunk);
    MBERT_CHECK(blocks + nb <= capacity, "cuda.sumSquaresList: ", t.total, " vectors are over the workspace's ",
                capacity, " partial sums");
    MBERT_CUDA_DISPATCH(dt, {
      sum_squares_list_kernel<T><<<static_cast<unsigned>(nb), kSqThreads, 0, stream()>>>(t, partial + blocks);
    });
    MBERT_LAUNCH_CHECK();
    blocks += nb;
  }
  if (blocks == 0) {
    if (!accumulate) MBERT_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(float), stream()));
    return undefined(a);
  }
  sum_squares_finish_kernel<<<1, 1024, 0, stream()>>>(out, partial, static_cast<int>(blocks), accumulate);
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

}  // namespace

void reduce_middle(int op, DType dt, DType out_dt, void* out, const void* x, int64_t outer, int64_t size,
                   int64_t inner, bool accumulate) {
  if (outer == 0 || inner == 0) return;
  if (dt == DType::BF16 && out_dt == DType::BF16) {
    reduce_impl<bf16, bf16>(op, static_cast<bf16*>(out), static_cast<const bf16*>(x), outer, size, inner, accumulate);
  } else if (dt == DType::BF16 && out_dt == DType::F32) {
    reduce_impl<bf16, float>(op, static_cast<float*>(out), static_cast<const bf16*>(x), outer, size, inner, accumulate);
  } else if (dt == DType::F32 && out_dt == DType::F32) {
    reduce_impl<float, float>(op, static_cast<float*>(out), static_cast<const float*>(x), outer, size, inner,
                              accumulate);
  } else {
    throw Error(str("cuda.reduce: ", dtype_name(dt), " input with ", dtype_name(out_dt), " output is not supported"));
  }
}

MBERT_EXPORT(cuda, reduce, reduce_js);
MBERT_EXPORT(cuda, argmax, argmax_js);
MBERT_EXPORT(cuda, sumSquares, sum_squares_js);
MBERT_EXPORT(cuda, sumSquaresList, sum_squares_list_js);

}  // namespace cuda
}  // namespace mbert
