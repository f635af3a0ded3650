// cpu.h — shared pieces of the CPU backend: the thread pool (parallel_for),
// allocation-range checks for wrapper arguments, and dtype dispatch.
// Compute rule: float32 and bfloat16 storage compute in float, float64 in double.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "common/args.h"
#include "common/bf16.h"
#include "common/dtype.h"
#include "common/error.h"
#include "common/registry.h"

namespace mbert {
namespace cpu {

// ---- threads -------------------------------------------------------------------

// Runs fn(begin, end) over [0, n) split into chunks of at least `grain`
// elements on the persistent pool (the calling thread takes part). Runs
// inline when n is small, when one thread is configured, or when called from
// inside a pool task. The first exception thrown by any chunk is rethrown.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);
int num_threads();
void set_num_threads(int n);

// ---- memory ----------------------------------------------------------------------

// Throws "<fn>: argument <i> (<what>): <bytes> bytes at 0x.. is outside any live
// allocation" unless [p, p + bytes) lies inside one buffer returned by alloc.
// Null is accepted only when bytes == 0.
void check_range(const void* p, std::size_t bytes, const char* fn, int arg, const char* what);

// ---- bfloat16 storage ------------------------------------------------------------

struct bf16 {
  uint16_t bits;
  bf16() = default;
  bf16(float f) : bits(float_to_bf16(f)) {}  // NOLINT: implicit on purpose
  operator float() const { return bf16_to_float(bits); }
};

template <typename T> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };
template <typename T> using acc_t = typename Acc<T>::type;

// ---- wrapper helpers -------------------------------------------------------------

// Typed pointer argument i with range check for `count` elements of `dt`.
// required=false allows 0 (returns nullptr).
template <typename T>
T* buf(const Args& a, int i, DType dt, int64_t count, const char* what, bool required = true) {
  return static_cast<T*>(
      checked_ptr(a, i, static_cast<std::size_t>(count) * dtype_size(dt), what, required, check_range));
}

inline void* raw_buf(const Args& a, int i, std::size_t bytes, const char* what, bool required = true) {
  return checked_ptr(a, i, bytes, what, required, check_range);
}

[[noreturn]] inline void bad_dtype(const char* fn, DType dt, const char* supported) {
  throw Error(str(fn, ": dtype ", dtype_name(dt), " is not supported (supported: ", supported, ")"));
}

}  // namespace cpu
}  // namespace mbert

// Instantiates BODY with T = float / double / bf16 for a floating dtype.
#define MBERT_CPU_DISPATCH_FLOAT(fn, dt, ...)                            \
  switch (dt) {                                                          \
    case ::mbert::DType::F32: { using T = float; __VA_ARGS__; break; }   \
    case ::mbert::DType::F64: { using T = double; __VA_ARGS__; break; }  \
    case ::mbert::DType::BF16: { using T = ::mbert::cpu::bf16; __VA_ARGS__; break; } \
    default: ::mbert::cpu::bad_dtype(fn, dt, "float32, float64, bfloat16");   \
  }

// float32 / float64 only (compute kernels whose stat buffers follow dtype).
#define MBERT_CPU_DISPATCH_F32_F64(fn, dt, ...)                          \
  switch (dt) {                                                          \
    case ::mbert::DType::F32: { using T = float; __VA_ARGS__; break; }   \
    case ::mbert::DType::F64: { using T = double; __VA_ARGS__; break; }  \
    default: ::mbert::cpu::bad_dtype(fn, dt, "float32, float64");        \
  }
