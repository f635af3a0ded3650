// index.cc — row gather/scatter: indexSelect (embedding lookup), indexAdd
// (embedding gradient, `+=`, deterministic: rows are added in index order, the
// work is split by columns only) and indexCopy (`=`, distinct indices).
// Indices are int32 and bounds-checked before anything is written.
#include <cstring>
#include <vector>

#include "cpu/cpu.h"

namespace mbert {
namespace cpu {
namespace {

void check_indices(const char* fn, const int32_t* idx, int64_t n, int64_t num_rows) {
  for (int64_t i = 0; i < n; ++i) {
    if (idx[i] < 0 || idx[i] >= num_rows) {
      throw Error(str(fn, ": index ", idx[i], " at position ", i, " is outside [0, ", num_rows, ")"));
    }
  }
}

// indexSelect(dtype, out, table, idx, n, rowSize, numRows)  out: (n, rowSize)  table: (numRows, rowSize)
Napi::Value index_select_js(const Napi::CallbackInfo& info) {
  Args a(info, "indexSelect", 7);
  DType dt = a.dtype(0);
  int64_t n = a.size(4, "n"), row = a.size(5, "rowSize"), num_rows = a.size(6, "numRows");
  std::size_t es = dtype_size(dt), rb = static_cast<std::size_t>(row) * es;
  auto* out = static_cast<uint8_t*>(raw_buf(a, 1, n * rb, "out"));
  auto* table = static_cast<const uint8_t*>(raw_buf(a, 2, n > 0 ? num_rows * rb : 0, "table"));
  const int32_t* idx = buf<int32_t>(a, 3, DType::I32, n, "idx");
  check_indices("indexSelect", idx, n, num_rows);
  parallel_for(n, std::max<int64_t>(1, 65536 / std::max<std::size_t>(1, rb)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) std::memcpy(out + i * rb, table + idx[i] * rb, rb);
  });
  return info.Env().Undefined();
}

// indexAdd(dtype, gradDtype, out, src, idx, n, rowSize, numRows)  out: (numRows, rowSize)  src: (n, rowSize)
Napi::Value index_add_js(const Napi::CallbackInfo& info) {
  Args a(info, "indexAdd", 8);
  DType dt = a.dtype(0), gdt = a.dtype(1);
  int64_t n = a.size(5, "n"), row = a.size(6, "rowSize"), num_rows = a.size(7, "numRows");
  const int32_t* idx = buf<int32_t>(a, 4, DType::I32, n, "idx");
  check_indices("indexAdd", idx, n, num_rows);
  MBERT_CPU_DISPATCH_FLOAT("indexAdd", dt, {
    const T* src = buf<T>(a, 3, dt, n * row, "src");
    using S = T;
    MBERT_CPU_DISPATCH_FLOAT("indexAdd", gdt, {
      T* out = buf<T>(a, 2, gdt, n > 0 ? num_rows * row : 0, "out");
      using G = acc_t<T>;
      constexpr int64_t kCols = 256;
      parallel_for((row + kCols - 1) / kCols, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t blk = lo; blk < hi; ++blk) {
          int64_t c0 = blk * kCols, c1 = std::min(row, c0 + kCols);
          for (int64_t i = 0; i < n; ++i) {
            T* o = out + int64_t(idx[i]) * row;
            const S* s = src + i * row;
            for (int64_t c = c0; c < c1; ++c) o[c] = T(G(o[c]) + G(acc_t<S>(s[c])));
          }
        }
      });
    });
  });
  return info.Env().Undefined();
}

// indexCopy(dtype, out, src, idx, n, rowSize, numRows)  out: (numRows, rowSize)  src: (n, rowSize)
Napi::Value index_copy_js(const Napi::CallbackInfo& info) {
  Args a(info, "indexCopy", 7);
  DType dt = a.dtype(0);
  int64_t n = a.size(4, "n"), row = a.size(5, "rowSize"), num_rows = a.size(6, "numRows");
  std::size_t es = dtype_size(dt), rb = static_cast<std::size_t>(row) * es;
  auto* out = static_cast<uint8_t*>(raw_buf(a, 1, n > 0 ? num_rows * rb : 0, "out"));
  auto* src = static_cast<const uint8_t*>(raw_buf(a, 2, n * rb, "src"));
  const int32_t* idx = buf<int32_t>(a, 3, DType::I32, n, "idx");
  check_indices("indexCopy", idx, n, num_rows);
  std::vector<int64_t> seen(static_cast<std::size_t>(n > 0 ? num_rows : 0), -1);
  for (int64_t i = 0; i < n; ++i) {
    MBERT_CHECK(seen[idx[i]] < 0, "indexCopy: index ", idx[i], " appears at positions ", seen[idx[i]], " and ", i,
                " (indices must be distinct)");
    seen[idx[i]] = i;
  }
  parallel_for(n, std::max<int64_t>(1, 65536 / std::max<std::size_t>(1, rb)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) std::memcpy(out + idx[i] * rb, src + i * rb, rb);
  });
  return info.Env().Undefined();
}

}  // namespace

MBERT_EXPORT(cpu, indexSelect, index_select_js);
MBERT_EXPORT(cpu, indexAdd, index_add_js);
MBERT_EXPORT(cpu, indexCopy, index_copy_js);

}  // namespace cpu
}  // namespace mbert
