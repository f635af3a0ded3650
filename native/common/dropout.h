// dropout.h — the dropout mask rule, shared by dropoutForward/Backward and the
// kernels that fuse dropout into their output (GeGLU). Element i of the masked
// tensor uses word (i & 3) of philox(seed, offset + (i >> 2)) and is dropped when
// u_i = (word >> 8) * 2^-24 < float(p); kept elements are scaled by 1/(1-p),
// computed in the accumulation type (float for float32/bfloat16).
#pragma once

#include <cstdint>

#include "common/args.h"
#include "common/philox.h"

namespace mbert {

struct DropoutMask {
  double p = 0.0;  // drop probability; 0: no dropout
  float pf = 0.f;
  uint64_t seed = 0, offset = 0;

  MBERT_HD bool on() const { return p > 0.0; }
  template <typename C>
  MBERT_HD C scale() const {
    return C(1) / (C(1) - C(p));
  }
  MBERT_HD bool keep_word(uint32_t word) const { return !(uniform01(word) < pf); }
  MBERT_HD bool keep(int64_t i) const {
    return keep_word(philox4x32_10(seed, offset + static_cast<uint64_t>(i >> 2)).w[i & 3]);
  }
};

// The (p, seed, offset) arguments at a.[i, i + 3): p in [0, 1), seed and offset
// non-negative integers.
inline DropoutMask dropout_mask_args(const Args& a, int i) {
  DropoutMask m;
  m.p = a.f64(i);
  MBERT_CHECK(m.p >= 0 && m.p < 1, a.fn(), ": dropout p must be in [0, 1), got ", m.p);
  const int64_t seed = a.i64(i + 1), offset = a.i64(i + 2);
  MBERT_CHECK(seed >= 0 && offset >= 0, a.fn(), ": dropout seed and offset must be non-negative integers, got ", seed,
              " and ", offset);
  m.pf = static_cast<float>(m.p);
  m.seed = static_cast<uint64_t>(seed);
  m.offset = static_cast<uint64_t>(offset);
  return m;
}

}  // namespace mbert
