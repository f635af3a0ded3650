// philox.h — Philox4x32-10 counter-based RNG, identical on host and device.
// Key = 64-bit seed split into (lo, hi) u32 words; counter = 64-bit (offset + i)
// in words 0 (lo) and 1 (hi), words 2 and 3 zero. See types.ts randUniform.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/hd.h"

namespace mbert {

struct Philox4 {
  uint32_t w[4];
};

MBERT_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

// Ten rounds of Philox4x32 on counter `ctr` (64-bit) with key `seed` (64-bit).
MBERT_HD Philox4 philox4x32_10(uint64_t seed, uint64_t ctr) {
  uint32_t c0 = static_cast<uint32_t>(ctr), c1 = static_cast<uint32_t>(ctr >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, c0, hi0, lo0);
    philox_mulhilo(0xCD9E8D57u, c2, hi1, lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0;
    uint32_t n1 = lo1;
    uint32_t n2 = hi0 ^ c3 ^ k1;
    uint32_t n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  Philox4 out;
  out.w[0] = c0; out.w[1] = c1; out.w[2] = c2; out.w[3] = c3;
  return out;
}

// u in [0, 1) with 24 random bits: (word >> 8) * 2^-24. Exact in float32.
MBERT_HD float uniform01(uint32_t word) { return static_cast<float>(word >> 8) * (1.0f / 16777216.0f); }

// Box-Muller on two words: u1 = (w0 + 1) * 2^-32 in (0, 1], u2 = w1 * 2^-32,
// z = sqrt(-2 ln u1) * cos(2 pi u2). Computed in double for host/device agreement.
MBERT_HD double box_muller(uint32_t w0, uint32_t w1) {
  const double two_m32 = 2.3283064365386963e-10;  // 2^-32
  double u1 = (static_cast<double>(w0) + 1.0) * two_m32;
  double u2 = static_cast<double>(w1) * two_m32;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

}  // namespace mbert
