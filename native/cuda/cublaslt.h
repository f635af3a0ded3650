// cublaslt.h — our own declarations of the few cuBLASLt types, enum values and
// entry points gemm.cu uses. cuBLASLt is opened with dlopen at run time, so the
// addon builds where only nvcc and the CUDA runtime exist (no cuBLAS headers).
//
// Numeric values follow NVIDIA's public cublasLt.h / cublas_api.h (CUDA 12.x
// and 13.x keep them): checked against the published header text.
// cudaDataType_t (CUDA_R_32F = 0, CUDA_R_16BF = 14) comes from the runtime's
// library_types.h.
#pragma once

#include <cuda_runtime.h>
#include <library_types.h>

#include <cstddef>
#include <cstdint>

namespace mbert {
namespace cuda {
namespace lt {

using Status = int;  // cublasStatus_t
constexpr Status kSuccess = 0;             // CUBLAS_STATUS_SUCCESS
constexpr Status kNotInitialized = 1;      // CUBLAS_STATUS_NOT_INITIALIZED
constexpr Status kAllocFailed = 3;         // CUBLAS_STATUS_ALLOC_FAILED
constexpr Status kInvalidValue = 7;        // CUBLAS_STATUS_INVALID_VALUE
constexpr Status kArchMismatch = 8;        // CUBLAS_STATUS_ARCH_MISMATCH
constexpr Status kExecutionFailed = 13;    // CUBLAS_STATUS_EXECUTION_FAILED
constexpr Status kInternalError = 14;      // CUBLAS_STATUS_INTERNAL_ERROR
constexpr Status kNotSupported = 15;       // CUBLAS_STATUS_NOT_SUPPORTED

// cublasComputeType_t
constexpr int32_t kCompute32F = 68;          // CUBLAS_COMPUTE_32F
constexpr int32_t kCompute32FFastTF32 = 77;  // CUBLAS_COMPUTE_32F_FAST_TF32

// cublasOperation_t
constexpr int32_t kOpN = 0;  // CUBLAS_OP_N
constexpr int32_t kOpT = 1;  // CUBLAS_OP_T

// cublasLtMatmulDescAttributes_t
constexpr int kDescComputeType = 0;  // CUBLASLT_MATMUL_DESC_COMPUTE_TYPE  (int32)
constexpr int kDescScaleType = 1;    // CUBLASLT_MATMUL_DESC_SCALE_TYPE    (int32)
constexpr int kDescPointerMode = 2;  // CUBLASLT_MATMUL_DESC_POINTER_MODE  (int32)
constexpr int kDescTransA = 3;       // CUBLASLT_MATMUL_DESC_TRANSA        (int32)
constexpr int kDescTransB = 4;       // CUBLASLT_MATMUL_DESC_TRANSB        (int32)
constexpr int kDescEpilogue = 7;     // CUBLASLT_MATMUL_DESC_EPILOGUE      (uint32)
constexpr int kDescBiasPointer = 8;  // CUBLASLT_MATMUL_DESC_BIAS_POINTER  (void*)

// cublasLtEpilogue_t
constexpr uint32_t kEpilogueDefault = 1;  // CUBLASLT_EPILOGUE_DEFAULT
constexpr uint32_t kEpilogueBias = 4;     // CUBLASLT_EPILOGUE_BIAS

// cublasLtMatrixLayoutAttribute_t
constexpr int kLayoutType = 0;                // CUBLASLT_MATRIX_LAYOUT_TYPE (uint32)
constexpr int kLayoutOrder = 1;               // CUBLASLT_MATRIX_LAYOUT_ORDER (int32)
constexpr int kLayoutRows = 2;                // CUBLASLT_MATRIX_LAYOUT_ROWS (uint64)
constexpr int kLayoutCols = 3;                // CUBLASLT_MATRIX_LAYOUT_COLS (uint64)
constexpr int kLayoutLd = 4;                  // CUBLASLT_MATRIX_LAYOUT_LD (int64)
constexpr int kLayoutBatchCount = 5;          // CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT (int32)
constexpr int kLayoutStridedBatchOffset = 6;  // CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET (int64)

// cublasLtMatmulPreferenceAttributes_t
constexpr int kPrefSearchMode = 0;         // CUBLASLT_MATMUL_PREF_SEARCH_MODE (uint32)
constexpr int kPrefMaxWorkspaceBytes = 1;  // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES (uint64)
constexpr int kPrefMinAlignmentA = 5;      // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES (uint32)
constexpr int kPrefMinAlignmentB = 6;      // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES (uint32)
constexpr int kPrefMinAlignmentC = 7;      // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES (uint32)
constexpr int kPrefMinAlignmentD = 8;      // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES (uint32)

// Opaque handles (pointers to library-owned structs).
using Handle = struct LtContext*;          // cublasLtHandle_t
using MatmulDesc = struct LtMatmulDesc*;   // cublasLtMatmulDesc_t
using Layout = struct LtLayout*;           // cublasLtMatrixLayout_t
using Preference = struct LtPreference*;   // cublasLtMatmulPreference_t

// cublasLtMatmulAlgo_t: 64 bytes, copied by value.
struct MatmulAlgo {
  uint64_t data[8];
};

// cublasLtMatmulHeuristicResult_t
struct HeuristicResult {
  MatmulAlgo algo;
  std::size_t workspaceSize;
  Status state;
  float wavesCount;
  int reserved[4];
};

// Entry points, resolved by name with dlsym.
struct Api {
  Status (*Create)(Handle*);
  Status (*MatmulDescCreate)(MatmulDesc*, int32_t computeType, cudaDataType_t scaleType);
  Status (*MatmulDescSetAttribute)(MatmulDesc, int attr, const void* buf, std::size_t size);
  Status (*MatmulDescDestroy)(MatmulDesc);
  Status (*MatrixLayoutCreate)(Layout*, cudaDataType_t type, uint64_t rows, uint64_t cols, int64_t ld);
  Status (*MatrixLayoutSetAttribute)(Layout, int attr, const void* buf, std::size_t size);
  Status (*MatrixLayoutDestroy)(Layout);
  Status (*MatmulPreferenceCreate)(Preference*);
  Status (*MatmulPreferenceSetAttribute)(Preference, int attr, const void* buf, std::size_t size);
  Status (*MatmulPreferenceDestroy)(Preference);
  Status (*MatmulAlgoGetHeuristic)(Handle, MatmulDesc, Layout a, Layout b, Layout c, Layout d, Preference,
                                   int requested, HeuristicResult* results, int* returned);
  Status (*Matmul)(Handle, MatmulDesc, const void* alpha, const void* A, Layout a, const void* B, Layout b,
                   const void* beta, const void* C, Layout c, void* D, Layout d, const MatmulAlgo* algo,
                   void* workspace, std::size_t workspaceBytes, cudaStream_t stream);
  std::size_t (*GetVersion)();
};

inline const char* status_name(Status s) {
  switch (s) {
    case 0: return "CUBLAS_STATUS_SUCCESS";
    case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
    case 7: return "CUBLAS_STATUS_INVALID_VALUE";
    case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
    case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case 16: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

}  // namespace lt
}  // namespace cuda
}  // namespace mbert
