// strided.h — helpers for kernels that walk an N-d index space with strides
// (binary, stridedCopy): argument validation and the extent a view touches.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/cpu.h"

namespace mbert {
namespace cpu {

constexpr int kMaxDims = 8;

inline int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// Elements spanned by a view (max offset + 1), 0 when the shape is empty.
inline int64_t extent(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  int64_t e = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) return 0;
    e += (shape[d] - 1) * strides[d];
  }
  return e;
}

inline void check_view(const char* fn, const char* what, const std::vector<int64_t>& shape,
                       const std::vector<int64_t>& strides) {
  MBERT_CHECK(shape.size() <= static_cast<std::size_t>(kMaxDims), fn, ": at most ", kMaxDims,
              " dims are supported, got ", shape.size());
  MBERT_CHECK(strides.size() == shape.size(), fn, ": ", what, " has ", strides.size(), " strides for ",
              shape.size(), " dims");
  for (std::size_t d = 0; d < shape.size(); ++d) {
    MBERT_CHECK(shape[d] >= 0, fn, ": shape[", d, "] must be >= 0, got ", shape[d]);
    MBERT_CHECK(strides[d] >= 0, fn, ": ", what, "[", d, "] must be >= 0, got ", strides[d]);
  }
}

// Row-major contiguous strides of shape.
inline bool is_contiguous(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  int64_t expect = 1;
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
    if (shape[d] != 1 && strides[d] != expect) return false;
    expect *= shape[d];
  }
  return true;
}

// Offsets of the first element of "row" r (all dims but the last) for up to
// three strided views; rows are numbered row-major.
struct RowWalker {
  int nd;  // dims excluding the last
  int64_t shape[kMaxDims];
  int64_t strides[3][kMaxDims];

  RowWalker(const std::vector<int64_t>& s, std::initializer_list<const std::vector<int64_t>*> views) {
    nd = static_cast<int>(s.size()) - 1;
    for (int d = 0; d < nd; ++d) shape[d] = s[d];
    int v = 0;
    for (const auto* st : views) {
      for (int d = 0; d < nd; ++d) strides[v][d] = (*st)[d];
      ++v;
    }
  }

  void offsets(int64_t row, int64_t* off, int nviews) const {
    for (int v = 0; v < nviews; ++v) off[v] = 0;
    for (int d = nd - 1; d >= 0; --d) {
      int64_t i = row % shape[d];
      row /= shape[d];
      for (int v = 0; v < nviews; ++v) off[v] += i * strides[v][d];
    }
  }
};

}  // namespace cpu
}  // namespace mbert
