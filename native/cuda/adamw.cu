// adamw.cu — one fused AdamW step (torch.optim.AdamW semantics with the
// caller's decayFactor). param, m, v: fp32, updated in place; grad fp32 or
// bf16, multiplied by gradScale; paramCopy (when given) receives the new
// param in copyDtype (the bf16 weights of the next forward) in the same pass.
//   g = grad * gradScale;  p *= 1 - decayFactor
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^step) * m / (sqrt(v / (1 - b2^step)) + eps)
// Math in fp32 in the CPU backend's order; four elements per thread with
// 16-byte fp32 and 8-byte bf16 accesses when aligned. Accumulation: `=`
// (the optimizer state is overwritten).
//
// adamwList runs the same step over a table of tensors in one launch (up to
// kListMax tensors per launch; the optimizer's whole parameter list in one or
// two): the tensors' 4-element vectors are numbered one after another and each
// block takes a fixed run of kListChunk of them, finding its first tensor by
// binary search in the table (kernel parameter memory). With `clip` set, the
// gradient scale is multiplied on the device by the clipping coefficient of the
// global norm sqrt(*clip) (a sum of squares from sumSquaresList), so clipping
// never waits for the host.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda/kernel_util.cuh"
#include "cuda/tensor_list.cuh"

namespace mbert {
namespace cuda {
namespace {

struct AdamParams {
  float lr, b1, b2, eps, keep, gscale, bc1, bc2;
};

__device__ __forceinline__ void adam_one(const AdamParams& h, float& p, float& m, float& v, float gr) {
  const float g = gr * h.gscale;
  p *= h.keep;
  m = h.b1 * m + (1.f - h.b1) * g;
  v = h.b2 * v + (1.f - h.b2) * g * g;
  p -= h.lr / h.bc1 * m / (sqrtf(v / h.bc2) + h.eps);
}

// Vector i (elements 4i..4i+3) of one tensor, 16-byte fp32 accesses; all pointers
// aligned for them. P: copy type (bf16 or float); copy may be null.
template <typename G, typename P>
__device__ __forceinline__ void adam_vec4(const AdamParams& h, float* __restrict__ param, const G* __restrict__ grad,
                                          float* __restrict__ m, float* __restrict__ v, P* __restrict__ copy,
                                          int64_t i) {
  float4 p = __ldcs(reinterpret_cast<const float4*>(param) + i);
  float4 mm = __ldcs(reinterpret_cast<const float4*>(m) + i);
  float4 vv = __ldcs(reinterpret_cast<const float4*>(v) + i);
  const Four<G> g = reinterpret_cast<const Four<G>*>(grad)[i];
  adam_one(h, p.x, mm.x, vv.x, to_f<G>(g.v[0]));
  adam_one(h, p.y, mm.y, vv.y, to_f<G>(g.v[1]));
  adam_one(h, p.z, mm.z, vv.z, to_f<G>(g.v[2]));
  adam_one(h, p.w, mm.w, vv.w, to_f<G>(g.v[3]));
  __stcs(reinterpret_cast<float4*>(param) + i, p);
  __stcs(reinterpret_cast<float4*>(m) + i, mm);
  __stcs(reinterpret_cast<float4*>(v) + i, vv);
  if (copy) {
    Four<P> c;
    c.v[0] = from_f<P>(p.x);
    c.v[1] = from_f<P>(p.y);
    c.v[2] = from_f<P>(p.z);
    c.v[3] = from_f<P>(p.w);
    reinterpret_cast<Four<P>*>(copy)[i] = c;
  }
}

// Element j of one tensor.
template <typename G, typename P>
__device__ __forceinline__ void adam_elem(const AdamParams& h, float* __restrict__ param, const G* __restrict__ grad,
                                          float* __restrict__ m, float* __restrict__ v, P* __restrict__ copy,
                                          int64_t j) {
  float p = param[j], mm = m[j], vv = v[j];
  adam_one(h, p, mm, vv, to_f<G>(grad[j]));
  param[j] = p;
  m[j] = mm;
  v[j] = vv;
  if (copy) copy[j] = from_f<P>(p);
}

template <typename G, typename P>
__global__ void adamw_kernel(float* param, const G* grad, float* m, float* v, P* copy, int64_t n, AdamParams h,
                             bool vec) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  int64_t tail = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    for (int64_t i = tid; i < n4; i += stride) adam_vec4(h, param, grad, m, v, copy, i);
    tail = n4 * 4;
  }
  for (int64_t i = tail + tid; i < n; i += stride) adam_elem(h, param, grad, m, v, copy, i);
}

template <typename G, typename P>
void adamw_launch(float* param, const G* grad, float* m, float* v, P* copy, int64_t n, const AdamParams& h) {
  auto al = [](const void* p, std::size_t b) { return (reinterpret_cast<uintptr_t>(p) % b) == 0; };
  const bool vec = al(param, 16) && al(m, 16) && al(v, 16) && al(grad, 4 * sizeof(G)) &&
                   (!copy || al(copy, 4 * sizeof(P)));
  adamw_kernel<G, P><<<grid_for(ceil_div(n, 4), 256), 256, 0, stream()>>>(param, grad, m, v, copy, n, h, vec);
  MBERT_LAUNCH_CHECK();
}

// ---- many tensors per launch ----------------------------------------------------------

struct AdamEntry {
  float* p;
  const void* g;
  float* m;
  float* v;
  void* copy;      // null: no copy for this tensor
  long long n;     // elements
  long long first;  // index of the tensor's first 4-element vector in the launch
  float lr, keep, bc1, bc2;
  int vec;  // every pointer aligned for vector access
};
constexpr int kListMax = 160;
constexpr int kListThreads = 256;
constexpr int kListChunk = kListThreads * 8;  // vectors per block
struct AdamList {
  int count;
  long long total;  // vectors
  AdamEntry e[kListMax];
};
static_assert(sizeof(AdamList) < 32000, "kernel parameters are limited to 32 KiB");

// maxNorm / (norm + 1e-6) when the global norm sqrt(*sumsq) is finite and above maxNorm, else 1.
__device__ __forceinline__ float clip_coef(const float* sumsq, float maxNorm) {
  if (!sumsq) return 1.f;
  const float norm = sqrtf(*sumsq);
  return isfinite(norm) && norm > maxNorm ? maxNorm / (norm + 1e-6f) : 1.f;
}

template <typename G, typename P>
__global__ void __launch_bounds__(kListThreads) adamw_list_kernel(const __grid_constant__ AdamList t, float b1,
                                                                   float b2, float eps, float gscale,
                                                                   const float* clip, float maxNorm) {
  const float gs = gscale * clip_coef(clip, maxNorm);
  const long long r0 = static_cast<long long>(blockIdx.x) * kListChunk;
  const long long r1 = r0 + kListChunk < t.total ? r0 + kListChunk : t.total;
  for (int ei = list_find(t, r0); ei < t.count && t.e[ei].first < r1; ++ei) {
    const AdamEntry& E = t.e[ei];
    const AdamParams h{E.lr, b1, b2, eps, E.keep, gs, E.bc1, E.bc2};
    float* __restrict__ param = E.p;
    const G* __restrict__ grad = static_cast<const G*>(E.g);
    float* __restrict__ m = E.m;
    float* __restrict__ v = E.v;
    P* __restrict__ copy = static_cast<P*>(E.copy);
    const long long n = E.n;
    const ListSpan sp = list_span(E.first, n, r0, r1);
    for (long long i = sp.a + threadIdx.x; i < sp.b; i += kListThreads) {
      if (E.vec && 4 * i + 4 <= n) {
        adam_vec4(h, param, grad, m, v, copy, i);
      } else {
        for (long long j = 4 * i; j < 4 * i + 4 && j < n; ++j) adam_elem(h, param, grad, m, v, copy, j);
      }
    }
  }
}

template <typename G, typename P>
void adamw_list_launch(const AdamList& t, float b1, float b2, float eps, float gscale, const float* clip,
                       float maxNorm) {
  const long long blocks = (t.total + kListChunk - 1) / kListChunk;
  MBERT_CHECK(blocks < (1LL << 31), "cuda.adamwList: ", t.total, " vectors are too many for one launch");
  adamw_list_kernel<G, P><<<static_cast<unsigned>(blocks), kListThreads, 0, stream()>>>(t, b1, b2, eps, gscale, clip,
                                                                                     maxNorm);
  MBERT_LAUNCH_CHECK();
}

// adamwList(dtype, gradDtype, copyDtype, table, beta1, beta2, eps, gradScale, clipSumSquares, maxNorm)
//   table: Float64Array of 9 numbers per tensor: param, grad, m, v, paramCopy (0: none), n,
//   lr, decayFactor, step. clipSumSquares: float32 (1) on the device (0: no clipping).
Napi::Value adamw_list_js(const Napi::CallbackInfo& info) {
  Args a(info, "adamwList", 10);
  const DType dt = a.dtype(0);
  if (dt == DType::F64) throw_f64("adamwList");
  MBERT_CHECK(dt == DType::F32, "cuda.adamwList: param, m, v must be float32 (dtype ", dtype_name(dt), " given)");
  const DType gt = float_dtype(a, 1);
  const DType ct = a.dtype(2);
  MBERT_CHECK(ct == DType::BF16 || ct == DType::F32, "cuda.adamwList: copyDtype must be bfloat16 or float32, got ",
              dtype_name(ct));
  constexpr int kWidth = 9;
  const std::vector<double> tab = a.table(3, kWidth, "table");
  const double b1 = a.f64(4), b2 = a.f64(5), eps = a.f64(6), gscale = a.f64(7);
  const float* clip = dbuf<float>(a, 8, DType::F32, 1, "clipSumSquares", false);
  const double maxNorm = a.f64(9);
  MBERT_CHECK(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1, "cuda.adamwList: beta1 and beta2 must be in [0, 1), got ", b1,
              ", ", b2);
  MBERT_CHECK(!clip || maxNorm > 0, "cuda.adamwList: maxNorm must be > 0 when clipping, got ", maxNorm);
  // Every entry is checked before anything is launched.
  std::vector<AdamEntry> entries;
  const std::size_t rows = tab.size() / kWidth;
  entries.reserve(rows);
  for (std::size_t e = 0; e < rows; ++e) {
    const TableRow row(a, 3, tab, kWidth, e);
    const int64_t n = row.size(5, "n");
    const double lr = row.num(6), decay = row.num(7), step = row.num(8);
    MBERT_CHECK(step >= 1, "cuda.adamwList: argument 3 ", row.name("step"), " must be >= 1, got ", step);
    auto ptr = [&](int k, DType d, const char* what, bool required) {
      return checked_row_ptr(a, 3, row, k, static_cast<std::size_t>(n) * dtype_size(d), what, required, check_range);
    };
    AdamEntry E{};
    E.p = static_cast<float*>(ptr(0, DType::F32, "param", true));
    E.g = ptr(1, gt, "grad", true);
    E.m = static_cast<float*>(ptr(2, DType::F32, "m", true));
    E.v = static_cast<float*>(ptr(3, DType::F32, "v", true));
    E.copy = ptr(4, ct, "paramCopy", false);
    if (n == 0) continue;
    E.n = n;
    E.lr = float(lr);
    E.keep = float(1.0 - decay);
    E.bc1 = float(1.0 - std::pow(b1, step));
    E.bc2 = float(1.0 - std::pow(b2, step));
    auto al = [](const void* p, std::size_t bytes) { return (reinterpret_cast<uintptr_t>(p) % bytes) == 0; };
    E.vec = al(E.p, 16) && al(E.m, 16) && al(E.v, 16) && al(E.g, 4 * dtype_size(gt)) &&
            (!E.copy || al(E.copy, 4 * dtype_size(ct)));
    entries.push_back(E);
  }
  for (std::size_t c0 = 0; c0 < entries.size(); c0 += kListMax) {
    AdamList t{};
    fill_list(t, entries, c0, kListMax);
    const bool copyF32 = ct == DType::F32;
    if (gt == DType::BF16) {
      if (copyF32) adamw_list_launch<bf16, float>(t, b1, b2, eps, gscale, clip, maxNorm);
      else adamw_list_launch<bf16, bf16>(t, b1, b2, eps, gscale, clip, maxNorm);
    } else {
      if (copyF32) adamw_list_launch<float, float>(t, b1, b2, eps, gscale, clip, maxNorm);
      else adamw_list_launch<float, bf16>(t, b1, b2, eps, gscale, clip, maxNorm);
    }
  }
  return undefined(a);
}

// adamw(dtype, gradDtype, param, grad, m, v, n, lr, beta1, beta2, eps, decayFactor, step, gradScale, copyDtype, paramCopy)
Napi::Value adamw_js(const Napi::CallbackInfo& info) {
  Args a(info, "adamw", 16);
  const DType dt = a.dtype(0);
  if (dt == DType::F64) throw_f64("adamw");
  MBERT_CHECK(dt == DType::F32, "cuda.adamw: param, m, v must be float32 (dtype ", dtype_name(dt), " given)");
  const DType gt = float_dtype(a, 1);
  const DType ct = a.dtype(14);
  const int64_t n = a.size(6, "n");
  const double lr = a.f64(7), b1 = a.f64(8), b2 = a.f64(9), eps = a.f64(10), decay = a.f64(11), step = a.f64(12);
  const double gscale = a.f64(13);
  MBERT_CHECK(step >= 1, "cuda.adamw: step must be >= 1 (1 on the first update), got ", step);
  MBERT_CHECK(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1, "cuda.adamw: beta1 and beta2 must be in [0, 1), got ", b1,
              ", ", b2);
  float* param = dbuf<float>(a, 2, DType::F32, n, "param");
  const void* grad = dbuf(a, 3, gt, n, "grad");
  float* m = dbuf<float>(a, 4, DType::F32, n, "m");
  float* v = dbuf<float>(a, 5, DType::F32, n, "v");
  void* copy = a.ptr(15);
  if (copy) {
    MBERT_CHECK(ct == DType::BF16 || ct == DType::F32, "cuda.adamw: copyDtype must be bfloat16 or float32, got ",
                dtype_name(ct));
    copy = dbuf(a, 15, ct, n, "paramCopy");
  }
  if (n == 0) return undefined(a);
  AdamParams h;
  h.lr = float(lr);
  h.b1 = float(b1);
  h.b2 = float(b2);
  h.eps = float(eps);
  h.keep = float(1.0 - decay);
  h.gscale = float(gscale);
  h.bc1 = float(1.0 - std::pow(b1, step));
  h.bc2 = float(1.0 - std::pow(b2, step));
  const bool copy_f32 = copy && ct == DType::F32;
  if (gt == DType::BF16) {
    if (copy_f32) adamw_launch<bf16, float>(param, static_cast<const bf16*>(grad), m, v, static_cast<float*>(copy), n, h);
    else adamw_launch<bf16, bf16>(param, static_cast<const bf16*>(grad), m, v, static_cast<bf16*>(copy), n, h);
  } else {
    if (copy_f32) adamw_launch<float, float>(param, static_cast<const float*>(grad), m, v, static_cast<float*>(copy), n, h);
    else adamw_launch<float, bf16>(param, static_cast<const float*>(grad), m, v, static_cast<bf16*>(copy), n, h);
  }
  return undefined(a);
}

}  // namespace

MBERT_EXPORT(cuda, adamw, adamw_js);
MBERT_EXPORT(cuda, adamwList, adamw_list_js);

}  // namespace cuda
}  // namespace mbert
