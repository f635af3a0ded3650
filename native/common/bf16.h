// bf16.h — float <-> bfloat16 (stored as uint16_t), round to nearest even,
// NaN-safe (a NaN stays a quiet NaN). Host and device (MBERT_HD).
#pragma once

#include <cstdint>
#include <cstring>

#include "common/hd.h"

namespace mbert {

MBERT_HD uint32_t f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

MBERT_HD float bits_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

MBERT_HD uint16_t float_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even (overflows to inf correctly)
  return static_cast<uint16_t>(u >> 16);
}

MBERT_HD float bf16_to_float(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

}  // namespace mbert
