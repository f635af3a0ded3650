// error.h — mbert::Error, MBERT_CHECK and MBERT_CUDA_CHECK.
// Kernels and wrappers throw; the trampoline in binding.cc turns every C++
// exception into a JavaScript Error (with `code` from Error::code()). Nothing
// in the addon calls exit() or abort().
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mbert {

// A kernel or argument error. `code` becomes the JS error's `code` property.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg, std::string code = "KERNEL_ERROR")
      : std::runtime_error(msg), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// Allocation failure; the TS side maps code OUT_OF_MEMORY to OutOfMemory.
class OutOfMemory : public Error {
 public:
  explicit OutOfMemory(const std::string& msg) : Error(msg, "OUT_OF_MEMORY") {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

// Concatenates every argument with operator<< into one string.
template <typename... Parts>
std::string str(const Parts&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  return os.str();
}

}  // namespace mbert

// MBERT_CHECK(n >= 0, "layernormForward: rows must be >= 0, got ", n);
#define MBERT_CHECK(cond, ...)                          \
  do {                                                  \
    if (!(cond)) throw ::mbert::Error(::mbert::str(__VA_ARGS__)); \
  } while (0)

#if defined(__CUDACC__) || defined(MBERT_WITH_CUDA)
#include <cuda_runtime.h>
// MBERT_CUDA_CHECK(cudaMemcpyAsync(...)); throws "<call>: <cuda error> (file:line)".
#define MBERT_CUDA_CHECK(call)                                                              \
  do {                                                                                      \
    cudaError_t mbert_err_ = (call);                                                        \
    if (mbert_err_ != cudaSuccess) {                                                        \
      throw ::mbert::Error(::mbert::str(#call, ": ", cudaGetErrorString(mbert_err_), " (", \
                                        __FILE__, ":", __LINE__, ")"),                      \
                           mbert_err_ == cudaErrorMemoryAllocation ? "OUT_OF_MEMORY"        \
                                                                   : "CUDA_ERROR");         \
    }                                                                                       \
  } while (0)
#endif
