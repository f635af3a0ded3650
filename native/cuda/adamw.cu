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
#include <cmath>

#include "cuda/kernel_util.cuh"

namespace mbert {
namespace cuda {
namespace {

struct AdamParams {
  float lr, b1, b2, eps, keep, gscale, bc1, bc2;
};

template <typename G>
struct alignas(4 * sizeof(G)) Four {
  G v[4];
};

__device__ __forceinline__ void adam_one(const AdamParams& h, float& p, float& m, float& v, float gr) {
  const float g = gr * h.gscale;
  p *= h.keep;
  m = h.b1 * m + (1.f - h.b1) * g;
  v = h.b2 * v + (1.f - h.b2) * g * g;
  p -= h.lr / h.bc1 * m / (sqrtf(v / h.bc2) + h.eps);
}

// P: copy type (bf16 or float); copy may be null.
template <typename G, typename P>
__global__ void adamw_kernel(float* param, const G* grad, float* m, float* v, P* copy, int64_t n, AdamParams h,
                             bool vec) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  int64_t tail = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    for (int64_t i = tid; i < n4; i += stride) {
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
    tail = n4 * 4;
  }
  for (int64_t i = tail + tid; i < n; i += stride) {
    float p = param[i], mm = m[i], vv = v[i];
    adam_one(h, p, mm, vv, to_f<G>(grad[i]));
    param[i] = p;
    m[i] = mm;
    v[i] = vv;
    if (copy) copy[i] = from_f<P>(p);
  }
}

template <typename G, typename P>
void adamw_launch(float* param, const G* grad, float* m, float* v, P* copy, int64_t n, const AdamParams& h) {
  auto al = [](const void* p, std::size_t b) { return (reinterpret_cast<uintptr_t>(p) % b) == 0; };
  const bool vec = al(param, 16) && al(m, 16) && al(v, 16) && al(grad, 4 * sizeof(G)) &&
                   (!copy || al(copy, 4 * sizeof(P)));
  adamw_kernel<G, P><<<grid_for(ceil_div(n, 4), 256), 256, 0, stream()>>>(param, grad, m, v, copy, n, h, vec);
  MBERT_LAUNCH_CHECK();
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

}  // namespace cuda
}  // namespace mbert
