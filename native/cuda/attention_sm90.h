// attention_sm90.h — the Hopper (sm_90a, wgmma) attention kernels for head size 64,
// used by attention.cu in place of its mma.sync kernels when the sm_90a image is the
// one loaded (not the compute_80 PTX fallback).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace mbert {

// Whether the wgmma kernels run: the device is sm_90 and the loaded image was compiled
// for sm_90a (checked once with a probe kernel), unless MBERT_ATTN_SM90=0.
bool attention_sm90_enabled();

// The forward for HS = 64 over 128-query x 128-key tiles (a producer warpgroup, two
// wgmma consumer warpgroups); attention.cu uses it when some sequence is longer than 128.
void attention_forward_sm90(void* out, float* lse, const void* q, const void* k, const void* v, int64_t stride,
                            const int* cuSeqlens, int B, int T, int NH, int maxSeqlen, const float* slopes,
                            const float* keyBias, float scale, cudaStream_t stream);

// The whole backward for HS = 64 when every sequence has at most 128 tokens: dq, dk, dv
// written with `=`, deterministic, no scratch (D is computed from out inside).
void attention_backward_short_sm90(void* dq, void* dk, void* dv, const void* dout, const void* out, const float* lse,
                                   const void* q, const void* k, const void* v, int64_t stride, const int* cuSeqlens,
                                   int B, int T, int NH, const float* slopes, const float* keyBias, float scale,
                                   cudaStream_t stream);

// The backward for HS = 64 when some sequence is longer than 128, with 128-key tiles
// like attention.cu's (a producer warpgroup, two wgmma consumer warpgroups): D
// (NH, T) must hold rowsum(dout * out); dqacc (fp32, zeroed) receives dq of the
// sequences longer than 128 tokens, the others get dq directly.
void attention_backward_sm90(void* dq, void* dk, void* dv, float* dqacc, const void* dout, const float* lse,
                             const float* D, const void* q, const void* k, const void* v, int64_t stride,
                             const int* cuSeqlens, int B, int T, int NH, int maxSeqlen, const float* slopes,
                             const float* keyBias, float scale, cudaStream_t stream);

}  // namespace mbert
