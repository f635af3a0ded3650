// index.cu — row gather/scatter: indexSelect (embedding lookup, `=`),
// indexAdd (embedding gradient, `+=`) and indexCopy (`=`, distinct indices).
//   indexSelect: out(n, rowSize) = table(numRows, rowSize)[idx[i]]
//   indexAdd:    out(numRows, rowSize) in gradDtype += src(n, rowSize)[i] at idx[i]
//   indexCopy:   out(numRows, rowSize)[idx[i]] = src(n, rowSize)[i]
// A bad index sets the device error flag (read by takeDeviceError); its row is
// skipped (indexSelect writes zeros there).
//
// indexAdd is deterministic: the (idx[i], i) pairs are sorted with CUB's
// stable radix sort, so each output row's contributions form one segment in
// increasing i; one block per (segment, column chunk) sums its segment in that
// order in fp32 and adds the total to out once. No floating-point atomics.
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

// seg_end[key] = one past the last sorted position holding key.
__global__ void index_add_segment_ends(int* seg_end, const int* keys, int64_t n, int64_t num_rows) {
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < n; p += int64_t(gridDim.x) * blockDim.x) {
    const int key = keys[p];
    if (key < num_rows && (p == n - 1 || keys[p + 1] != key)) seg_end[key] = int(p + 1);
  }
}

// Block (p, chunk): if p starts a segment of equal keys, sums src rows of the
// segment (in sorted = increasing-i order) for columns of this chunk and adds
// the sum to out[key]. Eight rows are loaded at a time to keep loads in flight.
template <typename T, typename G>
__global__ void index_add_segments(G* out, const T* src, const int* keys, const int* vals, const int* seg_end,
                                   int64_t row_size, int64_t num_rows) {
  const int64_t p = blockIdx.x;
  const int key = keys[p];
  if (key >= num_rows || (p > 0 && keys[p - 1] == key)) return;
  const int64_t end = seg_end[key];
  const int64_t c = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c >= row_size) return;
  float acc = 0.f;
  int64_t q = p;
  for (; q + 8 <= end; q += 8) {
    float v[8];
#pragma unroll
    for (int k = 0; k < 8; ++k) v[k] = to_f<T>(src[int64_t(vals[q + k]) * row_size + c]);
#pragma unroll
    for (int k = 0; k < 8; ++k) acc += v[k];
  }
  for (; q < end; ++q) acc += to_f<T>(src[int64_t(vals[q]) * row_size + c]);
  G* o = out + int64_t(key) * row_size + c;
  *o = from_f<G>(to_f<G>(*o) + acc);
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
  const std::size_t arrays = (4 * std::size_t(n) + std::size_t(num_rows)) * sizeof(int);
  char* scratch = static_cast<char*>(alloc(arrays + temp_bytes + 256));
  int* keys_in = reinterpret_cast<int*>(scratch);
  int* vals_in = keys_in + n;
  int* keys_out = vals_in + n;
  int* vals_out = keys_out + n;
  int* seg_end = vals_out + n;
  void* temp = scratch + ((arrays + 255) & ~std::size_t(255));
  try {
    index_add_prepare<<<grid_for(n, 256), 256, 0, st>>>(keys_in, vals_in, idx, n, num_rows, device_error());
    MBERT_LAUNCH_CHECK();
    MBERT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, vals_in, vals_out, n, 0,
                                                     end_bit, st));
    index_add_segment_ends<<<grid_for(n, 256), 256, 0, st>>>(seg_end, keys_out, n, num_rows);
    MBERT_LAUNCH_CHECK();
    const int threads = 256;
    dim3 grid{unsigned(n), unsigned(ceil_div(row_size, threads)), 1u};
    index_add_segments<T, G><<<grid, threads, 0, st>>>(out, src, keys_out, vals_out, seg_end, row_size, num_rows);
    MBERT_LAUNCH_CHECK();
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
  MBERT_CHECK(n <= 2147483647 && ceil_div(rs, 256) <= 65535, "cuda.indexAdd: rowSize too large");
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
