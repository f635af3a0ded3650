// elementwise.cu — fill, unary/unaryBackward (every UNARY op of types.ts),
// binary (broadcasting through strides), stridedCopy and cast.
// Accumulation: none (`=`); bf16 computes in fp32 and rounds once on store.
// Contiguous data moves in 16-byte vectors when pointers allow; broadcasting
// and strided views are first collapsed to as few dims as possible, then run
// on a 2-D (rows, cols) path (vectorized when the inner stride is 1 or 0) or,
// above two dims, on a general path that decodes up to 8 dims per element.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common/bf16.h"
#include "common/unary.h"
#include "cuda/kernel_util.cuh"

namespace mbert {
namespace cuda {
namespace {

constexpr int kMaxDims = 8;
constexpr int kThreads = 256;

// ---- fill -------------------------------------------------------------------------

template <typename T>
__global__ void fill_kernel(T* out, int64_t n, T value) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  constexpr int N = Vec<T>::N;
  // Head up to the first 16-byte boundary, then vectors, then the tail.
  const int64_t head = std::min<int64_t>(n, int64_t((16 - (reinterpret_cast<uintptr_t>(out) & 15)) & 15) / sizeof(T));
  const bool can_vec = (reinterpret_cast<uintptr_t>(out) % sizeof(T)) == 0;
  if (!can_vec) {
    for (int64_t i = tid; i < n; i += stride) out[i] = value;
    return;
  }
  for (int64_t i = tid; i < head; i += stride) out[i] = value;
  Vec<T> v;
#pragma unroll
  for (int k = 0; k < N; ++k) v.v[k] = value;
  const int64_t nv = (n - head) / N;
  T* base = out + head;
  for (int64_t i = tid; i < nv; i += stride) store_vec(base + i * N, v);
  for (int64_t i = head + nv * N + tid; i < n; i += stride) out[i] = value;
}

// ---- unary ------------------------------------------------------------------------

__device__ __forceinline__ float unary_f(int op, float x, float alpha, float beta) {
  switch (op) {
    case NEG: return -x;
    case EXP: return expf(x);
    case LOG: return logf(x);
    case TANH: return tanhf(x);
    case GELU: return 0.5f * x * (1.f + erff(x * 0.70710678118654752440f));
    case SQRT: return sqrtf(x);
    case ABS: return fabsf(x);
    case RELU: return x > 0.f ? x : 0.f;
    case SIGMOID: return 1.f / (1.f + expf(-x));
    case AFFINE: return alpha * x + beta;
    case POW: return powf(x, alpha);
    case RSQRT: return 1.f / sqrtf(x);
    case SQUARE: return x * x;
  }
  return x;
}

__device__ __forceinline__ float unary_df(int op, float dy, float x, float y, float alpha) {
  switch (op) {
    case NEG: return -dy;
    case EXP: return dy * y;
    case LOG: return dy / x;
    case TANH: return dy * (1.f - y * y);
    case GELU: {
      const float cdf = 0.5f * (1.f + erff(x * 0.70710678118654752440f));
      const float pdf = expf(-0.5f * x * x) * 0.39894228040143267794f;
      return dy * (cdf + x * pdf);
    }
    case SQRT: return dy * 0.5f / y;
    case ABS: return x > 0.f ? dy : x < 0.f ? -dy : 0.f;
    case RELU: return x > 0.f ? dy : 0.f;
    case SIGMOID: return dy * y * (1.f - y);
    case AFFINE: return dy * alpha;
    case POW: return dy * alpha * powf(x, alpha - 1.f);
    case RSQRT: return dy * -0.5f * y * y * y;
    case SQUARE: return dy * 2.f * x;
  }
  return dy;
}

template <typename T>
__global__ void unary_kernel(int op, T* out, const T* x, int64_t n, float alpha, float beta, bool vec) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  int64_t tail = 0;
  if (vec) {
    constexpr int N = Vec<T>::N;
    const int64_t nv = n / N;
    for (int64_t i = tid; i < nv; i += stride) {
      Vec<T> v = load_vec(x + i * N);
#pragma unroll
      for (int k = 0; k < N; ++k) v.v[k] = from_f<T>(unary_f(op, to_f<T>(v.v[k]), alpha, beta));
      store_vec(out + i * N, v);
    }
    tail = nv * N;
  }
  for (int64_t i = tail + tid; i < n; i += stride) out[i] = from_f<T>(unary_f(op, to_f<T>(x[i]), alpha, beta));
}

// x and y may be null when the op does not read them.
template <typename T>
__global__ void unary_backward_kernel(int op, T* dx, const T* dy, const T* x, const T* y, int64_t n, float alpha,
                                      bool vec) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  int64_t tail = 0;
  if (vec) {
    constexpr int N = Vec<T>::N;
    const int64_t nv = n / N;
    for (int64_t i = tid; i < nv; i += stride) {
      Vec<T> g = load_vec(dy + i * N), xv, yv;
      if (x) xv = load_vec(x + i * N);
      if (y) yv = load_vec(y + i * N);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        const float xf = x ? to_f<T>(xv.v[k]) : 0.f, yf = y ? to_f<T>(yv.v[k]) : 0.f;
        g.v[k] = from_f<T>(unary_df(op, to_f<T>(g.v[k]), xf, yf, alpha));
      }
      store_vec(dx + i * N, g);
    }
    tail = nv * N;
  }
  for (int64_t i = tail + tid; i < n; i += stride) {
    const float xf = x ? to_f<T>(x[i]) : 0.f, yf = y ? to_f<T>(y[i]) : 0.f;
    dx[i] = from_f<T>(unary_df(op, to_f<T>(dy[i]), xf, yf, alpha));
  }
}

// ---- strided views ------------------------------------------------------------------

// A shape with up to two stride sets, collapsed: size-1 dims dropped, adjacent
// dims merged where every view is contiguous across them.
struct Layout {
  int nd = 0;
  int64_t shape[kMaxDims];
  int64_t stride[2][kMaxDims];
};

Layout collapse(const std::vector<int64_t>& shape, const std::vector<int64_t>* s0, const std::vector<int64_t>* s1) {
  Layout l;
  const int nviews = s1 ? 2 : 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const int64_t st[2] = {(*s0)[d], s1 ? (*s1)[d] : 0};
    if (l.nd > 0) {
      bool merge = true;
      for (int v = 0; v < nviews; ++v) merge = merge && l.stride[v][l.nd - 1] == st[v] * shape[d];
      if (merge) {
        l.shape[l.nd - 1] *= shape[d];
        for (int v = 0; v < nviews; ++v) l.stride[v][l.nd - 1] = st[v];
        continue;
      }
    }
    l.shape[l.nd] = shape[d];
    for (int v = 0; v < 2; ++v) l.stride[v][l.nd] = st[v];
    ++l.nd;
  }
  return l;
}

struct Dims {
  int nd;
  int64_t shape[kMaxDims];
  int64_t stride[2][kMaxDims];
};

Dims to_dims(const Layout& l) {
  Dims d;
  d.nd = l.nd;
  for (int i = 0; i < l.nd; ++i) {
    d.shape[i] = l.shape[i];
    d.stride[0][i] = l.stride[0][i];
    d.stride[1][i] = l.stride[1][i];
  }
  return d;
}

__device__ __forceinline__ void offsets(const Dims& d, int64_t i, int64_t& o0, int64_t& o1) {
  o0 = 0;
  o1 = 0;
#pragma unroll
  for (int k = kMaxDims - 1; k >= 0; --k) {
    if (k >= d.nd) continue;
    const int64_t q = i / d.shape[k];
    const int64_t r = i - q * d.shape[k];
    i = q;
    o0 += r * d.stride[0][k];
    o1 += r * d.stride[1][k];
  }
}

void check_view(const char* fn, const char* what, const std::vector<int64_t>& shape,
                const std::vector<int64_t>& strides) {
  MBERT_CHECK(shape.size() <= std::size_t(kMaxDims), "cuda.", fn, ": at most ", kMaxDims, " dims are supported, got ",
              shape.size());
  MBERT_CHECK(strides.size() == shape.size(), "cuda.", fn, ": ", what, " has ", strides.size(), " strides for ",
              shape.size(), " dims");
  for (std::size_t d = 0; d < shape.size(); ++d) {
    MBERT_CHECK(shape[d] >= 0, "cuda.", fn, ": shape[", d, "] must be >= 0, got ", shape[d]);
    MBERT_CHECK(strides[d] >= 0, "cuda.", fn, ": ", what, "[", d, "] must be >= 0, got ", strides[d]);
  }
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

int64_t extent(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  int64_t e = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) return 0;
    e += (shape[d] - 1) * strides[d];
  }
  return e;
}

// ---- binary -------------------------------------------------------------------------

enum Binary { ADD, SUB, MUL, DIV, MAXIMUM, MINIMUM, BPOW, EQ, GT, LT, GE, LE, BINARY_COUNT };

__device__ __forceinline__ float binary_f(int op, float x, float y) {
  switch (op) {
    case ADD: return x + y;
    case SUB: return x - y;
    case MUL: return x * y;
    case DIV: return x / y;
    case MAXIMUM: return (x > y || x != x) ? x : y;  // NaN propagates
    case MINIMUM: return (x < y || x != x) ? x : y;
    case BPOW: return powf(x, y);
    case EQ: return x == y ? 1.f : 0.f;
    case GT: return x > y ? 1.f : 0.f;
    case LT: return x < y ? 1.f : 0.f;
    case GE: return x >= y ? 1.f : 0.f;
    case LE: return x <= y ? 1.f : 0.f;
  }
  return 0.f;
}

// out(rows, cols) contiguous; a at ra*r + ca*c, b at rb*r + cb*c. VEC: ca, cb
// in {0, 1}, cols % N == 0, every row start 16-byte aligned where the stride is 1.
template <typename T, bool VEC>
__global__ void binary_2d_kernel(int op, T* out, const T* a, const T* b, int64_t rows, int64_t cols, int64_t ra,
                                 int64_t ca, int64_t rb, int64_t cb) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  if constexpr (VEC) {
    constexpr int N = Vec<T>::N;
    const int64_t cv = cols / N, nv = rows * cv;
    for (int64_t i = tid; i < nv; i += stride) {
      const int64_t r = i / cv, c = (i - r * cv) * N;
      Vec<T> va, vb, vo;
      if (ca) va = load_vec(a + r * ra + c);
      else {
        const T s = a[r * ra];
#pragma unroll
        for (int k = 0; k < N; ++k) va.v[k] = s;
      }
      if (cb) vb = load_vec(b + r * rb + c);
      else {
        const T s = b[r * rb];
#pragma unroll
        for (int k = 0; k < N; ++k) vb.v[k] = s;
      }
#pragma unroll
      for (int k = 0; k < N; ++k) vo.v[k] = from_f<T>(binary_f(op, to_f<T>(va.v[k]), to_f<T>(vb.v[k])));
      store_vec(out + r * cols + c, vo);
    }
  } else {
    const int64_t n = rows * cols;
    for (int64_t i = tid; i < n; i += stride) {
      const int64_t r = i / cols, c = i - r * cols;
      out[i] = from_f<T>(binary_f(op, to_f<T>(a[r * ra + c * ca]), to_f<T>(b[r * rb + c * cb])));
    }
  }
}

template <typename T>
__global__ void binary_nd_kernel(int op, T* out, const T* a, const T* b, int64_t n, Dims d) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t oa, ob;
    offsets(d, i, oa, ob);
    out[i] = from_f<T>(binary_f(op, to_f<T>(a[oa]), to_f<T>(b[ob])));
  }
}

template <typename T>
void binary_launch(int op, T* out, const T* a, const T* b, const std::vector<int64_t>& shape,
                   const std::vector<int64_t>& as, const std::vector<int64_t>& bs) {
  const int64_t n = numel(shape);
  if (n == 0) return;
  Layout l = collapse(shape, &as, &bs);
  cudaStream_t st = stream();
  if (l.nd <= 2) {
    int64_t rows = 1, cols = 1, ra = 0, ca = 0, rb = 0, cb = 0;
    if (l.nd >= 1) {
      cols = l.shape[l.nd - 1];
      ca = l.stride[0][l.nd - 1];
      cb = l.stride[1][l.nd - 1];
    }
    if (l.nd == 2) {
      rows = l.shape[0];
      ra = l.stride[0][0];
      rb = l.stride[1][0];
    }
    constexpr int N = Vec<T>::N;
    const bool vec = (ca == 0 || ca == 1) && (cb == 0 || cb == 1) && cols % N == 0 && aligned16(out) &&
                     (ca == 0 || (aligned16(a) && ra % N == 0)) && (cb == 0 || (aligned16(b) && rb % N == 0));
    if (vec)
      binary_2d_kernel<T, true><<<grid_for(n / N, kThreads), kThreads, 0, st>>>(op, out, a, b, rows, cols, ra, ca, rb, cb);
    else
      binary_2d_kernel<T, false><<<grid_for(n, kThreads), kThreads, 0, st>>>(op, out, a, b, rows, cols, ra, ca, rb, cb);
  } else {
    binary_nd_kernel<T><<<grid_for(n, kThreads), kThreads, 0, st>>>(op, out, a, b, n, to_dims(l));
  }
  MBERT_LAUNCH_CHECK();
}

// ---- stridedCopy ------------------------------------------------------------------------

// W is a word of the element size (uint16_t, uint32_t); values move bit for bit.
template <typename W, bool VEC>
__global__ void copy_2d_kernel(W* out, const W* x, int64_t rows, int64_t cols, int64_t ro, int64_t co, int64_t rx,
                               int64_t cx) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  if constexpr (VEC) {
    constexpr int N = 16 / sizeof(W);
    const int64_t cv = cols / N, nv = rows * cv;
    for (int64_t i = tid; i < nv; i += stride) {
      const int64_t r = i / cv, c = (i - r * cv) * N;
      *reinterpret_cast<int4*>(out + r * ro + c) = *reinterpret_cast<const int4*>(x + r * rx + c);
    }
  } else {
    const int64_t n = rows * cols;
    for (int64_t i = tid; i < n; i += stride) {
      const int64_t r = i / cols, c = i - r * cols;
      out[r * ro + c * co] = x[r * rx + c * cx];
    }
  }
}

template <typename W>
__global__ void copy_nd_kernel(W* out, const W* x, int64_t n, Dims d) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t oo, ox;
    offsets(d, i, oo, ox);
    out[oo] = x[ox];
  }
}

template <typename W>
void strided_copy_launch(W* out, const std::vector<int64_t>& os, const W* x, const std::vector<int64_t>& xs,
                         const std::vector<int64_t>& shape) {
  const int64_t n = numel(shape);
  if (n == 0) return;
  Layout l = collapse(shape, &os, &xs);
  cudaStream_t st = stream();
  if (l.nd == 0 || (l.nd == 1 && l.stride[0][0] == 1 && l.stride[1][0] == 1)) {
    copy(out, x, std::size_t(n) * sizeof(W));
    return;
  }
  if (l.nd <= 2) {
    int64_t rows = 1, ro = 0, rx = 0;
    const int64_t cols = l.shape[l.nd - 1], co = l.stride[0][l.nd - 1], cx = l.stride[1][l.nd - 1];
    if (l.nd == 2) {
      rows = l.shape[0];
      ro = l.stride[0][0];
      rx = l.stride[1][0];
    }
    constexpr int N = 16 / sizeof(W);
    const bool vec = co == 1 && cx == 1 && cols % N == 0 && ro % N == 0 && rx % N == 0 && aligned16(out) &&
                     aligned16(x);
    if (vec)
      copy_2d_kernel<W, true><<<grid_for(n / N, kThreads), kThreads, 0, st>>>(out, x, rows, cols, ro, co, rx, cx);
    else
      copy_2d_kernel<W, false><<<grid_for(n, kThreads), kThreads, 0, st>>>(out, x, rows, cols, ro, co, rx, cx);
  } else {
    copy_nd_kernel<W><<<grid_for(n, kThreads), kThreads, 0, st>>>(out, x, n, to_dims(l));
  }
  MBERT_LAUNCH_CHECK();
}

// ---- cast --------------------------------------------------------------------------------

template <typename O, typename X> __device__ __forceinline__ O convert(X v) { return from_f<O>(to_f<X>(v)); }
template <> __device__ __forceinline__ int convert<int, float>(float v) {
  if (v != v) return 0;
  if (v >= 2147483647.f) return INT32_MAX;
  if (v <= -2147483648.f) return INT32_MIN;
  return static_cast<int>(v);
}
template <> __device__ __forceinline__ int convert<int, bf16>(bf16 v) { return convert<int, float>(to_f<bf16>(v)); }
template <> __device__ __forceinline__ float convert<float, int>(int v) { return static_cast<float>(v); }
template <> __device__ __forceinline__ bf16 convert<bf16, int>(int v) {
  return __float2bfloat16_rn(static_cast<float>(static_cast<double>(v)));
}

// Four elements per thread per step (reads 8 or 16 bytes, writes 8 or 16).
template <typename O, typename X>
__global__ void cast_kernel(O* out, const X* x, int64_t n) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t n4 = n / 4;
  const bool vec = (reinterpret_cast<uintptr_t>(out) % (4 * sizeof(O))) == 0 &&
                   (reinterpret_cast<uintptr_t>(x) % (4 * sizeof(X))) == 0;
  int64_t tail = 0;
  if (vec) {
    struct alignas(4 * sizeof(X)) XV { X v[4]; };
    struct alignas(4 * sizeof(O)) OV { O v[4]; };
    for (int64_t i = tid; i < n4; i += stride) {
      const XV in = reinterpret_cast<const XV*>(x)[i];
      OV o;
#pragma unroll
      for (int k = 0; k < 4; ++k) o.v[k] = convert<O, X>(in.v[k]);
      reinterpret_cast<OV*>(out)[i] = o;
    }
    tail = n4 * 4;
  }
  for (int64_t i = tail + tid; i < n; i += stride) out[i] = convert<O, X>(x[i]);
}

template <typename O>
void cast_from(DType xdt, O* out, const void* x, int64_t n) {
  const unsigned grid = grid_for(ceil_div(n, 4), kThreads);
  cudaStream_t st = stream();
  switch (xdt) {
    case DType::F32: cast_kernel<O, float><<<grid, kThreads, 0, st>>>(out, static_cast<const float*>(x), n); break;
    case DType::BF16: cast_kernel<O, bf16><<<grid, kThreads, 0, st>>>(out, static_cast<const bf16*>(x), n); break;
    case DType::I32: cast_kernel<O, int><<<grid, kThreads, 0, st>>>(out, static_cast<const int*>(x), n); break;
    default: throw_f64("cast");
  }
  MBERT_LAUNCH_CHECK();
}

// ---- wrappers ------------------------------------------------------------------------------

DType storage_dtype(const Args& a, int i) {
  DType d = a.dtype(i);
  if (d == DType::F64) throw_f64(a.fn());
  return d;
}

Napi::Value fill_js(const Napi::CallbackInfo& info) {
  Args a(info, "fill", 4);
  const DType dt = storage_dtype(a, 0);
  const int64_t n = a.size(2, "n");
  const double value = a.real(3);
  void* out = dbuf(a, 1, dt, n, "out");
  if (n == 0) return undefined(a);
  const unsigned grid = grid_for(ceil_div(n, 8), kThreads);
  cudaStream_t st = stream();
  if (dt == DType::F32) {
    fill_kernel<float><<<grid, kThreads, 0, st>>>(static_cast<float*>(out), n, static_cast<float>(value));
  } else if (dt == DType::BF16) {
    // Round on the host with the same rule as the CPU backend (bf16.h).
    const uint16_t bits = float_to_bf16(static_cast<float>(value));
    fill_kernel<uint16_t><<<grid, kThreads, 0, st>>>(static_cast<uint16_t*>(out), n, bits);
  } else {
    int v;
    if (value != value) v = 0;
    else if (value >= 2147483647.0) v = INT32_MAX;
    else if (value <= -2147483648.0) v = INT32_MIN;
    else v = static_cast<int>(value);
    fill_kernel<int><<<grid, kThreads, 0, st>>>(static_cast<int*>(out), n, v);
  }
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

int unary_op(const Args& a) {
  const int64_t op = a.i64(0);
  MBERT_CHECK(op >= 0 && op < UNARY_COUNT, "cuda.", a.fn(), ": unknown op code ", op, " (expected 0..",
              UNARY_COUNT - 1, ")");
  return int(op);
}

Napi::Value unary_js(const Napi::CallbackInfo& info) {
  Args a(info, "unary", 7);
  const int op = unary_op(a);
  const DType dt = float_dtype(a, 1);
  const int64_t n = a.size(4, "n");
  const float alpha = float(a.f64(5)), beta = float(a.f64(6));
  void* out = dbuf(a, 2, dt, n, "out");
  const void* x = dbuf(a, 3, dt, n, "x");
  if (n == 0) return undefined(a);
  MBERT_CUDA_DISPATCH(dt, {
    const bool vec = aligned16(out) && aligned16(x);
    unary_kernel<T><<<grid_for(vec ? n / Vec<T>::N + 1 : n, kThreads), kThreads, 0, stream()>>>(
        op, static_cast<T*>(out), static_cast<const T*>(x), n, alpha, beta, vec);
  });
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

Napi::Value unary_backward_js(const Napi::CallbackInfo& info) {
  Args a(info, "unaryBackward", 9);
  const int op = unary_op(a);
  const DType dt = float_dtype(a, 1);
  const int64_t n = a.size(6, "n");
  const float alpha = float(a.f64(7));
  void* dx = dbuf(a, 2, dt, n, "dx");
  const void* dy = dbuf(a, 3, dt, n, "dy");
  const void* x = dbuf(a, 4, dt, n, "x", unary_needs_x(op));
  const void* y = dbuf(a, 5, dt, n, "y", unary_needs_y(op));
  if (!unary_needs_x(op)) x = nullptr;
  if (!unary_needs_y(op)) y = nullptr;
  if (n == 0) return undefined(a);
  MBERT_CUDA_DISPATCH(dt, {
    const bool vec = aligned16(dx) && aligned16(dy) && (!x || aligned16(x)) && (!y || aligned16(y));
    unary_backward_kernel<T><<<grid_for(vec ? n / Vec<T>::N + 1 : n, kThreads), kThreads, 0, stream()>>>(
        op, static_cast<T*>(dx), static_cast<const T*>(dy), static_cast<const T*>(x), static_cast<const T*>(y), n,
        alpha, vec);
  });
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

Napi::Value binary_js(const Napi::CallbackInfo& info) {
  Args a(info, "binary", 8);
  const int64_t op = a.i64(0);
  MBERT_CHECK(op >= 0 && op < BINARY_COUNT, "cuda.binary: unknown op code ", op, " (expected 0..",
              BINARY_COUNT - 1, ")");
  const DType dt = float_dtype(a, 1);
  const std::vector<int64_t> shape = a.ints(5), as = a.ints(6), bs = a.ints(7);
  check_view("binary", "aStrides", shape, as);
  check_view("binary", "bStrides", shape, bs);
  const int64_t n = numel(shape);
  void* out = dbuf(a, 2, dt, n, "out");
  const void* x = dbuf(a, 3, dt, extent(shape, as), "a");
  const void* y = dbuf(a, 4, dt, extent(shape, bs), "b");
  MBERT_CUDA_DISPATCH(dt, binary_launch<T>(int(op), static_cast<T*>(out), static_cast<const T*>(x),
                                           static_cast<const T*>(y), shape, as, bs));
  return undefined(a);
}

Napi::Value strided_copy_js(const Napi::CallbackInfo& info) {
  Args a(info, "stridedCopy", 8);
  const DType dt = storage_dtype(a, 0);
  const int64_t ooff = a.size(2, "outOffset");
  const std::vector<int64_t> os = a.ints(3);
  const int64_t xoff = a.size(5, "xOffset");
  const std::vector<int64_t> xs = a.ints(6), shape = a.ints(7);
  check_view("stridedCopy", "outStrides", shape, os);
  check_view("stridedCopy", "xStrides", shape, xs);
  const int64_t oext = extent(shape, os), xext = extent(shape, xs);
  char* out = static_cast<char*>(a.ptr(1));
  const char* x = static_cast<const char*>(a.ptr(4));
  if (oext == 0) return undefined(a);
  const std::size_t es = dtype_size(dt);
  out += ooff * es;
  x += xoff * es;
  check_range(out, std::size_t(oext) * es, "stridedCopy", 1, "out");
  check_range(x, std::size_t(xext) * es, "stridedCopy", 4, "x");
  if (es == 2)
    strided_copy_launch(reinterpret_cast<uint16_t*>(out), os, reinterpret_cast<const uint16_t*>(x), xs, shape);
  else
    strided_copy_launch(reinterpret_cast<uint32_t*>(out), os, reinterpret_cast<const uint32_t*>(x), xs, shape);
  return undefined(a);
}

Napi::Value cast_js(const Napi::CallbackInfo& info) {
  Args a(info, "cast", 5);
  const DType odt = storage_dtype(a, 0), xdt = storage_dtype(a, 2);
  const int64_t n = a.size(4, "n");
  void* out = dbuf(a, 1, odt, n, "out");
  const void* x = dbuf(a, 3, xdt, n, "x");
  if (n == 0) return undefined(a);
  if (odt == xdt) {
    copy(out, x, std::size_t(n) * dtype_size(odt));
    return undefined(a);
  }
  switch (odt) {
    case DType::F32: cast_from<float>(xdt, static_cast<float*>(out), x, n); break;
    case DType::BF16: cast_from<bf16>(xdt, static_cast<bf16*>(out), x, n); break;
    default: cast_from<int>(xdt, static_cast<int*>(out), x, n); break;
  }
  return undefined(a);
}

}  // namespace

MBERT_EXPORT(cuda, fill, fill_js);
MBERT_EXPORT(cuda, unary, unary_js);
MBERT_EXPORT(cuda, unaryBackward, unary_backward_js);
MBERT_EXPORT(cuda, binary, binary_js);
MBERT_EXPORT(cuda, stridedCopy, strided_copy_js);
MBERT_EXPORT(cuda, cast, cast_js);

}  // namespace cuda
}  // namespace mbert
