// binary.cc — binary: out[idx] = a[idx . aStrides] (op) b[idx . bStrides] over a
// row-major `shape` (up to 8 dims, out contiguous, stride 0 broadcasts), with a
// flat path when both inputs are contiguous. Comparisons write 1 or 0.
// Accumulation: none (`=`). float32/bfloat16 compute in float, float64 in double.
#include <cmath>

#include "cpu/strided.h"

namespace mbert {
namespace cpu {
namespace {

enum BinaryOp { ADD, SUB, MUL, DIV, MAXIMUM, MINIMUM, POW, EQ, GT, LT, GE, LE, BINARY_COUNT };

template <int OP, typename C>
inline C binary_f(C x, C y) {
  if constexpr (OP == ADD) return x + y;
  if constexpr (OP == SUB) return x - y;
  if constexpr (OP == MUL) return x * y;
  if constexpr (OP == DIV) return x / y;
  if constexpr (OP == MAXIMUM) return (x > y || x != x) ? x : y;  // NaN propagates
  if constexpr (OP == MINIMUM) return (x < y || x != x) ? x : y;
  if constexpr (OP == POW) return std::pow(x, y);
  if constexpr (OP == EQ) return x == y ? C(1) : C(0);
  if constexpr (OP == GT) return x > y ? C(1) : C(0);
  if constexpr (OP == LT) return x < y ? C(1) : C(0);
  if constexpr (OP == GE) return x >= y ? C(1) : C(0);
  if constexpr (OP == LE) return x <= y ? C(1) : C(0);
  return C(0);
}

template <int OP, typename T>
void binary_kernel(T* out, const T* a, const T* b, const std::vector<int64_t>& shape,
                   const std::vector<int64_t>& as, const std::vector<int64_t>& bs) {
  using C = acc_t<T>;
  int64_t n = numel(shape);
  if (n == 0) return;
  if (shape.empty() || (is_contiguous(shape, as) && is_contiguous(shape, bs))) {
    parallel_for(n, 1 << 14, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) out[i] = T(binary_f<OP, C>(C(a[i]), C(b[i])));
    });
    return;
  }
  int64_t cols = shape.back();
  int64_t rows = n / cols;
  int64_t sa = as.back(), sb = bs.back();
  RowWalker walk(shape, {&as, &bs});
  parallel_for(rows, std::max<int64_t>(1, (1 << 14) / cols), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      int64_t off[2];
      walk.offsets(r, off, 2);
      const T* pa = a + off[0];
      const T* pb = b + off[1];
      T* po = out + r * cols;
      if (sa == 1 && sb == 1) {
        for (int64_t j = 0; j < cols; ++j) po[j] = T(binary_f<OP, C>(C(pa[j]), C(pb[j])));
      } else if (sa == 1 && sb == 0) {
        C y = C(pb[0]);
        for (int64_t j = 0; j < cols; ++j) po[j] = T(binary_f<OP, C>(C(pa[j]), y));
      } else if (sa == 0 && sb == 1) {
        C x = C(pa[0]);
        for (int64_t j = 0; j < cols; ++j) po[j] = T(binary_f<OP, C>(x, C(pb[j])));
      } else {
        for (int64_t j = 0; j < cols; ++j) po[j] = T(binary_f<OP, C>(C(pa[j * sa]), C(pb[j * sb])));
      }
    }
  });
}

template <typename T>
void binary_dispatch(int op, T* out, const T* a, const T* b, const std::vector<int64_t>& shape,
                     const std::vector<int64_t>& as, const std::vector<int64_t>& bs) {
  switch (op) {
#define MBERT_BINARY_CASE(OP) \
  case OP: binary_kernel<OP, T>(out, a, b, shape, as, bs); break;
    MBERT_BINARY_CASE(ADD) MBERT_BINARY_CASE(SUB) MBERT_BINARY_CASE(MUL) MBERT_BINARY_CASE(DIV)
    MBERT_BINARY_CASE(MAXIMUM) MBERT_BINARY_CASE(MINIMUM) MBERT_BINARY_CASE(POW) MBERT_BINARY_CASE(EQ)
    MBERT_BINARY_CASE(GT) MBERT_BINARY_CASE(LT) MBERT_BINARY_CASE(GE) MBERT_BINARY_CASE(LE)
#undef MBERT_BINARY_CASE
  }
}

// binary(op, dtype, out, a, b, shape, aStrides, bStrides)
Napi::Value binary_js(const Napi::CallbackInfo& info) {
  Args a(info, "binary", 8);
  int64_t op = a.i64(0);
  MBERT_CHECK(op >= 0 && op < BINARY_COUNT, "binary: unknown op code ", op, " (expected 0..", BINARY_COUNT - 1, ")");
  DType dt = a.dtype(1);
  std::vector<int64_t> shape = a.ints(5), as = a.ints(6), bs = a.ints(7);
  check_view("binary", "aStrides", shape, as);
  check_view("binary", "bStrides", shape, bs);
  int64_t n = numel(shape);
  MBERT_CPU_DISPATCH_FLOAT("binary", dt, {
    T* out = buf<T>(a, 2, dt, n, "out");
    const T* x = buf<T>(a, 3, dt, extent(shape, as), "a");
    const T* y = buf<T>(a, 4, dt, extent(shape, bs), "b");
    binary_dispatch<T>(static_cast<int>(op), out, x, y, shape, as, bs);
  });
  return info.Env().Undefined();
}

}  // namespace

MBERT_EXPORT(cpu, binary, binary_js);

}  // namespace cpu
}  // namespace mbert
