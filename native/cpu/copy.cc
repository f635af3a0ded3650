// copy.cc — fill, stridedCopy (permute/slice/expand/concat/pad as one strided
// walk) and cast between all pairs of float32, float64, bfloat16 and int32.
// Accumulation: none (`=`). Casts to int32 truncate toward zero (NaN -> 0,
// saturating at the int32 range); casts to bfloat16 round to nearest even.
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/strided.h"

namespace mbert {
namespace cpu {
namespace {

// Value conversion through double (exact for every source dtype).
template <typename T> inline double to_f64(T v) { return static_cast<double>(static_cast<acc_t<T>>(v)); }
template <> inline double to_f64<int32_t>(int32_t v) { return v; }

template <typename T> inline T from_f64(double v) { return static_cast<T>(v); }
template <> inline bf16 from_f64<bf16>(double v) { return bf16(static_cast<float>(v)); }
template <> inline int32_t from_f64<int32_t>(double v) {
  if (v != v) return 0;
  if (v >= 2147483647.0) return std::numeric_limits<int32_t>::max();
  if (v <= -2147483648.0) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(v);
}

template <typename Fn>
void dispatch_any(const char* fn, DType dt, Fn&& body) {
  switch (dt) {
    case DType::F32: body(float{}); break;
    case DType::F64: body(double{}); break;
    case DType::BF16: body(bf16{}); break;
    case DType::I32: body(int32_t{}); break;
    default: bad_dtype(fn, dt, "float32, float64, bfloat16, int32");
  }
}

// fill(dtype, out, n, value)
Napi::Value fill_js(const Napi::CallbackInfo& info) {
  Args a(info, "fill", 4);
  DType dt = a.dtype(0);
  int64_t n = a.size(2, "n");
  double value = a.real(3);
  dispatch_any("fill", dt, [&](auto tag) {
    using T = decltype(tag);
    T* out = buf<T>(a, 1, dt, n, "out");
    T v = from_f64<T>(value);
    parallel_for(n, 1 << 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) out[i] = v;
    });
  });
  return info.Env().Undefined();
}

// Copies by element size: values are moved bit for bit.
template <typename W>
void strided_copy(W* out, const std::vector<int64_t>& os, const W* x, const std::vector<int64_t>& xs,
                  const std::vector<int64_t>& shape) {
  int64_t n = numel(shape);
  if (n == 0) return;
  if (shape.empty()) {
    out[0] = x[0];
    return;
  }
  int64_t cols = shape.back();
  int64_t rows = n / cols;
  int64_t so = os.back(), sx = xs.back();
  RowWalker walk(shape, {&os, &xs});
  parallel_for(rows, std::max<int64_t>(1, (1 << 15) / cols), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      int64_t off[2];
      walk.offsets(r, off, 2);
      W* po = out + off[0];
      const W* px = x + off[1];
      if (so == 1 && sx == 1) {
        std::memmove(po, px, static_cast<std::size_t>(cols) * sizeof(W));
      } else {
        for (int64_t j = 0; j < cols; ++j) po[j * so] = px[j * sx];
      }
    }
  });
}

// stridedCopy(dtype, out, outOffset, outStrides, x, xOffset, xStrides, shape)
Napi::Value strided_copy_js(const Napi::CallbackInfo& info) {
  Args a(info, "stridedCopy", 8);
  DType dt = a.dtype(0);
  int64_t ooff = a.size(2, "outOffset");
  std::vector<int64_t> os = a.ints(3);
  int64_t xoff = a.size(5, "xOffset");
  std::vector<int64_t> xs = a.ints(6), shape = a.ints(7);
  check_view("stridedCopy", "outStrides", shape, os);
  check_view("stridedCopy", "xStrides", shape, xs);
  std::size_t es = dtype_size(dt);
  int64_t oext = extent(shape, os), xext = extent(shape, xs);
  auto* out = static_cast<uint8_t*>(raw_buf(a, 1, oext ? (ooff + oext) * es : 0, "out"));
  auto* x = static_cast<const uint8_t*>(raw_buf(a, 4, xext ? (xoff + xext) * es : 0, "x"));
  if (oext == 0) return info.Env().Undefined();
  out += ooff * es;
  x += xoff * es;
  switch (es) {
    case 2: strided_copy(reinterpret_cast<uint16_t*>(out), os, reinterpret_cast<const uint16_t*>(x), xs, shape); break;
    case 4: strided_copy(reinterpret_cast<uint32_t*>(out), os, reinterpret_cast<const uint32_t*>(x), xs, shape); break;
    default: strided_copy(reinterpret_cast<uint64_t*>(out), os, reinterpret_cast<const uint64_t*>(x), xs, shape); break;
  }
  return info.Env().Undefined();
}

// cast(outDtype, out, xDtype, x, n)
Napi::Value cast_js(const Napi::CallbackInfo& info) {
  Args a(info, "cast", 5);
  DType odt = a.dtype(0), xdt = a.dtype(2);
  int64_t n = a.size(4, "n");
  dispatch_any("cast", odt, [&](auto otag) {
    using O = decltype(otag);
    O* out = buf<O>(a, 1, odt, n, "out");
    dispatch_any("cast", xdt, [&](auto xtag) {
      using X = decltype(xtag);
      const X* x = buf<X>(a, 3, xdt, n, "x");
      parallel_for(n, 1 << 15, [&](int64_t lo, int64_t hi) {
        if constexpr (std::is_same_v<O, X>) {
          std::memmove(out + lo, x + lo, static_cast<std::size_t>(hi - lo) * sizeof(O));
        } else if constexpr (std::is_same_v<O, bf16> && std::is_same_v<X, float>) {
          for (int64_t i = lo; i < hi; ++i) out[i] = bf16(x[i]);
        } else if constexpr (std::is_same_v<O, float> && !std::is_same_v<X, int32_t>) {
          for (int64_t i = lo; i < hi; ++i) out[i] = static_cast<float>(x[i]);
        } else {
          for (int64_t i = lo; i < hi; ++i) out[i] = from_f64<O>(to_f64<X>(x[i]));
        }
      });
    });
  });
  return info.Env().Undefined();
}

}  // namespace

MBERT_EXPORT(cpu, fill, fill_js);
MBERT_EXPORT(cpu, stridedCopy, strided_copy_js);
MBERT_EXPORT(cpu, cast, cast_js);

}  // namespace cpu
}  // namespace mbert
