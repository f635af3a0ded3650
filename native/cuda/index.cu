// index.cu — row gather/scatter: indexSelect (embedding lookup, `=`),
// indexAdd (embedding gradient, `+=`) and indexCopy (`=`, distinct indices).
//   indexSelect: out(n, rowSize) = table(numRows, rowSize)[idx[i]]
//   indexAdd:    out(numRows, rowSize) in gradDtype += src(n, rowSize)[i] at idx[i]
//   indexCopy:   out(numRows, rowSize)[idx[i]] = src(n, rowSize)[i]
// A bad index sets the device error flag (read by takeDeviceError); its row is
// skipped (indexSelect writes zeros there).
//
// indexAdd is deterministic (no floating-point atomics): the (idx[i], i) pairs
// are sorted with CUB's stable radix sort, so each output row's contributions
// form one segment in increasing i. The sorted positions are cut into tiles of
// kTile; one block per tile walks its positions in order, summing the src rows
// of each segment piece in fp32 with 16-byte loads. A segment that lies inside
// one tile is added to out[row] right there; the pieces of a segment that
// crosses tile boundaries go to per-tile partial rows (slot 1: the piece that
// starts in the tile and runs past its end; slot 0: the piece that began in an
// earlier tile), and a second kernel sums them in a fixed order and adds the
// total to out once. Long segments (token-type ids: all rows hit one or two
// entries) are thus spread over many blocks instead of one serial chain.
#include <algorithm>

#include <cub/device/device_radix_sort.cuh>

#include "cuda/kernel_util.cuh"

namespace mbert {
namespace cuda {
namespace {

// W: a word of the element size (uint16_t for bf16, uint32_t for float32/int32).
template <typename W, bool VEC>
__global__ void index_select_kernel(W* out, const W* table, const int* idx, int64_t n, int64_t row_size,
                                    int64_t num_rows, DeviceError* err) {
  constexpr int N = VEC ? 16 / sizeof(W) : 1;
  const int64_t rv = row_size / N, total = n * rv;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t / rv, c = (t - i * rv) * N;
    const int64_t row = idx[i];
    const bool ok = row >= 0 && row < num_rows;
    if (!ok && c == 0) raise_device_error(err, kErrIndexSelect, i, row, num_rows);
    if constexpr (VEC) {
      int4 v = ok ? *reinterpret_cast<const int4*>(table + row * row_size + c) : make_int4(0, 0, 0, 0);
      *reinterpret_cast<int4*>(out + i * row_size + c) = v;
    } else {
      out[i * row_size + c] = ok ? table[row * row_size + c] : W(0);
    }
  }
}

template <typename W, bool VEC>
__global__ void index_copy_kernel(W* out, const W* src, const int* idx, int64_t n, int64_t row_size, int64_t num_rows,
                                  DeviceError* err) {
  constexpr int N = VEC ? 16 / sizeof(W) : 1;
  const int64_t rv = row_size / N, total = n * rv;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t / rv, c = (t - i * rv) * N;
    const int64_t row = idx[i];
    if (row < 0 || row >= num_rows) {
      if (c == 0) raise_device_error(err, kErrIndexCopy, i, row, num_rows);
      continue;
    }
    if constexpr (VEC)
      *reinterpret_cast<int4*>(out + row * row_size + c) = *reinterpret_cast<const int4*>(src + i * row_size + c);
    else
      out[row * row_size + c] = src[i * row_size + c];
  }
}

// keys[i] = idx[i] (numRows for a bad index, sorted last and skipped), vals[i] = i.
__global__ void index_add_prepare(int* keys, int* vals, const int* idx, int64_t n, int64_t num_rows,
                                  DeviceError* err) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int row = idx[i];
    const bool ok = row >= 0 && row < num_rows;
    if (!ok) raise_device_error(err, kErrIndexAdd, i, row, num_rows);
    keys[i] = ok ? row : int(num_rows);
    vals[i] = int(i);
  }
}

constexpr int kTile = 32;     // sorted positions per tile block
constexpr int kFinishRows = 8;  // piece sums in flight per column in the finish kernel

// V columns per thread: 8 (16-byte bf16 / two 16-byte fp32 accesses) or 1.
template <int V>
struct Cols {
  float v[V];
};

template <typename T, int V>
__device__ __forceinline__ void load_cols(Cols<V>& r, const T* p) {
  if constexpr (V == 1) {
    r.v[0] = to_f<T>(*p);
  } else if constexpr (sizeof(T) == 2) {
    static_assert(V == 8, "bf16 vectors are 8 wide");
    const Vec<T> a = load_vec(p);
#pragma unroll
    for (int k = 0; k < 8; ++k) r.v[k] = to_f<T>(a.v[k]);
  } else {
    static_assert(V == 8, "fp32 vectors are 2 x 4 wide");
    const float4 a = *reinterpret_cast<const float4*>(p), b = *reinterpret_cast<const float4*>(p + 4);
    r.v[0] = a.x, r.v[1] = a.y, r.v[2] = a.z, r.v[3] = a.w;
    r.v[4] = b.x, r.v[5] = b.y, r.v[6] = b.z, r.v[7] = b.w;
  }
}

template <typename T, int V>
__device__ __forceinline__ void store_cols(T* p, const Cols<V>& r) {
  if constexpr (V == 1) {
    *p = from_f<T>(r.v[0]);
  } else if constexpr (sizeof(T) == 2) {
    Vec<T> a;
#pragma unroll
    for (int k = 0; k < 8; ++k) a.v[k] = from_f<T>(r.v[k]);
    store_vec(p, a);
  } else {
    *reinterpret_cast<float4*>(p) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
    *reinterpret_cast<float4*>(p + 4) = make_float4(r.v[4], r.v[5], r.v[6], r.v[7]);
  }
}

// out[key] += acc (out in the gradient dtype, one rounding).
template <typename G, int V>
__device__ __forceinline__ void add_cols(G* p, const Cols<V>& acc) {
  Cols<V> o;
  load_cols<G, V>(o, p);
#pragma unroll
  for (int k = 0; k < V; ++k) o.v[k] += acc.v[k];
  store_cols<G, V>(p, o);
}

// Block (tile t, column chunk): positions [t kTile, min((t + 1) kTile, n)) in
// sorted order. partial: (2 tiles, row_size) fp32, slot 0 and 1 per tile.
template <typename T, typename G, int V>
__global__ void index_add_tiles(G* out, float* partial, const T* src, const int* keys, const int* vals, int64_t n,
                                int64_t row_size, int num_rows) {
  const int64_t t = blockIdx.x;
  const int64_t c = (int64_t(blockIdx.y) * blockDim.x + threadIdx.x) * V;
  if (c >= row_size) return;
  const int64_t p0 = t * kTile, p1 = p0 + kTile < n ? p0 + kTile : n;
  bool before = p0 > 0 && keys[p0 - 1] == keys[p0];  // the current segment began in an earlier tile
  Cols<V> acc;
#pragma unroll
  for (int k = 0; k < V; ++k) acc.v[k] = 0.f;
  for (int64_t q = p0; q < p1; q += 8) {
    // Issue up to eight row loads before the first add; add them in order.
    Cols<V> r[8];
#pragma unroll
    for (int j = 0; j < 8; ++j)
      if (q + j < p1) load_cols<T, V>(r[j], src + int64_t(vals[q + j]) * row_size + c);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int64_t pos = q + j;
      if (pos >= p1) break;
#pragma unroll
      for (int k = 0; k < V; ++k) acc.v[k] += r[j].v[k];
      const int key = keys[pos];
      const bool seg_last = pos + 1 == n || keys[pos + 1] != key;
      if (!seg_last && pos + 1 < p1) continue;
      if (key < num_rows) {  // key == num_rows marks bad indices: skipped
        if (seg_last && !before) add_cols<G, V>(out + int64_t(key) * row_size + c, acc);
        else store_cols<float, V>(partial + (2 * t + (before ? 0 : 1)) * row_size + c, acc);
      }
#pragma unroll
      for (int k = 0; k < V; ++k) acc.v[k] = 0.f;
      before = false;
    }
  }
}

// Block (tile t, column chunk), blockDim (x, kFinishRows): if a segment starts
// in tile t and runs past its end, sums its pieces (tile t slot 1, then slot 0
// of each following tile it reaches): thread row y takes pieces y, y + 8, ...
// in order, then the 8 row sums are added in row order. Adds the total to out.
template <typename G, int V>
__global__ void index_add_finish(G* out, const float* partial, const int* keys, int64_t n, int64_t row_size,
                                 int num_rows) {
  extern __shared__ float sm[];  // [kFinishRows][blockDim.x * V]
  const int64_t t = blockIdx.x;
  const int64_t p0 = t * kTile, p1 = p0 + kTile;
  if (p1 >= n) return;
  const int key = keys[p1 - 1];
  if (key >= num_rows || keys[p1] != key) return;
  if (keys[p0] == key && p0 > 0 && keys[p0 - 1] == key) return;  // began in an earlier tile
  // End of the segment: first sorted position past p1 whose key differs (binary search).
  int64_t lo = p1, hi = n;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (keys[mid] == key) lo = mid + 1;
    else hi = mid;
  }
  const int64_t pieces = (lo - 1) / kTile - t + 1;
  const int64_t c = (int64_t(blockIdx.y) * blockDim.x + threadIdx.x) * V;
  const bool active = c < row_size;
  Cols<V> acc;
#pragma unroll
  for (int k = 0; k < V; ++k) acc.v[k] = 0.f;
  if (active) {
    for (int64_t j = threadIdx.y; j < pieces; j += kFinishRows) {
      Cols<V> r;
      load_cols<float, V>(r, partial + (2 * (t + j) + (j == 0 ? 1 : 0)) * row_size + c);
#pragma unroll
      for (int k = 0; k < V; ++k) acc.v[k] += r.v[k];
    }
  }
  float* mine = sm + (int64_t(threadIdx.y) * blockDim.x + threadIdx.x) * V;
#pragma unroll
  for (int k = 0; k < V; ++k) mine[k] = acc.v[k];
  __syncthreads();
  if (threadIdx.y != 0 || !active) return;
  for (int y = 1; y < kFinishRows; ++y) {
    const float* other = sm + (int64_t(y) * blockDim.x + threadIdx.x) * V;
#pragma unroll
    for (int k = 0; k < V; ++k) acc.v[k] += other[k];
  }
  add_cols<G, V>(out + int64_t(key) * row_size + c, acc);
}

template <typename T, typename G, int V>
void index_add_launch(G* out, float* partial, const T* src, const int* keys, const int* vals, int64_t n,
                      int64_t row_size, int num_rows, cudaStream_t st) {
  const int64_t tiles = ceil_div(n, kTile);
  const int64_t vecs = ceil_div(row_size, V);
  // At most 128 threads of 8 columns: the finish kernel's shared rows stay at 32 KB.
  const int threads = int(std::min<int64_t>(V == 8 ? 128 : 256, ceil_div(vecs, 32) * 32));
  const dim3 grid{unsigned(tiles), unsigned(ceil_div(vecs, threads)), 1u};
  index_add_tiles<T, G, V><<<grid, threads, 0, st>>>(out, partial, src, keys, vals, n, row_size, num_rows);
  MBERT_LAUNCH_CHECK();
  if (tiles > 1) {
    const std::size_t smem = std::size_t(kFinishRows) * threads * V * sizeof(float);
    index_add_finish<G, V><<<grid, dim3(threads, kFinishRows, 1), smem, st>>>(out, partial, keys, n, row_size,
                                                                             num_rows);
    MBERT_LAUNCH_CHECK();
  }
}

template <typename T, typename G>
void index_add(G* out, const T* src, const int* idx, int64_t n, int64_t row_size, int64_t num_rows) {
  if (n == 0 || row_size == 0) return;
  cudaStream_t st = stream();
  int end_bit = 1;
  while ((int64_t(1) << end_bit) <= num_rows) ++end_bit;  // keys are in [0, num_rows]
  std::size_t temp_bytes = 0;
  MBERT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, static_cast<const int*>(nullptr),
                                                   static_cast<int*>(nullptr), static_cast<const int*>(nullptr),
                                                   static_cast<int*>(nullptr), n, 0, end_bit, st));
  // Scratch from the caching allocator; freed at the end (stream order keeps it valid).
  const auto align = [](std::size_t b) { return (b + 255) & ~std::size_t(255); };
  const std::size_t arrays = align(4 * std::size_t(n) * sizeof(int));
  const std::size_t partial_bytes = align(2 * std::size_t(ceil_div(n, kTile)) * std::size_t(row_size) * sizeof(float));
  char* scratch = static_cast<char*>(alloc(arrays + partial_bytes + temp_bytes + 256));
  int* keys_in = reinterpret_cast<int*>(scratch);
  int* vals_in = keys_in + n;
  int* keys_out = vals_in + n;
  int* vals_out = keys_out + n;
  float* partial = reinterpret_cast<float*>(scratch + arrays);
  void* temp = scratch + arrays + partial_bytes;
  try {
    index_add_prepare<<<grid_for(n, 256), 256, 0, st>>>(keys_in, vals_in, idx, n, num_rows, device_error());
    MBERT_LAUNCH_CHECK();
    MBERT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, vals_in, vals_out, n, 0,
                                                     end_bit, st));
    const bool vec = row_size % 8 == 0 && aligned16(out) && aligned16(src);
    if (vec)
      index_add_launch<T, G, 8>(out, partial, src, keys_out, vals_out, n, row_size, int(num_rows), st);
    else
      index_add_launch<T, G, 1>(out, partial, src, keys_out, vals_out, n, row_size, int(num_rows), st);
  } catch (...) {
    free(scratch);
    throw;
  }
  free(scratch);
}

// ---- wrappers --------------------------------------------------------------------------

DType storage_dtype(const Args& a, int i) {
  DType d = a.dtype(i);
  if (d == DType::F64) throw_f64(a.fn());
  return d;
}

template <typename Kernel2, typename Kernel4>
void launch_rows(DType dt, int64_t n, int64_t row_size, const void* p0, const void* p1, Kernel2 k2, Kernel4 k4) {
  const std::size_t es = dtype_size(dt);
  const int N = int(16 / es);
  const bool vec = row_size % N == 0 && aligned16(p0) && aligned16(p1);
  const int64_t work = vec ? n * row_size / N : n * row_size;
  const unsigned grid = grid_for(work, 256);
  if (es == 2) k2(grid, vec);
  else k4(grid, vec);
  MBERT_LAUNCH_CHECK();
}

Napi::Value index_select_js(const Napi::CallbackInfo& info) {
  Args a(info, "indexSelect", 7);
  const DType dt = storage_dtype(a, 0);
  const int64_t n = a.size(4, "n"), rs = a.size(5, "rowSize"), nr = a.size(6, "numRows");
  void* out = dbuf(a, 1, dt, n * rs, "out");
  const void* table = dbuf(a, 2, dt, n > 0 ? nr * rs : 0, "table");
  const int* idx = dbuf<const int>(a, 3, DType::I32, n, "idx");
  if (n * rs == 0) return undefined(a);
  cudaStream_t st = stream();
  DeviceError* err = device_error();
  launch_rows(
      dt, n, rs, out, table,
      [&](unsigned g, bool vec) {
        auto* o = static_cast<uint16_t*>(out);
        auto* t = static_cast<const uint16_t*>(table);
        if (vec) index_select_kernel<uint16_t, true><<<g, 256, 0, st>>>(o, t, idx, n, rs, nr, err);
        else index_select_kernel<uint16_t, false><<<g, 256, 0, st>>>(o, t, idx, n, rs, nr, err);
      },
      [&](unsigned g, bool vec) {
        auto* o = static_cast<uint32_t*>(out);
        auto* t = static_cast<const uint32_t*>(table);
        if (vec) index_select_kernel<uint32_t, true><<<g, 256, 0, st>>>(o, t, idx, n, rs, nr, err);
        else index_select_kernel<uint32_t, false><<<g, 256, 0, st>>>(o, t, idx, n, rs, nr, err);
      });
  return undefined(a);
}

Napi::Value index_copy_js(const Napi::CallbackInfo& info) {
  Args a(info, "indexCopy", 7);
  const DType dt = storage_dtype(a, 0);
  const int64_t n = a.size(4, "n"), rs = a.size(5, "rowSize"), nr = a.size(6, "numRows");
  void* out = dbuf(a, 1, dt, n > 0 ? nr * rs : 0, "out");
  const void* src = dbuf(a, 2, dt, n * rs, "src");
  const int* idx = dbuf<const int>(a, 3, DType::I32, n, "idx");
  if (n * rs == 0) return undefined(a);
  cudaStream_t st = stream();
  DeviceError* err = device_error();
  launch_rows(
      dt, n, rs, out, src,
      [&](unsigned g, bool vec) {
        auto* o = static_cast<uint16_t*>(out);
        auto* s = static_cast<const uint16_t*>(src);
        if (vec) index_copy_kernel<uint16_t, true><<<g, 256, 0, st>>>(o, s, idx, n, rs, nr, err);
        else index_copy_kernel<uint16_t, false><<<g, 256, 0, st>>>(o, s, idx, n, rs, nr, err);
      },
      [&](unsigned g, bool vec) {
        auto* o = static_cast<uint32_t*>(out);
        auto* s = static_cast<const uint32_t*>(src);
        if (vec) index_copy_kernel<uint32_t, true><<<g, 256, 0, st>>>(o, s, idx, n, rs, nr, err);
        else index_copy_kernel<uint32_t, false><<<g, 256, 0, st>>>(o, s, idx, n, rs, nr, err);
      });
  return undefined(a);
}

// indexAdd(dtype, gradDtype, out, src, idx, n, rowSize, numRows)
Napi::Value index_add_js(const Napi::CallbackInfo& info) {
  Args a(info, "indexAdd", 8);
  const DType dt = float_dtype(a, 0);
  const DType gt = float_dtype(a, 1);
  const int64_t n = a.size(5, "n"), rs = a.size(6, "rowSize"), nr = a.size(7, "numRows");
  MBERT_CHECK(n <= INT32_MAX && nr < INT32_MAX, "cuda.indexAdd: n and numRows must fit in int32");
  MBERT_CHECK(ceil_div(rs, 256) <= 65535, "cuda.indexAdd: rowSize too large");
  void* out = dbuf(a, 2, gt, n > 0 ? nr * rs : 0, "out");
  const void* src = dbuf(a, 3, dt, n * rs, "src");
  const int* idx = dbuf<const int>(a, 4, DType::I32, n, "idx");
  if (dt == DType::BF16 && gt == DType::F32)
    index_add<bf16, float>(static_cast<float*>(out), static_cast<const bf16*>(src), idx, n, rs, nr);
  else if (dt == DType::BF16 && gt == DType::BF16)
    index_add<bf16, bf16>(static_cast<bf16*>(out), static_cast<const bf16*>(src), idx, n, rs, nr);
  else if (dt == DType::F32 && gt == DType::F32)
    index_add<float, float>(static_cast<float*>(out), static_cast<const float*>(src), idx, n, rs, nr);
  else
    throw Error(str("cuda.indexAdd: ", dtype_name(dt), " src with ", dtype_name(gt), " out is not supported"));
  return undefined(a);
}

}  // namespace

MBERT_EXPORT(cuda, indexSelect, index_select_js);
MBERT_EXPORT(cuda, indexAdd, index_add_js);
MBERT_EXPORT(cuda, indexCopy, index_copy_js);

}  // namespace cuda
}  // namespace mbert
