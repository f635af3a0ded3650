// dtype.h — dtype codes shared with packages/kernels/src/types.ts (DTYPE_CODES).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mbert {

enum class DType : int { F32 = 0, F64 = 1, BF16 = 2, I32 = 3 };

inline constexpr std::size_t dtype_size(DType d) {
  return d == DType::F64 ? 8 : d == DType::BF16 ? 2 : 4;
}

inline const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::BF16: return "bfloat16";
    case DType::I32: return "int32";
  }
  return "unknown";
}

}  // namespace mbert
