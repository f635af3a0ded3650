// crossentropy.cu — crossEntropyForward / crossEntropyBackward over rows of V
// logits (the MLM head: rows = masked tokens ~0.3 T, V = 30528).
//   forward:  lse(rows) = logsumexp(logits[r]),  loss(rows) = lse - logits[r, label]
//             (0 on rows whose label is ignoreIndex); lse, loss fp32
//   backward: dlogits(rows, V) = scale * (exp(logits - lse) - onehot(label)); 0 on ignored rows
// Accumulation: `=`; one block per row, fp32 online max/sum in one pass over
// the row with 16-byte loads. A label outside [0, V) that is not ignoreIndex
// sets the device error flag (takeDeviceError) and gives that row loss NaN
// and dlogits 0.
#include "cuda/kernel_util.cuh"

namespace mbert {
namespace cuda {
namespace {

constexpr int kThreads = 512;

template <typename T>
__global__ void __launch_bounds__(kThreads) cross_entropy_forward_kernel(float* loss, float* lse, const T* logits,
                                                                       const int* labels, int64_t V, int ignore,
                                                                       bool vec, DeviceError* err) {
  __shared__ float shared[64];
  const int64_t row = blockIdx.x;
  const T* x = logits + row * V;
  constexpr int N = Vec<T>::N;
  float m = -INFINITY, s = 0.f;
  if (vec) {
    for (int64_t i = int64_t(threadIdx.x) * N; i < V; i += int64_t(kThreads) * N) {
      const Vec<T> v = load_vec(x + i);
      float mv = -INFINITY;
#pragma unroll
      for (int k = 0; k < N; ++k) mv = fmaxf(mv, to_f<T>(v.v[k]));
      float sv = 0.f;
#pragma unroll
      for (int k = 0; k < N; ++k) sv += __expf(to_f<T>(v.v[k]) - mv);
      if (mv != -INFINITY) online_merge(m, s, mv, sv);
    }
  } else {
    for (int64_t i = threadIdx.x; i < V; i += kThreads) online_add(m, s, to_f<T>(x[i]));
  }
  block_online(m, s, shared);
  if (threadIdx.x == 0) {
    const float l = m + logf(s);
    if (lse) lse[row] = l;
    const int label = labels[row];
    if (label == ignore) {
      loss[row] = 0.f;
    } else if (label < 0 || label >= V) {
      raise_device_error(err, kErrCrossEntropyLabel, row, label, V);
      loss[row] = NAN;
    } else {
      loss[row] = l - to_f<T>(x[label]);
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) cross_entropy_backward_kernel(T* dlogits, const T* logits,
                                                                        const float* lse, const int* labels,
                                                                        int64_t V, int ignore, float scale,
                                                                        bool vec) {
  const int64_t row = blockIdx.x;
  const T* x = logits + row * V;
  T* dx = dlogits + row * V;
  const int label = labels[row];
  const bool zero = label == ignore || label < 0 || label >= V;
  const float l = lse[row];
  constexpr int N = Vec<T>::N;
  if (vec) {
    for (int64_t i = int64_t(threadIdx.x) * N; i < V; i += int64_t(kThreads) * N) {
      Vec<T> v;
      if (zero) {
#pragma unroll
        for (int k = 0; k < N; ++k) v.v[k] = from_f<T>(0.f);
      } else {
        v = load_vec_cs(x + i);
#pragma unroll
        for (int k = 0; k < N; ++k) {
          const float p = __expf(to_f<T>(v.v[k]) - l);
          v.v[k] = from_f<T>(scale * (p - (i + k == label ? 1.f : 0.f)));
        }
      }
      store_vec(dx + i, v);
    }
  } else {
    for (int64_t i = threadIdx.x; i < V; i += kThreads) {
      const float p = zero ? 0.f : scale * (__expf(to_f<T>(x[i]) - l) - (i == label ? 1.f : 0.f));
      dx[i] = from_f<T>(p);
    }
  }
}

int ignore_arg(const Args& a, int i) {
  const int64_t v = a.i64(i);
  MBERT_CHECK(v >= INT32_MIN && v <= INT32_MAX, "cuda.", a.fn(), ": ignoreIndex must fit in int32, got ", v);
  return int(v);
}

// crossEntropyForward(dtype, loss, lse, logits, labels, rows, V, ignoreIndex)
Napi::Value cross_entropy_forward_js(const Napi::CallbackInfo& info) {
  Args a(info, "crossEntropyForward", 8);
  const DType dt = float_dtype(a, 0);
  const int64_t rows = a.size(5, "rows"), V = a.size(6, "V");
  const int ignore = ignore_arg(a, 7);
  MBERT_CHECK(V > 0 || rows == 0, "cuda.crossEntropyForward: V must be > 0");
  MBERT_CHECK(rows <= INT32_MAX, "cuda.crossEntropyForward: rows too large");
  float* loss = dbuf<float>(a, 1, DType::F32, rows, "loss");
  float* lse = dbuf<float>(a, 2, DType::F32, rows, "lse", false);
  const void* logits = dbuf(a, 3, dt, rows * V, "logits");
  const int* labels = dbuf<const int>(a, 4, DType::I32, rows, "labels");
  if (rows == 0) return undefined(a);
  MBERT_CUDA_DISPATCH(dt, {
    const bool vec = V % Vec<T>::N == 0 && aligned16(logits);
    cross_entropy_forward_kernel<T><<<unsigned(rows), kThreads, 0, stream()>>>(
        loss, lse, static_cast<const T*>(logits), labels, V, ignore, vec, device_error());
  });
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

// crossEntropyBackward(dtype, dlogits, logits, lse, labels, rows, V, ignoreIndex, scale)
Napi::Value cross_entropy_backward_js(const Napi::CallbackInfo& info) {
  Args a(info, "crossEntropyBackward", 9);
  const DType dt = float_dtype(a, 0);
  const int64_t rows = a.size(5, "rows"), V = a.size(6, "V");
  const int ignore = ignore_arg(a, 7);
  const float scale = float(a.f64(8));
  MBERT_CHECK(rows <= INT32_MAX, "cuda.crossEntropyBackward: rows too large");
  void* dlogits = dbuf(a, 1, dt, rows * V, "dlogits");
  const void* logits = dbuf(a, 2, dt, rows * V, "logits");
  const float* lse = dbuf<const float>(a, 3, DType::F32, rows, "lse");
  const int* labels = dbuf<const int>(a, 4, DType::I32, rows, "labels");
  if (rows * V == 0) return undefined(a);
  MBERT_CUDA_DISPATCH(dt, {
    const bool vec = V % Vec<T>::N == 0 && aligned16(logits) && aligned16(dlogits);
    cross_entropy_backward_kernel<T><<<unsigned(rows), kThreads, 0, stream()>>>(
        static_cast<T*>(dlogits), static_cast<const T*>(logits), lse, labels, V, ignore, scale, vec);
  });
  MBERT_LAUNCH_CHECK();
  return undefined(a);
}

}  // namespace

MBERT_EXPORT(cuda, crossEntropyForward, cross_entropy_forward_js);
MBERT_EXPORT(cuda, crossEntropyBackward, cross_entropy_backward_js);

}  // namespace cuda
}  // namespace mbert
