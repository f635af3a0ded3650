// reduce.cc — reduce (sum/max/min/sumsq over the middle axis of x(outer, size,
// inner)), argmax (int32, first on ties, NaN wins), sumSquares and sumSquaresList
// (global norms; the list form sums a table of tensors).
// Accumulation: reduce and argmax write `=`; sumSquares writes `=` or `+=`
// (accumulate). Sums accumulate in double for every dtype, in a fixed order
// (independent of the thread count).
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/cpu.h"

namespace mbert {
namespace cpu {
namespace {

enum ReduceOp { SUM, MAX, MIN, SUMSQ, REDUCE_COUNT };
constexpr int64_t kInnerBlock = 256;

// out: (outer, inner)  x: (outer, size, inner)
template <typename T>
void reduce_kernel(int op, T* out, const T* x, int64_t outer, int64_t size, int64_t inner) {
  int64_t blocks = (inner + kInnerBlock - 1) / kInnerBlock;
  int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, size * std::min(inner, kInnerBlock)));
  parallel_for(outer * blocks, grain, [&](int64_t lo, int64_t hi) {
    double acc[kInnerBlock];
    for (int64_t t = lo; t < hi; ++t) {
      int64_t o = t / blocks;
      int64_t j0 = (t % blocks) * kInnerBlock;
      int64_t w = std::min(kInnerBlock, inner - j0);
      double init = op == MAX ? -INFINITY : op == MIN ? INFINITY : 0.0;
      for (int64_t j = 0; j < w; ++j) acc[j] = init;
      const T* base = x + o * size * inner + j0;
      for (int64_t s = 0; s < size; ++s) {
        const T* row = base + s * inner;
        switch (op) {
          case SUM: for (int64_t j = 0; j < w; ++j) acc[j] += double(row[j]); break;
          case SUMSQ: for (int64_t j = 0; j < w; ++j) { double v = double(row[j]); acc[j] += v * v; } break;
          case MAX: for (int64_t j = 0; j < w; ++j) { double v = double(row[j]); if (v > acc[j] || v != v) acc[j] = v; } break;
          case MIN: for (int64_t j = 0; j < w; ++j) { double v = double(row[j]); if (v < acc[j] || v != v) acc[j] = v; } break;
        }
      }
      // A NaN seen by max/min sticks: later comparisons with NaN are false.
      T* po = out + o * inner + j0;
      for (int64_t j = 0; j < w; ++j) po[j] = T(static_cast<acc_t<T>>(acc[j]));
    }
  });
}

// reduce(op, dtype, out, x, outer, size, inner)
Napi::Value reduce_js(const Napi::CallbackInfo& info) {
  Args a(info, "reduce", 7);
  int64_t op = a.i64(0);
  MBERT_CHECK(op >= 0 && op < REDUCE_COUNT, "reduce: unknown op code ", op, " (expected 0..", REDUCE_COUNT - 1, ")");
  DType dt = a.dtype(1);
  int64_t outer = a.size(4, "outer"), size = a.size(5, "size"), inner = a.size(6, "inner");
  MBERT_CPU_DISPATCH_FLOAT("reduce", dt, {
    T* out = buf<T>(a, 2, dt, outer * inner, "out");
    const T* x = buf<T>(a, 3, dt, outer * size * inner, "x");
    reduce_kernel<T>(static_cast<int>(op), out, x, outer, size, inner);
  });
  return info.Env().Undefined();
}

// argmax(dtype, out, x, outer, size, inner)  out: int32 (outer, inner)
Napi::Value argmax_js(const Napi::CallbackInfo& info) {
  Args a(info, "argmax", 6);
  DType dt = a.dtype(0);
  int64_t outer = a.size(3, "outer"), size = a.size(4, "size"), inner = a.size(5, "inner");
  MBERT_CHECK(size > 0 || outer * inner == 0, "argmax: size must be > 0 (argmax of an empty axis is undefined)");
  MBERT_CPU_DISPATCH_FLOAT("argmax", dt, {
    int32_t* out = buf<int32_t>(a, 1, DType::I32, outer * inner, "out");
    const T* x = buf<T>(a, 2, dt, outer * size * inner, "x");
    parallel_for(outer * inner, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, size)), [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        int64_t o = t / inner, j = t % inner;
        const T* p = x + o * size * inner + j;
        double best = double(p[0]);
        int64_t bi = 0;
        for (int64_t s = 1; s < size && best == best; ++s) {
          double v = double(p[s * inner]);
          if (v > best || v != v) { best = v; bi = s; }
        }
        out[t] = static_cast<int32_t>(bi);
      }
    });
  });
  return info.Env().Undefined();
}

// Sum of x(n)^2 in double, in fixed blocks (the same order for every thread count).
template <typename T>
double sum_squares(const T* x, int64_t n) {
  constexpr int64_t kBlock = 1 << 14;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<std::size_t>(blocks), 0.0);
  parallel_for(blocks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      double s = 0;
      const int64_t end = std::min(n, (b + 1) * kBlock);
      for (int64_t i = b * kBlock; i < end; ++i) {
        const double v = double(x[i]);
        s += v * v;
      }
      partial[b] = s;
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

// out (1, stat dtype: float64 for float64 x, else float32) = total, or += when accumulating.
void store_stat(const Args& a, int i, DType dt, double total, bool accumulate) {
  if (dt == DType::F64) {
    double* out = buf<double>(a, i, DType::F64, 1, "out");
    *out = accumulate ? *out + total : total;
  } else {
    float* out = buf<float>(a, i, DType::F32, 1, "out");
    *out = static_cast<float>(accumulate ? double(*out) + total : total);
  }
}

// sumSquares(dtype, out, x, n, accumulate)  out: (1) stat dtype
Napi::Value sum_squares_js(const Napi::CallbackInfo& info) {
  Args a(info, "sumSquares", 5);
  DType dt = a.dtype(0);
  int64_t n = a.size(3, "n");
  bool accumulate = a.flag(4);
  MBERT_CPU_DISPATCH_FLOAT("sumSquares", dt, {
    const T* x = buf<T>(a, 2, dt, n, "x");
    store_stat(a, 1, dt, sum_squares(x, n), accumulate);
  });
  return info.Env().Undefined();
}

// sumSquaresList(dtype, out, table, accumulate)  out: (1) stat dtype, (+)= the sum of x^2
// over every tensor of the table (Float64Array of 2 numbers per tensor: x, n).
Napi::Value sum_squares_list_js(const Napi::CallbackInfo& info) {
  Args a(info, "sumSquaresList", 4);
  DType dt = a.dtype(0);
  constexpr int kWidth = 2;
  const std::vector<double> tab = a.table(2, kWidth, "table");
  bool accumulate = a.flag(3);
  MBERT_CPU_DISPATCH_FLOAT("sumSquaresList", dt, {
    std::vector<std::pair<const T*, int64_t>> xs;  // every entry is checked before any is read
    for (std::size_t e = 0; e < tab.size() / kWidth; ++e) {
      const TableRow row(a, 2, tab, kWidth, e);
      const int64_t n = row.size(1, "n");
      xs.emplace_back(static_cast<const T*>(checked_row_ptr(a, 2, row, 0, static_cast<std::size_t>(n) * dtype_size(dt),
                                                            "x", true, check_range)),
                      n);
    }
    double total = 0;
    for (const auto& [x, n] : xs) total += sum_squares(x, n);
    store_stat(a, 1, dt, total, accumulate);
  });
  return info.Env().Undefined();
}

}  // namespace

MBERT_EXPORT(cpu, reduce, reduce_js);
MBERT_EXPORT(cpu, argmax, argmax_js);
MBERT_EXPORT(cpu, sumSquares, sum_squares_js);
MBERT_EXPORT(cpu, sumSquaresList, sum_squares_list_js);

}  // namespace cpu
}  // namespace mbert
