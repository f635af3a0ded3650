// tensor_list.cuh — shared pieces of the kernels that walk a table of tensors in one
// launch (adamwList, sumSquaresList): the tensors' 4-element vectors are numbered one
// after another, entry i's first vector is e[i].first, and each block takes a fixed run
// of vectors, finding the entry it starts in by binary search.
#pragma once

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

}  // namespace cuda
}  // namespace mbert
