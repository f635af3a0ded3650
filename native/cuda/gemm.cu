// gemm.cu — matmul through cuBLASLt (opened with dlopen on first use).
//   out[b] = alpha * op(A[b]) @ op(B[b]) + beta * out[b], row-major, b < batch
//   op(A): (M, K)   op(B): (K, N)   out: (M, N)
// Accumulation: always fp32 (CUBLAS_COMPUTE_32F). bf16 A/B may write bf16 or
// fp32 out; fp32 A/B compute in full fp32 (no TF32) unless MBERT_ALLOW_TF32=1,
// which selects CUBLAS_COMPUTE_32F_FAST_TF32. beta = 0 never reads out.
// An optional bias(N) in out's dtype is added to every row of out in cuBLASLt's
// epilogue (to the fp32 accumulator, before the one rounding to out's dtype):
// the linear layer's forward in one pass. For N not a multiple of 8, a batch
// that does not fold into one product, or where no algorithm takes the
// epilogue, a bias kernel runs after the product instead.
//
// Row-major without copies: a row-major (R, C) matrix is a column-major (C, R)
// one, so out^T = op(B)^T @ op(A)^T is computed in cuBLASLt's column-major
// terms with B as its first operand and A as its second.
//
// Each distinct (shape, transposes, dtypes, strides, pointer alignment) builds
// a plan once: descriptors, layouts and the heuristic's best algorithm, cached.
#include <dlfcn.h>

#include <array>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/bias.h"
#include "cuda/cublaslt.h"
#include "cuda/kernel_util.cuh"

namespace mbert {
namespace cuda {
namespace {

// ---- loading ---------------------------------------------------------------------

struct Library {
  void* so = nullptr;
  std::string path;
  lt::Api api{};
  lt::Handle handle = nullptr;
};

std::mutex g_lib_mu;
Library* g_lib = nullptr;

template <typename F>
void resolve(void* so, const char* name, F& out, const std::string& path) {
  void* sym = dlsym(so, name);
  if (!sym) throw Error(str("cuda.matmul: ", path, " has no symbol ", name, " (cuBLASLt too old?)"), "NO_CUBLASLT");
  out = reinterpret_cast<F>(sym);
}

Library& library() {
  std::lock_guard<std::mutex> lock(g_lib_mu);
  if (g_lib) return *g_lib;
  const char* sonames[] = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"};
  std::vector<std::string> tried;
  std::string errors;
  void* so = nullptr;
  std::string found;
  auto attempt = [&](const std::string& p) {
    if (so) return;
    tried.push_back(p);
    so = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (so) {
      found = p;
    } else if (const char* e = dlerror()) {
      errors += str("\n  ", e);
    }
  };
  if (const char* env = std::getenv("MBERT_CUBLASLT"); env && *env) {
    std::string s(env);
    if (s.find(".so") != std::string::npos) {
      attempt(s);
    } else {
      for (const char* n : sonames) attempt(s + "/" + n);
    }
  }
  std::vector<std::string> dirs;
  if (const char* h = std::getenv("CUDA_HOME"); h && *h) dirs.push_back(std::string(h) + "/lib64");
  dirs.push_back("/usr/local/cuda/lib64");
  for (const std::string& d : dirs)
    for (const char* n : sonames) attempt(d + "/" + n);
  for (const char* n : sonames) attempt(n);  // the loader's path (LD_LIBRARY_PATH, ldconfig)
  if (!so) {
    std::string list;
    for (const std::string& t : tried) list += "\n  " + t;
    throw Error(str("cuda.matmul: cuBLASLt was not found. Searched (MBERT_CUBLASLT, $CUDA_HOME/lib64, ",
                    "/usr/local/cuda/lib64, then the loader path):", list, "\nLoader errors:", errors,
                    "\nInstall cuBLAS (libcublasLt.so.12 or .13) or set MBERT_CUBLASLT to its path."),
                "NO_CUBLASLT");
  }
  auto* lib = new Library();
  lib->so = so;
  lib->path = found;
  lt::Api& a = lib->api;
  resolve(so, "cublasLtCreate", a.Create, found);
  resolve(so, "cublasLtMatmulDescCreate", a.MatmulDescCreate, found);
  resolve(so, "cublasLtMatmulDescSetAttribute", a.MatmulDescSetAttribute, found);
  resolve(so, "cublasLtMatmulDescDestroy", a.MatmulDescDestroy, found);
  resolve(so, "cublasLtMatrixLayoutCreate", a.MatrixLayoutCreate, found);
  resolve(so, "cublasLtMatrixLayoutSetAttribute", a.MatrixLayoutSetAttribute, found);
  resolve(so, "cublasLtMatrixLayoutDestroy", a.MatrixLayoutDestroy, found);
  resolve(so, "cublasLtMatmulPreferenceCreate", a.MatmulPreferenceCreate, found);
  resolve(so, "cublasLtMatmulPreferenceSetAttribute", a.MatmulPreferenceSetAttribute, found);
  resolve(so, "cublasLtMatmulPreferenceDestroy", a.MatmulPreferenceDestroy, found);
  resolve(so, "cublasLtMatmulAlgoGetHeuristic", a.MatmulAlgoGetHeuristic, found);
  resolve(so, "cublasLtMatmul", a.Matmul, found);
  resolve(so, "cublasLtGetVersion", a.GetVersion, found);
  ensure_init();  // the device must be current before the handle is made
  lt::Status s = a.Create(&lib->handle);
  if (s != lt::kSuccess) {
    delete lib;
    throw Error(str("cuda.matmul: cublasLtCreate failed: ", lt::status_name(s), " (", found, ")"), "CUBLAS_ERROR");
  }
  g_lib = lib;
  return *g_lib;
}

#define LT_CHECK(call)                                                                                   \
  do {                                                                                                   \
    ::mbert::cuda::lt::Status lt_s_ = (call);                                                            \
    if (lt_s_ != ::mbert::cuda::lt::kSuccess)                                                            \
      throw ::mbert::Error(::mbert::str("cuda.matmul: ", #call, " failed: ", ::mbert::cuda::lt::status_name(lt_s_), \
                                        " (", __FILE__, ":", __LINE__, ")"),                             \
                           "CUBLAS_ERROR");                                                              \
  } while (0)

// ---- plans -------------------------------------------------------------------------

struct Problem {
  DType dtype, out_dtype;
  int64_t batch, M, N, K;
  bool transA, transB;
  int64_t strideA, strideB, strideOut;
  bool bias = false;  // bias epilogue (batch 1)
};

// Alignment (bytes, power of two, capped at 256) of an address.
uint32_t alignment(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 1 && (a % al) != 0) al >>= 1;
  return al;
}

using PlanKey = std::array<int64_t, 16>;

struct Plan {
  lt::MatmulDesc desc = nullptr;
  lt::Layout a = nullptr, b = nullptr, c = nullptr;  // cuBLASLt's A (our B), B (our A), C = D
  lt::MatmulAlgo algo{};
  bool has_algo = false;
  std::size_t workspace = 0;
};

std::mutex g_plan_mu;
std::map<PlanKey, Plan> g_plans;
constexpr std::size_t kMaxPlans = 4096;  // varlen batches change T; bound the cache

cudaDataType_t lt_type(DType d) { return d == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F; }

// MBERT_GEMM_BIAS_EPILOGUE=0 adds biases with the bias kernel instead (for comparisons).
bool bias_epilogue() {
  static const bool on = [] {
    const char* e = std::getenv("MBERT_GEMM_BIAS_EPILOGUE");
    return !(e && e[0] == '0');
  }();
  return on;
}

bool allow_tf32() {
  static const bool on = [] {
    const char* e = std::getenv("MBERT_ALLOW_TF32");
    return e && *e && *e != '0';
  }();
  return on;
}

lt::Layout make_layout(Library& L, cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                       int64_t stride) {
  lt::Layout l = nullptr;
  LT_CHECK(L.api.MatrixLayoutCreate(&l, t, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld));
  if (batch > 1) {
    int32_t count = static_cast<int32_t>(batch);
    LT_CHECK(L.api.MatrixLayoutSetAttribute(l, lt::kLayoutBatchCount, &count, sizeof count));
    LT_CHECK(L.api.MatrixLayoutSetAttribute(l, lt::kLayoutStridedBatchOffset, &stride, sizeof stride));
  }
  return l;
}

// Builds (or finds) the plan. Our row-major problem in cuBLASLt's column-major
// terms: D (N x M, ld N) = opA'(B) (N x K) @ opB'(A) (K x M).
Plan& plan_for(Library& L, const Problem& p, uint32_t alA, uint32_t alB, uint32_t alC) {
  const bool tf32 = p.dtype == DType::F32 && allow_tf32();
  PlanKey key = {int64_t(p.dtype), int64_t(p.out_dtype), p.batch, p.M, p.N, p.K, p.transA, p.transB,
                 p.strideA, p.strideB, p.strideOut, alA, alB, alC, tf32, p.bias};
  std::lock_guard<std::mutex> lock(g_plan_mu);
  auto it = g_plans.find(key);
  if (it != g_plans.end()) return it->second;
  if (g_plans.size() >= kMaxPlans) {
    for (auto& kv : g_plans) {
      L.api.MatrixLayoutDestroy(kv.second.a);
      L.api.MatrixLayoutDestroy(kv.second.b);
      L.api.MatrixLayoutDestroy(kv.second.c);
      L.api.MatmulDescDestroy(kv.second.desc);
    }
    g_plans.clear();
  }
  Plan plan;
  const int32_t compute = tf32 ? lt::kCompute32FFastTF32 : lt::kCompute32F;
  LT_CHECK(L.api.MatmulDescCreate(&plan.desc, compute, CUDA_R_32F));
  const int32_t opA = p.transB ? lt::kOpT : lt::kOpN;  // cuBLASLt's A is our B
  const int32_t opB = p.transA ? lt::kOpT : lt::kOpN;  // cuBLASLt's B is our A
  LT_CHECK(L.api.MatmulDescSetAttribute(plan.desc, lt::kDescTransA, &opA, sizeof opA));
  LT_CHECK(L.api.MatmulDescSetAttribute(plan.desc, lt::kDescTransB, &opB, sizeof opB));
  if (p.bias) {
    // Bias of length N: the rows of D in cuBLASLt's column-major terms. Its dtype
    // defaults to D's. The pointer is set before each launch (run_plan).
    const uint32_t epi = lt::kEpilogueBias;
    LT_CHECK(L.api.MatmulDescSetAttribute(plan.desc, lt::kDescEpilogue, &epi, sizeof epi));
  }
  const cudaDataType_t in = lt_type(p.dtype), out = lt_type(p.out_dtype);
  // Our B: row-major (K, N) = col-major (N, K) ld N; transposed: row-major (N, K) = col-major (K, N) ld K.
  plan.a = p.transB ? make_layout(L, in, p.K, p.N, p.K, p.batch, p.strideB)
                    : make_layout(L, in, p.N, p.K, p.N, p.batch, p.strideB);
  // Our A: row-major (M, K) = col-major (K, M) ld K; transposed: row-major (K, M) = col-major (M, K) ld M.
  plan.b = p.transA ? make_layout(L, in, p.M, p.K, p.M, p.batch, p.strideA)
                    : make_layout(L, in, p.K, p.M, p.K, p.batch, p.strideA);
  plan.c = make_layout(L, out, p.N, p.M, p.N, p.batch, p.strideOut);

  lt::Preference pref = nullptr;
  LT_CHECK(L.api.MatmulPreferenceCreate(&pref));
  uint64_t ws = workspace_bytes();
  L.api.MatmulPreferenceSetAttribute(pref, lt::kPrefMaxWorkspaceBytes, &ws, sizeof ws);
  // cuBLASLt's A is our B, its B our A; C and D are out.
  L.api.MatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentA, &alB, sizeof alB);
  L.api.MatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentB, &alA, sizeof alA);
  L.api.MatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentC, &alC, sizeof alC);
  L.api.MatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentD, &alC, sizeof alC);
  lt::HeuristicResult results[4];
  int returned = 0;
  lt::Status s = L.api.MatmulAlgoGetHeuristic(L.handle, plan.desc, plan.a, plan.b, plan.c, plan.c, pref, 4,
                                              results, &returned);
  L.api.MatmulPreferenceDestroy(pref);
  for (int i = 0; s == lt::kSuccess && i < returned; ++i) {
    if (results[i].state == lt::kSuccess && results[i].workspaceSize <= ws) {
      plan.algo = results[i].algo;
      plan.workspace = results[i].workspaceSize;
      plan.has_algo = true;
      break;
    }
  }
  return g_plans.emplace(key, plan).first->second;
}

// out = beta * out for K == 0 (cuBLASLt does not take empty reductions).
template <typename T>
__global__ void scale_kernel(T* out, int64_t n, float beta) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_f<T>(beta == 0.f ? 0.f : beta * to_f<T>(out[i]));
}

void run_plan(Library& L, const Plan& plan, const void* A, const void* B, void* out, float alpha, float beta,
              const void* bias = nullptr) {
  if (bias) LT_CHECK(L.api.MatmulDescSetAttribute(plan.desc, lt::kDescBiasPointer, &bias, sizeof bias));
  LT_CHECK(L.api.Matmul(L.handle, plan.desc, &alpha, B, plan.a, A, plan.b, &beta, out, plan.c, out, plan.c,
                        &plan.algo, workspace(), plan.workspace, stream()));
}

// Host launcher; pointers must be device memory. Throws on unsupported input.
// bias (N elements of out_dtype, or null): added to every row of every out[b].
void matmul(const Problem& p0, const void* A, const void* B, void* out, float alpha, float beta,
            const void* bias = nullptr) {
  if (p0.batch == 0 || p0.M == 0 || p0.N == 0) return;
  const std::size_t out_es = dtype_size(p0.out_dtype);
  if (p0.K == 0) {
    // Every out[b] becomes beta * out[b]; only contiguous-batch outputs are handled here.
    for (int64_t b = 0; b < p0.batch; ++b) {
      char* o = static_cast<char*>(out) + b * p0.strideOut * out_es;
      const int64_t n = p0.M * p0.N;
      if (p0.out_dtype == DType::BF16)
        scale_kernel<bf16><<<grid_for(n, 256), 256, 0, stream()>>>(reinterpret_cast<bf16*>(o), n, beta);
      else
        scale_kernel<float><<<grid_for(n, 256), 256, 0, stream()>>>(reinterpret_cast<float*>(o), n, beta);
      MBERT_LAUNCH_CHECK();
      if (bias) add_bias(p0.out_dtype, o, bias, p0.M, p0.N);
    }
    return;
  }
  Library& L = library();
  Problem p = p0;
  // A batch of row-major (M, K) A's against one shared B with contiguous
  // outputs is one (batch*M, K) @ (K, N) product: one launch, better tiles.
  if (p.batch > 1 && p.strideB == 0 && !p.transA && p.strideA == p.M * p.K && p.strideOut == p.M * p.N) {
    p.M *= p.batch;
    p.batch = 1;
  }
  if (p.batch == 1) p.strideA = p.strideB = p.strideOut = 0;
  const uint32_t alA = alignment(A), alB = alignment(B), alC = alignment(out);
  // The epilogue for layer-sized outputs (N a multiple of 8). For a handful of
  // columns (a classifier's or regression head's labels) the heuristic's choice with
  // the epilogue was measured less accurate in bf16 (a regression head's outputs
  // 0.0071 against 0.0021 relative error), and a separate pass costs nothing there.
  if (bias && p.batch == 1 && p.N % 8 == 0 && bias_epilogue()) {
    Problem pb = p;
    pb.bias = true;
    Plan& plan = plan_for(L, pb, alA, alB, alC);
    if (plan.has_algo) {
      run_plan(L, plan, A, B, out, alpha, beta, bias);
      return;
    }
  }
  Plan& plan = plan_for(L, p, alA, alB, alC);
  // Without the epilogue (no algorithm takes it, or a batch): the bias after the products.
  auto finish = [&] {
    if (!bias) return;
    for (int64_t b = 0; b < p0.batch; ++b)
      add_bias(p0.out_dtype, static_cast<char*>(out) + b * p0.strideOut * out_es, bias, p0.M, p0.N);
  };
  if (plan.has_algo) {
    if (p.batch == 1) {
      run_plan(L, plan, A, B, out, alpha, beta);
      finish();
      return;
    }
    // A batched layout cuBLASLt accepts in the heuristic but refuses at launch
    // (a broadcast stride 0, say) falls through to one product per batch;
    // a refused launch enqueues nothing.
    try {
      run_plan(L, plan, A, B, out, alpha, beta);
      finish();
      return;
    } catch (const Error&) {
      plan.has_algo = false;
    }
  }
  MBERT_CHECK(p.batch > 1, "cuda.matmul: cuBLASLt has no algorithm for ", dtype_name(p.dtype), " -> ",
              dtype_name(p.out_dtype), " M=", p.M, " N=", p.N, " K=", p.K, " transA=", p.transA,
              " transB=", p.transB, " (alignments ", alA, "/", alB, "/", alC, " bytes)");
  // A batched layout (e.g. a broadcast stride 0) cuBLASLt refused: one product per batch.
  Problem one = p;
  one.batch = 1;
  one.strideA = one.strideB = one.strideOut = 0;
  const std::size_t es = dtype_size(p.dtype);
  for (int64_t b = 0; b < p.batch; ++b) {
    const char* a = static_cast<const char*>(A) + b * p.strideA * es;
    const char* bb = static_cast<const char*>(B) + b * p.strideB * es;
    char* o = static_cast<char*>(out) + b * p.strideOut * out_es;
    Plan& pl = plan_for(L, one, alignment(a), alignment(bb), alignment(o));
    MBERT_CHECK(pl.has_algo, "cuda.matmul: cuBLASLt has no algorithm for ", dtype_name(p.dtype), " M=", p.M,
                " N=", p.N, " K=", p.K);
    run_plan(L, pl, a, bb, o, alpha, beta);
  }
  finish();
}

// matmul(dtype, outDtype, out, a, b, batch, M, N, K, transA, transB, alpha, beta, strideA, strideB,
//        strideOut[, bias])
Napi::Value matmul_js(const Napi::CallbackInfo& info) {
  Args a(info, "matmul");
  MBERT_CHECK(a.count() == 16 || a.count() == 17, "matmul: expected 16 or 17 arguments, got ", a.count());
  Problem p;
  p.dtype = float_dtype(a, 0);
  p.out_dtype = float_dtype(a, 1);
  MBERT_CHECK(p.dtype == DType::BF16 || p.out_dtype == DType::F32, "cuda.matmul: float32 inputs write float32 ",
              "output (outDtype ", dtype_name(p.out_dtype), " given)");
  p.batch = a.size(5, "batch");
  p.M = a.size(6, "M");
  p.N = a.size(7, "N");
  p.K = a.size(8, "K");
  p.transA = a.flag(9);
  p.transB = a.flag(10);
  const double alpha = a.f64(11), beta = a.f64(12);
  p.strideA = a.size(13, "strideA");
  p.strideB = a.size(14, "strideB");
  p.strideOut = a.size(15, "strideOut");
  MBERT_CHECK(p.M <= INT32_MAX && p.N <= INT32_MAX && p.K <= INT32_MAX && p.batch <= INT32_MAX,
              "cuda.matmul: dimensions must fit in int32");
  if (p.batch == 0 || p.M == 0 || p.N == 0) return undefined(a);
  const int64_t last = p.batch - 1;
  void* out = dbuf(a, 2, p.out_dtype, last * p.strideOut + p.M * p.N, "out");
  const void* A = dbuf(a, 3, p.dtype, p.K ? last * p.strideA + p.M * p.K : 0, "a", p.K > 0);
  const void* B = dbuf(a, 4, p.dtype, p.K ? last * p.strideB + p.K * p.N : 0, "b", p.K > 0);
  const void* bias = a.count() == 17 ? dbuf(a, 16, p.out_dtype, p.N, "bias", false) : nullptr;
  matmul(p, A, B, out, static_cast<float>(alpha), static_cast<float>(beta), bias);
  return undefined(a);
}

}  // namespace

MBERT_EXPORT(cuda, matmul, matmul_js);

}  // namespace cuda
}  // namespace mbert
