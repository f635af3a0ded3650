// tensor_list.cuh — shared pieces of the kernels that walk a table of tensors in one
// launch (adamwList, sumSquaresList): the tensors' 4-element vectors are numbered one
// after another, entry i's first vector is e[i].first, and each block takes a fixed run
// of vectors, finding the entry it starts in by binary search.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace mbert {
namespace cuda {

// Four elements of T read or written as one aligned access.
template <typename T>
struct alignas(4 * sizeof(T)) Four {
  T v[4];
};

// Index of the last entry of table t (fields count and e[i].first) whose first vector
// is <= r.
template <typename List>
__device__ __forceinline__ int list_find(const List& t, long long r) {
  int lo = 0, hi = t.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (t.e[mid].first <= r) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// The part of an entry (first vector `first`, n elements) inside a block's run of vectors
// [r0, r1), as vector indices [a, b) within the entry.
struct ListSpan {
  long long a, b;
};
__device__ __forceinline__ ListSpan list_span(long long first, long long n, long long r0, long long r1) {
  const long long nv = (n + 3) >> 2;
  return {(r0 > first ? r0 : first) - first, (r1 < first + nv ? r1 : first + nv) - first};
}

// Host: fills table t (count, total, e[i] with e[i].first) with at most `max` of the
// entries from entries[c0], numbering their 4-element vectors from 0.
template <typename List, typename Entry>
void fill_list(List& t, const std::vector<Entry>& entries, std::size_t c0, int max) {
  t.count = static_cast<int>(std::min<std::size_t>(std::size_t(max), entries.size() - c0));
  long long total = 0;
  for (int i = 0; i < t.count; ++i) {
    t.e[i] = entries[c0 + i];
    t.e[i].first = total;
    total += (t.e[i].n + 3) / 4;
  }
  t.total = total;
}

}  // namespace cuda
}  // namespace mbert
