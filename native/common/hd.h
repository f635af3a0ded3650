// hd.h — MBERT_HD marks functions usable from host and device code.
#pragma once

#if defined(__CUDACC__)
#define MBERT_HD __host__ __device__ __forceinline__
#else
#define MBERT_HD inline
#endif
