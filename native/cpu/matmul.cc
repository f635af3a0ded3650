// matmul.cc — batched GEMM: out[b] = alpha * op(A[b]) @ op(B[b]) + beta * out[b]
// (+ bias(N) on every row, when given) (row-major; op = optional transpose; batch
// strides may be 0). beta = 0 never reads out. Accumulation: `=` (beta = 0) or `+= beta * out` as the caller asks.
// float32 (and bfloat16, converted to float32 while packing) accumulate in
// float32; float64 in float64.
//
// Scheme (Goto/BLIS style): the output is cut into tiles of MC x NC; each tile
// is one parallel task. For every KC slice the task packs op(A) into MR-row
// slivers and op(B) into NR-column slivers (zero-padded at edges) and runs an
// MR x NR register-blocked micro-kernel written with GCC vector extensions,
// which the compiler turns into AVX2 FMA code when built with -mavx2 -mfma.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "cpu/cpu.h"

namespace mbert {
namespace cpu {
namespace {

template <typename T> struct Vec;
template <> struct Vec<float> { typedef float type __attribute__((vector_size(32))); };
template <> struct Vec<double> { typedef double type __attribute__((vector_size(32))); };

constexpr int MR = 6;
constexpr int KC = 256;
constexpr int MC = 96;   // 16 slivers of A per tile (fits L2 with the B panel sliver)
constexpr int NC = 512;  // columns per tile

template <typename T>
struct Shape {
  static constexpr int W = 32 / sizeof(T);  // lanes per vector
  static constexpr int NR = 2 * W;          // 16 floats or 8 doubles
};

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

template <typename T>
T* scratch(std::unique_ptr<T, AlignedFree>& slot, std::size_t& cap, std::size_t n) {
  if (n > cap) {
    std::size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    T* p = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (!p) throw OutOfMemory("matmul: out of host memory for packing buffers");
    slot.reset(p);
    cap = n;
  }
  return slot.get();
}

// acc(MR, NR) = Apack(kc, MR)^T @ Bpack(kc, NR)
template <typename T>
inline void micro_kernel(int kc, const T* __restrict__ ap, const T* __restrict__ bp, T* __restrict__ acc) {
  using V = typename Vec<T>::type;
  constexpr int W = Shape<T>::W;
  constexpr int NR = Shape<T>::NR;
  V c[MR][2];
  for (int i = 0; i < MR; ++i) c[i][0] = c[i][1] = V{};
  for (int k = 0; k < kc; ++k) {
    V b0, b1;
    std::memcpy(&b0, bp + k * NR, sizeof(V));
    std::memcpy(&b1, bp + k * NR + W, sizeof(V));
    const T* a = ap + k * MR;
    for (int i = 0; i < MR; ++i) {
      V ai = V{} + a[i];
      c[i][0] += ai * b0;
      c[i][1] += ai * b1;
    }
  }
  for (int i = 0; i < MR; ++i) {
    std::memcpy(acc + i * NR, &c[i][0], sizeof(V));
    std::memcpy(acc + i * NR + W, &c[i][1], sizeof(V));
  }
}

template <typename Tin, typename T, typename Tout>
struct Gemm {
  static constexpr int NR = Shape<T>::NR;
  const Tin* A;
  const Tin* B;
  Tout* C;
  int64_t M, N, K;
  bool transA, transB;
  T alpha, beta;

  // Packs op(A)[i0:i0+mc, k0:k0+kc] into slivers: ap[s][k][r] (r < MR).
  void pack_a(T* ap, int64_t i0, int mc, int64_t k0, int kc) const {
    for (int s = 0; s < mc; s += MR) {
      int rows = std::min(MR, mc - s);
      T* dst = ap + static_cast<int64_t>(s) * kc;
      for (int r = 0; r < rows; ++r) {
        int64_t i = i0 + s + r;
        if (!transA) {
          const Tin* src = A + i * K + k0;
          for (int k = 0; k < kc; ++k) dst[k * MR + r] = T(src[k]);
        } else {
          const Tin* src = A + k0 * M + i;
          for (int k = 0; k < kc; ++k) dst[k * MR + r] = T(src[k * M]);
        }
      }
      for (int r = rows; r < MR; ++r)
        for (int k = 0; k < kc; ++k) dst[k * MR + r] = T(0);
    }
  }

  // Packs op(B)[k0:k0+kc, j0:j0+nc] into slivers: bp[s][k][c] (c < NR).
  void pack_b(T* bp, int64_t j0, int nc, int64_t k0, int kc) const {
    for (int s = 0; s < nc; s += NR) {
      int cols = std::min(NR, nc - s);
      T* dst = bp + static_cast<int64_t>(s) * kc;
      if (!transB) {
        for (int k = 0; k < kc; ++k) {
          const Tin* src = B + (k0 + k) * N + j0 + s;
          T* d = dst + k * NR;
          for (int c = 0; c < cols; ++c) d[c] = T(src[c]);
          for (int c = cols; c < NR; ++c) d[c] = T(0);
        }
      } else {
        for (int c = 0; c < cols; ++c) {
          const Tin* src = B + (j0 + s + c) * K + k0;
          for (int k = 0; k < kc; ++k) dst[k * NR + c] = T(src[k]);
        }
        for (int c = cols; c < NR; ++c)
          for (int k = 0; k < kc; ++k) dst[k * NR + c] = T(0);
      }
    }
  }

  // One (MC x NC) output tile over all of K.
  void tile(int64_t i0, int mc, int64_t j0, int nc) const {
    thread_local std::unique_ptr<T, AlignedFree> abuf, bbuf;
    thread_local std::size_t acap = 0, bcap = 0;
    int mcp = (mc + MR - 1) / MR * MR;
    int ncp = (nc + NR - 1) / NR * NR;
    T* ap = scratch(abuf, acap, static_cast<std::size_t>(mcp) * KC);
    T* bp = scratch(bbuf, bcap, static_cast<std::size_t>(ncp) * KC);
    alignas(64) T acc[MR * NR];
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      int kc = static_cast<int>(std::min<int64_t>(KC, K - k0));
      bool first = k0 == 0;
      pack_a(ap, i0, mc, k0, kc);
      pack_b(bp, j0, nc, k0, kc);
      for (int js = 0; js < nc; js += NR) {
        int cols = std::min(NR, nc - js);
        for (int is = 0; is < mc; is += MR) {
          int rows = std::min(MR, mc - is);
          micro_kernel<T>(kc, ap + static_cast<int64_t>(is) * kc, bp + static_cast<int64_t>(js) * kc, acc);
          for (int r = 0; r < rows; ++r) {
            Tout* crow = C + (i0 + is + r) * N + j0 + js;
            const T* arow = acc + r * NR;
            if (!first) {
              for (int c = 0; c < cols; ++c) crow[c] = Tout(T(crow[c]) + alpha * arow[c]);
            } else if (beta == T(0)) {
              for (int c = 0; c < cols; ++c) crow[c] = Tout(alpha * arow[c]);
            } else {
              for (int c = 0; c < cols; ++c) crow[c] = Tout(beta * T(crow[c]) + alpha * arow[c]);
            }
          }
        }
      }
    }
  }
};

template <typename Tin, typename T, typename Tout>
void matmul(Tout* out, const Tin* a, const Tin* b, int64_t batch, int64_t M, int64_t N, int64_t K, bool ta,
            bool tb, double alpha, double beta, int64_t sa, int64_t sb, int64_t so) {
  if (M == 0 || N == 0 || batch == 0) return;
  if (K == 0) {  // out = beta * out (never read when beta = 0)
    for (int64_t bi = 0; bi < batch; ++bi) {
      Tout* o = out + bi * so;
      for (int64_t i = 0; i < M * N; ++i) o[i] = beta == 0 ? Tout(T(0)) : Tout(T(beta) * T(o[i]));
    }
    return;
  }
  int64_t mt = (M + MC - 1) / MC, nt = (N + NC - 1) / NC;
  int64_t per_batch = mt * nt;
  // ~ MC*NC*K flops per task: small problems run inline.
  int64_t grain = std::max<int64_t>(1, (int64_t(1) << 21) / std::max<int64_t>(1, std::min<int64_t>(M, MC) * std::min<int64_t>(N, NC) * K));
  parallel_for(batch * per_batch, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      int64_t bi = t / per_batch, r = t % per_batch;
      int64_t i0 = (r / nt) * MC, j0 = (r % nt) * NC;
      Gemm<Tin, T, Tout> g{a + bi * sa, b + bi * sb, out + bi * so, M, N, K, ta, tb, T(alpha), T(beta)};
      g.tile(i0, static_cast<int>(std::min<int64_t>(MC, M - i0)), j0, static_cast<int>(std::min<int64_t>(NC, N - j0)));
    }
  });
}

// matmul(dtype, outDtype, out, a, b, batch, M, N, K, transA, transB, alpha, beta, strideA, strideB, strideOut)
// matmul(dtype, outDtype, out, a, b, batch, M, N, K, transA, transB, alpha, beta, strideA, strideB,
//        strideOut[, bias])  bias: (N) in outDtype, added to every row of every out[b] after the product.
Napi::Value matmul_js(const Napi::CallbackInfo& info) {
  Args a(info, "matmul");
  MBERT_CHECK(a.count() == 16 || a.count() == 17, "matmul: expected 16 or 17 arguments, got ", a.count());
  DType dt = a.dtype(0), odt = a.dtype(1);
  int64_t batch = a.size(5, "batch"), M = a.size(6, "M"), N = a.size(7, "N"), K = a.size(8, "K");
  bool ta = a.flag(9), tb = a.flag(10);
  double alpha = a.f64(11), beta = a.f64(12);
  int64_t sa = a.size(13, "strideA"), sb = a.size(14, "strideB"), so = a.size(15, "strideOut");
  bool empty = batch == 0 || M == 0 || N == 0;
  int64_t nA = empty || K == 0 ? 0 : (batch - 1) * sa + M * K;
  int64_t nB = empty || K == 0 ? 0 : (batch - 1) * sb + K * N;
  int64_t nO = empty ? 0 : (batch - 1) * so + M * N;
  MBERT_CHECK(so != 0 || batch <= 1 || nO == 0, "matmul: strideOut must be > 0 when batch > 1 (batches would overwrite each other)");
  if (dt == DType::F64) {
    MBERT_CHECK(odt == DType::F64, "matmul: float64 inputs need a float64 output, got ", dtype_name(odt));
    matmul<double, double, double>(buf<double>(a, 2, odt, nO, "out"), buf<double>(a, 3, dt, nA, "a"),
                                   buf<double>(a, 4, dt, nB, "b"), batch, M, N, K, ta, tb, alpha, beta, sa, sb, so);
  } else if (dt == DType::F32 || dt == DType::BF16) {
    MBERT_CHECK(odt == DType::F32 || odt == DType::BF16, "matmul: ", dtype_name(dt),
                " inputs need a float32 or bfloat16 output, got ", dtype_name(odt));
    auto run = [&](auto in_tag, auto out_tag) {
      using Tin = decltype(in_tag);
      using Tout = decltype(out_tag);
      matmul<Tin, float, Tout>(buf<Tout>(a, 2, odt, nO, "out"), buf<Tin>(a, 3, dt, nA, "a"),
                               buf<Tin>(a, 4, dt, nB, "b"), batch, M, N, K, ta, tb, alpha, beta, sa, sb, so);
    };
    if (dt == DType::F32 && odt == DType::F32) run(float{}, float{});
    else if (dt == DType::F32) run(float{}, bf16{});
    else if (odt == DType::F32) run(bf16{}, float{});
    else run(bf16{}, bf16{});
  } else {
    bad_dtype("matmul", dt, "float32, float64, bfloat16");
  }
  if (a.count() == 17 && !empty) {
    MBERT_CPU_DISPATCH_FLOAT("matmul", odt, {
      using C = acc_t<T>;
      const T* bias = buf<T>(a, 16, odt, N, "bias", false);
      if (bias) {
        T* out = buf<T>(a, 2, odt, nO, "out");
        const int64_t rows = batch * M;
        parallel_for(rows, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, N)), [&](int64_t lo, int64_t hi) {
          for (int64_t r = lo; r < hi; ++r) {
            T* o = out + (r / M) * so + (r % M) * N;
            for (int64_t c = 0; c < N; ++c) o[c] = T(C(o[c]) + C(bias[c]));
          }
        });
      }
    });
  }
  return info.Env().Undefined();
}

}  // namespace

MBERT_EXPORT(cpu, matmul, matmul_js);

}  // namespace cpu
}  // namespace mbert
