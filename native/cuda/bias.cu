// bias.cu — addBias and biasGrad, the bias halves of a linear layer.
//   addBias:  out(rows, cols) += bias(cols), in place (activations)
//   biasGrad: dbias(cols) (+)= sum over rows of dy(rows, cols); parameter
//             gradient, `accumulate` selects += so microbatches add up.
// Accumulation: fp32; biasGrad is a deterministic column sum (reduce.h).
#include "cuda/bias.h"
#include "cuda/kernel_util.cuh"
#include "cuda/reduce.h"

namespace mbert {
namespace cuda {
namespace {

// Vectorized when cols % VEC == 0 and both pointers are 16-byte aligned: a
// vector never straddles two rows, so the bias vector is one aligned load.
template <typename T>
__global__ void add_bias_kernel(T* out, const T* bias, int64_t rows, int64_t cols, bool vec) {
  const int64_t n = rows * cols;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  if (vec) {
    constexpr int N = Vec<T>::N;
    const int64_t nv = n / N, cv = cols / N;
    for (int64_t i = tid; i < nv; i += stride) {
      Vec<T> o = load_vec(out + i * N);
      const Vec<T> b = load_vec(bias + (i % cv) * N);
#pragma unroll
      for (int k = 0; k < N; ++k) o.v[k] = from_f<T>(to_f<T>(o.v[k]) + to_f<T>(b.v[k]));
      store_vec(out + i * N, o);
    }
    return;
  }
  for (int64_t i = tid; i < n; i += stride) out[i] = from_f<T>(to_f<T>(out[i]) + to_f<T>(bias[i % cols]));
}

Napi::Value add_bias_js(const Napi::CallbackInfo& info) {
  Args a(info, "addBias", 5);
  const DType dt = float_dtype(a, 0);
  const int64_t rows = a.size(3, "rows"), cols = a.size(4, "cols");
  void* out = dbuf(a, 1, dt, rows * cols, "out");
  const void* bias = dbuf(a, 2, dt, cols, "bias");
  add_bias(dt, out, bias, rows, cols);
  return undefined(a);
}

Napi::Value bias_grad_js(const Napi::CallbackInfo& info) {
  Args a(info, "biasGrad", 7);
  const DType dt = float_dtype(a, 0);
  const DType gt = float_dtype(a, 1);
  const int64_t rows = a.size(4, "rows"), cols = a.size(5, "cols");
  const bool accumulate = a.flag(6);
  void* dbias = dbuf(a, 2, gt, cols, "dbias");
  const void* dy = dbuf(a, 3, dt, rows * cols, "dy", rows > 0);
  reduce_middle(kReduceSum, dt, gt, dbias, dy, 1, rows, cols, accumulate);
  return undefined(a);
}

}  // namespace

void add_bias(DType dt, void* out, const void* bias, int64_t rows, int64_t cols) {
  if (rows * cols == 0) return;
  MBERT_CUDA_DISPATCH(dt, {
    const bool vec = cols % Vec<T>::N == 0 && aligned16(out) && aligned16(bias);
    const int64_t work = vec ? rows * cols / Vec<T>::N : rows * cols;
    add_bias_kernel<T><<<grid_for(work, 256), 256, 0, stream()>>>(static_cast<T*>(out), static_cast<const T*>(bias),
                                                                   rows, cols, vec);
  });
  MBERT_LAUNCH_CHECK();
}

MBERT_EXPORT(cuda, addBias, add_bias_js);
MBERT_EXPORT(cuda, biasGrad, bias_grad_js);

}  // namespace cuda
}  // namespace mbert
