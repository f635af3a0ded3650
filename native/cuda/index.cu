// index.cu — row gather/scatter: indexSelect (embedding lookup, `=`),
// indexAdd (embedding gradient, `+=`) and indexCopy (`=`, distinct indices).
//   indexSelect: out(n, rowSize) = table(numRows, rowSize)[idx[i]]
//   indexAdd:    out(numRows, rowSize) in gradDtype += src(n, rowSize)[i] at idx[i]
//   indexCopy:   out(numRows, rowSize)[idx[i]] = src(n, rowSize)[i]
// A bad index sets the device error flag (read by takeDeviceError); its row is
// skipped (indexSelect writes zeros there).
//
// indexAdd is deterministic (no floating-point atomics): the (idx[i], i) pairs
// are sorted stably by index, so each output row's contributions form one
// segment in increasing i, then summed in that order and added to out once.
// The sort is our own radix sort in one cooperative launch for up to 65536
// positions (CUB's beyond that); the sum cuts the sorted positions into tiles
// of 32 and sums the segments that start in each tile there, spreading only
// long segments over several tiles. Tables of at most four rows (token types)
// skip the sort. See the comments at each step.
#include <algorithm>
#include <climits>
#include <map>
#include <mutex>

#include <cooperative_groups.h>
#include <cub/device/device_radix_sort.cuh>

#include "cuda/kernel_util.cuh"

namespace mbert {
namespace cuda {
namespace {

namespace cg = cooperative_groups;

// W: a word of the element size (uint16_t for bf16, uint32_t for float32/int32).
template <typename W, bool VEC>
__global__ void index_select_kernel(W* out, const W* table, const int* idx, int64_t n, int64_t row_size,
                                    int64_t num_rows, DeviceError* err) {
  constexpr int N = VEC ? 16 / sizeof(W) : 1;
  const int64_t rv = row_size / N, total = n * rv;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t / rv, c = (t - i * rv) * N;
    const int64_t row = idx[i];
    const bool ok = row >= 0 && row < num_rows;
    if (!ok && c == 0) raise_device_error(err, kErrIndexSelect, i, row, num_rows);
    if constexpr (VEC) {
      int4 v = ok ? *reinterpret_cast<const int4*>(table + row * row_size + c) : make_int4(0, 0, 0, 0);
      *reinterpret_cast<int4*>(out + i * row_size + c) = v;
    } else {
      out[i * row_size + c] = ok ? table[row * row_size + c] : W(0);
    }
  }
}

template <typename W, bool VEC>
__global__ void index_copy_kernel(W* out, const W* src, const int* idx, int64_t n, int64_t row_size, int64_t num_rows,
                                  DeviceError* err) {
  constexpr int N = VEC ? 16 / sizeof(W) : 1;
  const int64_t rv = row_size / N, total = n * rv;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t / rv, c = (t - i * rv) * N;
    const int64_t row = idx[i];
    if (row < 0 || row >= num_rows) {
      if (c == 0) raise_device_error(err, kErrIndexCopy, i, row, num_rows);
      continue;
    }
    if constexpr (VEC)
      *reinterpret_cast<int4*>(out + row * row_size + c) = *reinterpret_cast<const int4*>(src + i * row_size + c);
    else
      out[row * row_size + c] = src[i * row_size + c];
  }
}

// keys[i] = idx[i] (numRows for a bad index, sorted last and skipped), vals[i] = i;
// with keys null, only reports bad indices.
__global__ void index_add_prepare(int* keys, int* vals, const int* idx, int64_t n, int64_t num_rows,
                                  DeviceError* err) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int row = idx[i];
    const bool ok = row >= 0 && row < num_rows;
    if (!ok) raise_device_error(err, kErrIndexAdd, i, row, num_rows);
    if (!keys) continue;  // only checking
    keys[i] = ok ? row : int(num_rows);
    vals[i] = int(i);
  }
}

// Programmatic dependent launch (sm_90+): the sort lets the tile kernel's blocks start
// on the SMs it leaves free, and they wait for its results here. No-ops elsewhere and
// when the kernel was launched without the attribute.
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

// ---- indexAdd: sorting the (idx[i], i) pairs ------------------------------------------
//
// Up to kSortMaxN positions the pairs are sorted by our own stable LSD radix sort, 8
// bits per pass, in one cooperative launch of one block per tile of 1024 positions (one
// thread each, at most 64 blocks, all resident at once), with a grid-wide barrier
// between passes. Each pass: every block turns the per-tile digit counts of all tiles
// into its own output offsets (one load per thread per quarter of the tiles), then
// moves each pair to its offset plus its rank among the tile's equal digits (per-bit
// ballots within the warp, then the counts of the warps before it), counting the next
// pass's digits by output tile as it goes. All of it is integer work, so the order is
// the same on every run. Past kSortMaxN, or where a cooperative launch of that size is
// not possible, CUB's radix sort (stable as well) does the same job.

constexpr int kSortTile = 1024;  // positions per sort block, one per thread
constexpr int kSortWarps = kSortTile / 32;
constexpr int kDigits = 256;     // 8-bit digits
constexpr int kSortMaxTiles = 64;
constexpr int64_t kSortMaxN = int64_t(kSortTile) * kSortMaxTiles;

struct SortShared {
  int cnt[kSortWarps][kDigits + 1];  // per-warp digit counts, then output slots
  int part[2][4][kDigits];           // [before this tile, all tiles][quarter][digit]
  int warp_total[kDigits / 32];
};

// Lanes of the warp whose 8-bit digit equals this lane's (the tail's invalid lanes
// group only with each other): the ballot of each digit bit, taken as is or inverted.
__device__ __forceinline__ unsigned digit_peers(int dig, bool valid) {
  unsigned peers = __ballot_sync(0xffffffffu, valid) ^ (valid ? 0u : 0xffffffffu);
#pragma unroll
  for (int b = 0; b < 8; ++b) {
    const unsigned set = __ballot_sync(0xffffffffu, (dig >> b) & 1);
    peers &= (dig >> b) & 1 ? set : ~set;
  }
  return peers;
}

// One LSD pass for block t: (key, val) of position t 1024 + threadIdx.x (valid: below
// n) to keys_out/vals_out. hist: this pass's (tile, digit) counts; hist_next (or null):
// the next pass's, by output tile.
__device__ void sort_pass(SortShared& sh, int key, int val, bool valid, int* keys_out, int* vals_out, const int* hist,
                          int* hist_next, int tiles, int shift) {
  constexpr int kQuarter = kSortMaxTiles / 4;
  const int t = blockIdx.x, j = threadIdx.x, w = j / 32, lane = j % 32;
  for (int k = j; k < kSortWarps * (kDigits + 1); k += kSortTile) (&sh.cnt[0][0])[k] = 0;
  {  // this block's share of the scan: thread (g, d) sums digit d over quarter g of the tiles
    const int g = j / kDigits, d = j % kDigits, per = (tiles + 3) / 4, t0 = g * per;
    int before = 0, all = 0;
#pragma unroll
    for (int k = 0; k < kQuarter; ++k) {
      const int tt = t0 + k;
      const int v = k < per && tt < tiles ? hist[tt * kDigits + d] : 0;
      all += v;
      before += tt < t ? v : 0;
    }
    sh.part[0][g][d] = before;
    sh.part[1][g][d] = all;
  }
  __syncthreads();
  const int dig = valid ? (key >> shift) & (kDigits - 1) : kDigits;
  const unsigned peers = digit_peers(dig, valid);
  const int rank = __popc(peers & ((1u << lane) - 1u));
  if (rank == 0) sh.cnt[w][dig] = __popc(peers);
  int total = 0, incl = 0;
  if (j < kDigits) {  // inclusive scan of the digit totals, per warp
    total = sh.part[1][0][j] + sh.part[1][1][j] + sh.part[1][2][j] + sh.part[1][3][j];
    incl = total;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int v = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += v;
    }
    if (lane == 31) sh.warp_total[j / 32] = incl;
  }
  __syncthreads();
  if (j < kDigits) {  // slot of each warp's first pair of digit j
    int run = incl - total + sh.part[0][0][j] + sh.part[0][1][j] + sh.part[0][2][j] + sh.part[0][3][j];
    for (int k = 0; k < j / 32; ++k) run += sh.warp_total[k];
    for (int k = 0; k < kSortWarps; ++k) {
      const int c = sh.cnt[k][j];
      sh.cnt[k][j] = run;
      run += c;
    }
  }
  __syncthreads();
  if (!valid) return;
  const int pos = sh.cnt[w][dig] + rank;
  keys_out[pos] = key;
  vals_out[pos] = val;
  if (hist_next) atomicAdd(&hist_next[(pos / kSortTile) * kDigits + ((key >> (shift + 8)) & (kDigits - 1))], 1);
}

// keys[i] = idx[i] (numRows for a bad index: sorted last, skipped), vals[i] = i, sorted
// by key in `passes` passes; the result is in (a_keys, a_vals) after an even number of
// passes, (b_keys, b_vals) after an odd one. hist: (passes, tiles, kDigits) ints. Also
// zeroes the tile kernel's tickets.
__global__ void __launch_bounds__(kSortTile) sort_pairs_kernel(int* a_keys, int* a_vals, int* b_keys, int* b_vals,
                                                               int* hist, int passes, const int* idx, int n,
                                                               int num_rows, int tiles, int* tickets,
                                                               int64_t ticket_count, DeviceError* err) {
  __shared__ SortShared sh;
  __shared__ int h[kDigits];
  cg::grid_group grid = cg::this_grid();
  pdl_launch_dependents();
  const int t = blockIdx.x, j = threadIdx.x, i = t * kSortTile + j;
  for (int64_t k = i; k < ticket_count; k += int64_t(gridDim.x) * kSortTile) tickets[k] = 0;  // for the tile kernel
  const bool valid = i < n;
  int key = 0, val = i;
  if (valid) {
    const int row = idx[i];
    const bool ok = row >= 0 && row < num_rows;
    if (!ok) raise_device_error(err, kErrIndexAdd, i, row, num_rows);
    key = ok ? row : num_rows;
  }
  if (j < kDigits) {
    h[j] = 0;
    for (int p = 1; p < passes; ++p) hist[(int64_t(p) * tiles + t) * kDigits + j] = 0;
  }
  __syncthreads();
  {  // one shared add per run of equal digits in the warp (token types: all of them)
    const int dig = valid ? key & (kDigits - 1) : kDigits;
    const unsigned peers = digit_peers(dig, valid);
    if (valid && (peers & ((1u << (j % 32)) - 1u)) == 0) atomicAdd(&h[dig], __popc(peers));
  }
  __syncthreads();
  if (j < kDigits) hist[int64_t(t) * kDigits + j] = h[j];
  grid.sync();
  int *ik = a_keys, *iv = a_vals, *ok = b_keys, *ov = b_vals;
  for (int p = 0; p < passes; ++p) {
    if (p > 0 && valid) {
      key = ik[i];
      val = iv[i];
    }
    int* next = p + 1 < passes ? hist + int64_t(p + 1) * tiles * kDigits : nullptr;
    sort_pass(sh, key, val, valid, ok, ov, hist + int64_t(p) * tiles * kDigits, next, tiles, 8 * p);
    if (p + 1 == passes) break;
    grid.sync();
    int* tk = ik;
    ik = ok;
    ok = tk;
    int* tv = iv;
    iv = ov;
    ov = tv;
  }
}

// Whether sort_pairs_kernel can sort n pairs here: n <= kSortMaxN and its blocks all
// resident at once (a cooperative launch).
bool small_sort_fits(int64_t n) {
  if (n > kSortMaxN) return false;
  static const int resident = [] {
    int dev = 0, coop = 0, per_sm = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev) != cudaSuccess || !coop ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, sort_pairs_kernel, kSortTile, 0) != cudaSuccess)
      return 0;
    return per_sm * sm_count();
  }();
  return ceil_div(n, kSortTile) <= resident;
}

void sort_pairs_small(int* a_keys, int* a_vals, int* b_keys, int* b_vals, int* hist, const int* idx, int n,
                      int num_rows, int passes, int* tickets, int64_t ticket_count, cudaStream_t st) {
  int tiles = int(ceil_div(n, kSortTile));
  DeviceError* err = device_error();
  void* args[] = {&a_keys, &a_vals,   &b_keys, &b_vals,  &hist,         &passes, &idx,
                  &n,      &num_rows, &tiles,  &tickets, &ticket_count, &err};
  MBERT_CUDA_CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(sort_pairs_kernel), dim3(tiles),
                                               dim3(kSortTile), args, 0, st));
}

// ---- indexAdd: summing the sorted segments ---------------------------------------------
//
// The sorted positions are cut into tiles of kTile; block (tile t, column chunk) sums the
// src rows of the segments (runs of one key) that start in tile t, in sorted order, in
// fp32, and adds each total to out once. A segment that runs into the next tile but
// ends within it ("short") is still summed whole by the tile it starts in, which reads
// on past its end. Only a longer segment is split: its piece in the tile where it
// starts goes to that tile's partial slot 1, its piece in each later tile to that
// tile's slot 0; each of those blocks then takes a ticket for the segment, and the one
// that takes the last ticket sums the pieces in tile order and adds the total to out.
// Long runs of one key (a [MASK] id on an eighth of the batch) are so spread over many
// blocks instead of one serial chain, and no second kernel runs when there are none.
// One add per output element, in a fixed order: the result is the same on every run.
// Tables of at most kFewRows rows (token types) take a path without a sort, below.

constexpr int kTile = 32;         // sorted positions per tile block
constexpr int kFinishRows = 128;  // thread rows (chunk partials in flight per column) in index_add_few_finish
static_assert((kFinishRows & (kFinishRows - 1)) == 0, "the finish adds its rows pairwise");
constexpr int kGroup = 2;         // positions whose rows a tile thread loads at once

// V columns per thread: 8 (16-byte bf16 / two 16-byte fp32 accesses) or 1.
template <int V>
struct Cols {
  float v[V];
  __device__ __forceinline__ void clear() {
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] = 0.f;
  }
};

// CG: read from L2 (the data was written by another block of this grid); fp32 only.
template <typename T, int V, bool CG = false>
__device__ __forceinline__ void load_cols(Cols<V>& r, const T* p) {
  static_assert(!CG || sizeof(T) == 4, "L2 reads are for fp32 partial rows");
  if constexpr (V == 1) {
    if constexpr (CG) r.v[0] = __ldcg(p);
    else r.v[0] = to_f<T>(*p);
  } else if constexpr (sizeof(T) == 2) {
    static_assert(V == 8, "bf16 vectors are 8 wide");
    const Vec<T> a = load_vec(p);
#pragma unroll
    for (int k = 0; k < 8; ++k) r.v[k] = to_f<T>(a.v[k]);
  } else {
    static_assert(V == 8, "fp32 vectors are 2 x 4 wide");
    const float4* q = reinterpret_cast<const float4*>(p);
    const float4 a = CG ? __ldcg(q) : q[0], b = CG ? __ldcg(q + 1) : q[1];
    r.v[0] = a.x, r.v[1] = a.y, r.v[2] = a.z, r.v[3] = a.w;
    r.v[4] = b.x, r.v[5] = b.y, r.v[6] = b.z, r.v[7] = b.w;
  }
}

template <typename T, int V>
__device__ __forceinline__ void store_cols(T* p, const Cols<V>& r) {
  if constexpr (V == 1) {
    *p = from_f<T>(r.v[0]);
  } else if constexpr (sizeof(T) == 2) {
    Vec<T> a;
#pragma unroll
    for (int k = 0; k < 8; ++k) a.v[k] = from_f<T>(r.v[k]);
    store_vec(p, a);
  } else {
    *reinterpret_cast<float4*>(p) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
    *reinterpret_cast<float4*>(p + 4) = make_float4(r.v[4], r.v[5], r.v[6], r.v[7]);
  }
}

// A src row's V columns as loaded (bf16 stays packed until it is added).
template <typename T, int V>
struct Raw {
  static constexpr int W = V == 1 ? 1 : V * int(sizeof(T)) / 16;
  int4 w[W];
  T s;
};

template <typename T, int V>
__device__ __forceinline__ void load_raw(Raw<T, V>& r, const T* p) {
  if constexpr (V == 1) {
    r.s = *p;
  } else {
#pragma unroll
    for (int k = 0; k < Raw<T, V>::W; ++k) r.w[k] = reinterpret_cast<const int4*>(p)[k];
  }
}

template <typename T, int V>
__device__ __forceinline__ void add_raw(Cols<V>& acc, const Raw<T, V>& r) {
  if constexpr (V == 1) {
    acc.v[0] += to_f<T>(r.s);
  } else {
#pragma unroll
    for (int k = 0; k < Raw<T, V>::W; ++k) {
      const T* e = reinterpret_cast<const T*>(&r.w[k]);
#pragma unroll
      for (int m = 0; m < 16 / int(sizeof(T)); ++m) acc.v[k * (16 / int(sizeof(T))) + m] += to_f<T>(e[m]);
    }
  }
}

// out[key] += acc with one rounding: the only add to these elements, so the result
// does not depend on the order blocks run in.
template <typename G, int V>
__device__ __forceinline__ void add_cols(G* p, const Cols<V>& acc) {
  Cols<V> o;
  load_cols<G, V>(o, p);
#pragma unroll
  for (int k = 0; k < V; ++k) o.v[k] += acc.v[k];
  store_cols<G, V>(p, o);
}

// First position in [lo, hi) whose key is >= target (keys sorted ascending), or hi;
// called by a whole warp, which probes 32 positions per step.
__device__ int64_t warp_lower_bound(const int* keys, int64_t lo, int64_t hi, int target) {
  const int lane = threadIdx.x & 31;
  while (lo < hi) {
    const int64_t step = (hi - lo + 31) / 32;
    const int64_t pos = lo + lane * step;
    const unsigned less = __ballot_sync(0xffffffffu, pos < hi && keys[pos] < target);
    if (less == 0) return lo;
    const int64_t last_less = lo + int64_t(__popc(less) - 1) * step;
    lo = last_less + 1;                                      // the answer is past the last probe below target
    hi = last_less + step < hi ? last_less + step : hi;      // and at most the next probe
  }
  return lo;
}

// The end of index_add_tiles for a block that wrote a piece of a long segment: key0 (or
// -1) the segment of its slot 0, key1 (or -1) that of its slot 1. Takes a ticket per
// piece; the block that takes a segment's last ticket sums all its pieces in tile order
// and adds the total to out. Kept out of line: it runs rarely and would otherwise cost
// the main loop registers.
template <typename G, int V>
__device__ __noinline__ void finish_long(G* out, const float* partial, int* tickets, const int* keys, int64_t n,
                                         int64_t row_size, int key0, int key1) {
  __shared__ int64_t seg_t0[2], seg_pieces[2];
  __shared__ int seg_last[2];
  const int64_t t = blockIdx.x, p0 = t * kTile, pend = p0 + kTile < n ? p0 + kTile : n;
  const int64_t c = (int64_t(blockIdx.y) * blockDim.x + threadIdx.x) * V;
  __threadfence();  // this block's partial rows before its tickets
  __syncthreads();
  if (threadIdx.x < 32) {
    for (int s = 0; s < 2; ++s) {
      const int k = s == 0 ? key0 : key1;
      if (k < 0) continue;
      const int64_t t0 = s == 0 ? warp_lower_bound(keys, 0, p0, k) / kTile : t;
      const int64_t e = warp_lower_bound(keys, pend, n, k + 1);
      if (threadIdx.x == 0) {
        const int64_t pieces = (e - 1) / kTile - t0 + 1;
        seg_t0[s] = t0;
        seg_pieces[s] = pieces;
        seg_last[s] = atomicAdd(&tickets[t0 * gridDim.y + blockIdx.y], 1) == pieces - 1;
      }
    }
  }
  __syncthreads();
  for (int s = 0; s < 2; ++s) {
    const int k = s == 0 ? key0 : key1;
    if (k < 0 || !seg_last[s] || c >= row_size) continue;
    __threadfence();  // the other blocks' pieces, announced by their tickets
    const int64_t t0 = seg_t0[s], pieces = seg_pieces[s];
    Cols<V> acc;
    acc.clear();
    for (int64_t j0 = 0; j0 < pieces; j0 += 4) {
      Cols<V> r[4];  // four pieces in flight, added in order
#pragma unroll
      for (int u = 0; u < 4; ++u)
        if (j0 + u < pieces) load_cols<float, V, true>(r[u], partial + (j0 + u == 0 ? 2 * t0 + 1 : 2 * (t0 + j0 + u)) * row_size + c);
#pragma unroll
      for (int u = 0; u < 4; ++u)
        if (j0 + u < pieces) {
#pragma unroll
          for (int m = 0; m < V; ++m) acc.v[m] += r[u].v[m];
        }
    }
    add_cols<G, V>(out + int64_t(k) * row_size + c, acc);
  }
}

// Block (tile t, column chunk). partial: (2 tiles, row_size) fp32, slots 0 and 1 per tile;
// tickets: (tiles, column chunks) zeroed ints.
// Positions go in groups of GS: the group's src rows and the out rows of the segments
// that end in it are loaded together, then added in order. A block that wrote a piece
// of a long segment takes a ticket for it; the block that takes the last one sums all
// the segment's pieces in tile order and adds the total to out.
template <typename T, typename G, int V, int GS>
__global__ void index_add_tiles(G* out, float* partial, int* tickets, const T* src, const int* keys, const int* vals,
                                int64_t n, int64_t row_size, int num_rows) {
  constexpr int KS = 3 * kTile + 2;
  __shared__ int ks[KS];  // keys[p0 - kTile - 1 + j]; -1 before the start, INT_MAX past n
  __shared__ int vs[2 * kTile];
  const int64_t t = blockIdx.x, p0 = t * kTile, base = p0 - kTile - 1;
  pdl_wait();  // the sorted keys and values come from the kernel before
  pdl_launch_dependents();
  for (int j = threadIdx.x; j < KS; j += blockDim.x) {
    const int64_t p = base + j;
    ks[j] = p < 0 ? -1 : p >= n ? INT_MAX : keys[p];
  }
  for (int j = threadIdx.x; j < 2 * kTile; j += blockDim.x) vs[j] = p0 + j < n ? vals[p0 + j] : 0;
  __syncthreads();
  const int64_t c = (int64_t(blockIdx.y) * blockDim.x + threadIdx.x) * V;
  const bool active = c < row_size;
  const auto key = [&](int64_t p) { return ks[p - base]; };
  const int64_t pend = p0 + kTile < n ? p0 + kTile : n;
  int64_t begin = p0, end = pend, first_end = p0;  // [begin, first_end): a long segment's later piece
  const int k0 = key(p0), kl = key(pend - 1);
  if (key(p0 - 1) == k0) {  // the first segment began in an earlier tile
    while (first_end < pend && key(first_end) == k0) ++first_end;
    // A short segment begun in tile t - 1 (it ends by this tile's end): that tile sums it whole.
    if (key(p0 - kTile - 1) != k0 && key(p0 + kTile) != k0) begin = first_end;
  }
  // The segment at the tile's end runs on into tile t + 1 and started in this tile:
  // short (it ends by the end of t + 1) or long.
  const bool crossing = pend < n && key(pend) == kl && key(p0 - 1) != kl;
  const bool long_start = crossing && key(p0 + 2 * kTile) == kl;
  if (crossing && !long_start)
    while (key(end) == kl) ++end;  // short: read on to its end
  if (active) {
    Cols<V> acc;
    acc.clear();
    for (int64_t q = begin; q < end; q += GS) {
      Raw<T, V> r[GS];
      Cols<V> o[GS];
#pragma unroll
      for (int j = 0; j < GS; ++j) {
        const int64_t pos = q + j;
        if (pos < end) {
          load_raw<T, V>(r[j], src + int64_t(vs[pos - p0]) * row_size + c);
          const int k = key(pos);
          if (pos >= first_end && key(pos + 1) != k && k < num_rows)
            load_cols<G, V>(o[j], out + int64_t(k) * row_size + c);
        }
      }
#pragma unroll
      for (int j = 0; j < GS; ++j) {
        const int64_t pos = q + j;
        if (pos >= end) break;
        add_raw<T, V>(acc, r[j]);
        const int k = key(pos);
        const bool seg_last = key(pos + 1) != k;
        if (!seg_last && pos + 1 < end) continue;
        if (k < num_rows) {  // k == num_rows marks bad indices: skipped
          if (pos < first_end) {
            store_cols<float, V>(partial + (2 * t) * row_size + c, acc);
          } else if (!seg_last) {
            store_cols<float, V>(partial + (2 * t + 1) * row_size + c, acc);
          } else {
#pragma unroll
            for (int k2 = 0; k2 < V; ++k2) o[j].v[k2] += acc.v[k2];
            store_cols<G, V>(out + int64_t(k) * row_size + c, o[j]);
          }
        }
        acc.clear();
      }
    }
  }
  // Pieces of long segments written above: slot 0 (the segment began in an earlier
  // tile) and slot 1 (it starts here). The same for every thread of the block.
  const bool piece0 = begin == p0 && first_end > p0 && k0 < num_rows;
  const bool piece1 = long_start && kl < num_rows;
  if (piece0 || piece1) finish_long<G, V>(out, partial, tickets, keys, n, row_size, piece0 ? k0 : -1, piece1 ? kl : -1);
}

// ---- indexAdd into a table of at most kFewRows rows (token types) -----------------------
//
// No sort: block (chunk of positions, column chunk) has kFewGroups thread rows; thread row
// y sums, in position order and in registers, the src rows of its quarter of each staged
// run of positions per output row; the quarters are then added in order through shared
// memory and the block writes one partial row per output row (zeros where none hit it).
// index_add_few_finish sums each column's chunk partials in chunk order and adds the total
// to out once. The order depends only on n, so the result is the same on every run.

constexpr int kFewRows = 4;
constexpr int kFewStage = 128;        // indices staged in shared memory at a time
constexpr int kFewGroups = 4;         // thread rows per block, each a quarter of a stage
constexpr int64_t kFewChunks = 2048;  // at most this many chunks (and partial rows per row)
constexpr int kFewThreads = 96;       // most column threads per thread row in index_add_few_partial
constexpr int kFinishThreads = 8;     // column threads per index_add_few_finish block

// ROWS: accumulators per thread (2 for two-row tables, which leaves room for two blocks
// per SM; 4 otherwise); num_rows <= ROWS.
template <typename T, int V, int ROWS>
__global__ void __launch_bounds__(kFewThreads * kFewGroups, ROWS == 2 ? 2 : 1) index_add_few_partial(float* partial, const T* src, const int* idx, int64_t n, int64_t chunk,
                                      int64_t row_size, int num_rows, DeviceError* err) {
  __shared__ int ks[kFewStage];
  extern __shared__ float hand[];  // [num_rows][blockDim.x * V]: one thread row's sums, passed on
  pdl_launch_dependents();
  pdl_wait();  // the kernel before may still use the scratch this one writes
  const int64_t b = blockIdx.x, p_begin = b * chunk, p_end = p_begin + chunk < n ? p_begin + chunk : n;
  const int64_t c = (int64_t(blockIdx.y) * blockDim.x + threadIdx.x) * V;
  const bool active = c < row_size;
  const int flat = threadIdx.y * blockDim.x + threadIdx.x, nthreads = blockDim.x * blockDim.y;
  constexpr int kPart = kFewStage / kFewGroups;
  Cols<V> acc[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) acc[r].clear();
  constexpr int kRowsInFlight = sizeof(T) == 2 ? 8 : 4;  // 128 bytes per thread either way
  for (int64_t p0 = p_begin; p0 < p_end; p0 += kFewStage) {
    const int cnt = int(p_end - p0 < kFewStage ? p_end - p0 : kFewStage);
    const int q_begin = int(threadIdx.y) * kPart, q_end = min(cnt, q_begin + kPart);
    // The stage's first rows do not depend on the indices: in flight while they are staged.
    Raw<T, V> x[kRowsInFlight];
    if (active) {
#pragma unroll
      for (int j = 0; j < kRowsInFlight; ++j)
        if (q_begin + j < q_end) load_raw<T, V>(x[j], src + (p0 + q_begin + j) * row_size + c);
    }
    __syncthreads();  // the previous stage's indices are used up
    for (int j = flat; j < cnt; j += nthreads) {
      const int row = idx[p0 + j];
      const bool ok = row >= 0 && row < num_rows;
      if (!ok && blockIdx.y == 0) raise_device_error(err, kErrIndexAdd, p0 + j, row, num_rows);
      ks[j] = ok ? row : -1;  // a bad index is skipped
    }
    __syncthreads();
    if (!active) continue;
    for (int q = q_begin; q < q_end; q += kRowsInFlight) {
      if (q != q_begin) {
#pragma unroll
        for (int j = 0; j < kRowsInFlight; ++j)
          if (q + j < q_end) load_raw<T, V>(x[j], src + (p0 + q + j) * row_size + c);
      }
#pragma unroll
      for (int j = 0; j < kRowsInFlight; ++j) {
        if (q + j >= q_end) break;
        const int k = ks[q + j];  // the same for the whole thread row
#pragma unroll
        for (int r = 0; r < ROWS; ++r)
          if (k == r) add_raw<T, V>(acc[r], x[j]);
      }
    }
  }
  // Thread row y - 1 hands its running sums to row y, which adds its own after them.
  const int width = blockDim.x * V;
  for (int y = 1; y < int(blockDim.y); ++y) {
    __syncthreads();
    if (int(threadIdx.y) == y - 1 && active) {
#pragma unroll
      for (int r = 0; r < ROWS; ++r)
        if (r < num_rows) {
#pragma unroll
          for (int k = 0; k < V; ++k) hand[r * width + threadIdx.x * V + k] = acc[r].v[k];
        }
    }
    __syncthreads();
    if (int(threadIdx.y) == y && active) {
#pragma unroll
      for (int r = 0; r < ROWS; ++r)
        if (r < num_rows) {
#pragma unroll
          for (int k = 0; k < V; ++k) acc[r].v[k] = hand[r * width + threadIdx.x * V + k] + acc[r].v[k];
        }
    }
  }
  if (int(threadIdx.y) != int(blockDim.y) - 1 || !active) return;
#pragma unroll
  for (int r = 0; r < ROWS; ++r)
    if (r < num_rows) store_cols<float, V>(partial + (b * num_rows + r) * row_size + c, acc[r]);
}

// Block (output row, column chunk), blockDim (kFinishThreads, kFinishRows): thread row y
// sums chunks y, y + kFinishRows, ... in order, then the row sums are added pairwise.
template <typename G, int V>
__global__ void index_add_few_finish(G* out, const float* partial, int64_t chunks, int64_t row_size, int num_rows) {
  __shared__ float sm[kFinishRows][kFinishThreads * V];
  pdl_wait();  // the partial rows are complete
  pdl_launch_dependents();
  const int r = blockIdx.x;
  const int64_t c = (int64_t(blockIdx.y) * blockDim.x + threadIdx.x) * V;
  const bool active = c < row_size;
  Cols<V> acc;
  acc.clear();
  if (active) {
    for (int64_t j0 = threadIdx.y; j0 < chunks; j0 += 4 * kFinishRows) {
      Cols<V> x[4];  // four chunks in flight, added in order
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int64_t j = j0 + u * kFinishRows;
        if (j < chunks) load_cols<float, V>(x[u], partial + (j * num_rows + r) * row_size + c);
      }
#pragma unroll
      for (int u = 0; u < 4; ++u)
        if (j0 + u * kFinishRows < chunks) {
#pragma unroll
          for (int k = 0; k < V; ++k) acc.v[k] += x[u].v[k];
        }
    }
  }
#pragma unroll
  for (int k = 0; k < V; ++k) sm[threadIdx.y][threadIdx.x * V + k] = acc.v[k];
  // Pairwise: row y adds row y + h for h = kFinishRows / 2, ..., 2, 1 (a fixed order).
#pragma unroll
  for (int h = kFinishRows / 2; h > 0; h /= 2) {
    __syncthreads();
    if (int(threadIdx.y) < h) {
#pragma unroll
      for (int k = 0; k < V; ++k) acc.v[k] += sm[threadIdx.y + h][threadIdx.x * V + k];
#pragma unroll
      for (int k = 0; k < V; ++k) sm[threadIdx.y][threadIdx.x * V + k] = acc.v[k];
    }
  }
  if (threadIdx.y != 0 || !active) return;
  add_cols<G, V>(out + int64_t(r) * row_size + c, acc);
}

// Whether `kernel` may be launched as a programmatic dependent: the device is sm_90+ and
// the loaded image was compiled for it (a compute_80 PTX fallback JIT-compiled on a
// newer GPU has no griddepcontrol.wait, so it must not start early).
template <typename Kernel>
bool pdl_ready(Kernel kernel) {
  int dev = 0, major = 0;
  cudaFuncAttributes fa{};
  return cudaGetDevice(&dev) == cudaSuccess &&
         cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9 &&
         cudaFuncGetAttributes(&fa, kernel) == cudaSuccess && fa.ptxVersion >= 90;
}

// Launches kernel(args...) on st; with pdl, as a programmatic dependent of the launch
// before it (its blocks may be placed early and wait in pdl_wait).
template <typename... Params, typename... Args>
void launch_dependent(void (*kernel)(Params...), bool pdl, dim3 grid, dim3 block, std::size_t smem, cudaStream_t st,
                      Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = st;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl ? 1 : 0;
  MBERT_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, args...));
}

// Threads per block over the columns of a row: at most 128 of 8 columns or 256 of one.
template <int V>
int column_threads(int64_t row_size) {
  return int(std::min<int64_t>(V == 8 ? 128 : 256, ceil_div(ceil_div(row_size, V), 32) * 32));
}

template <typename T, typename G, int V>
void index_add_launch(G* out, float* partial, int* tickets, const T* src, const int* keys, const int* vals,
                      int64_t n, int64_t row_size, int num_rows, cudaStream_t st) {
  const int64_t tiles = ceil_div(n, kTile);
  const int threads = column_threads<V>(row_size);
  const unsigned chunks = unsigned(ceil_div(ceil_div(row_size, V), threads));
  static const bool pdl = pdl_ready(index_add_tiles<T, G, V, kGroup>);
  launch_dependent(index_add_tiles<T, G, V, kGroup>, pdl, dim3(unsigned(tiles), chunks, 1u), dim3(unsigned(threads)),
                   0, st, out, partial, tickets, src, keys, vals, n, row_size, num_rows);
}

// Positions per chunk of the few-rows path: as many chunks as fill the GPU once (every
// block resident, so no tail wave), at least 64 positions each and at most kFewChunks
// chunks. The order of the sums depends on n and the GPU's SM count only.
template <typename T, int V, int ROWS>
int64_t few_chunk(int64_t n, int64_t row_size, int num_rows) {
  const int threads = std::min(kFewThreads, column_threads<V>(row_size));
  const int64_t col_chunks = ceil_div(ceil_div(row_size, V), threads);
  static std::mutex mu;
  static std::map<std::pair<int, int>, int> occupancy;  // (threads, rows) -> blocks per SM
  int per_sm = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = occupancy.find({threads, num_rows});
    if (it == occupancy.end()) {
      const std::size_t hand = std::size_t(num_rows) * threads * V * sizeof(float);
      MBERT_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
          &per_sm, index_add_few_partial<T, V, ROWS>, threads * kFewGroups, hand));
      occupancy[{threads, num_rows}] = per_sm;
    } else {
      per_sm = it->second;
    }
  }
  const int64_t wave = std::max<int64_t>(1, int64_t(sm_count()) * std::max(1, per_sm) / col_chunks);
  return std::max<int64_t>({64, ceil_div(n, wave), ceil_div(n, kFewChunks)});
}

// Byte counts of scratch blocks, rounded up to 256.
inline std::size_t align256(std::size_t bytes) { return (bytes + 255) & ~std::size_t(255); }

// The partial rows (chunks x num_rows x row_size fp32) come from the caching allocator
// and are freed after the launches (stream order keeps them valid).
template <typename T, typename G, int V, int ROWS>
void index_add_few(G* out, const T* src, const int* idx, int64_t n, int64_t row_size, int num_rows, cudaStream_t st) {
  const int64_t chunk = few_chunk<T, V, ROWS>(n, row_size, num_rows);
  const int64_t chunks = ceil_div(n, chunk);
  float* partial =
      static_cast<float*>(alloc(align256(std::size_t(chunks) * std::size_t(num_rows) * std::size_t(row_size) * 4)));
  try {
    const int threads = std::min(kFewThreads, column_threads<V>(row_size));
    const unsigned col_chunks = unsigned(ceil_div(ceil_div(row_size, V), threads));
    const std::size_t hand = std::size_t(num_rows) * threads * V * sizeof(float);
    // Both kernels are programmatic dependents (sm_90): the partial sums of the kernel
    // before them, the finish of the partial sums. Their blocks are placed while the
    // kernel before drains and wait in pdl_wait.
    static const bool pdl_partial = pdl_ready(index_add_few_partial<T, V, ROWS>);
    launch_dependent(index_add_few_partial<T, V, ROWS>, pdl_partial, dim3(unsigned(chunks), col_chunks, 1u),
                     dim3(threads, kFewGroups, 1), hand, st, partial, src, idx, n, chunk, row_size, num_rows,
                     device_error());
    static const bool pdl = pdl_ready(index_add_few_finish<G, V>);
    launch_dependent(index_add_few_finish<G, V>, pdl,
                     dim3(unsigned(num_rows), unsigned(ceil_div(ceil_div(row_size, V), kFinishThreads)), 1u),
                     dim3(kFinishThreads, kFinishRows, 1u), 0, st, out, static_cast<const float*>(partial), chunks,
                     row_size, num_rows);
  } catch (...) {
    free(partial);
    throw;
  }
  free(partial);
}

template <typename T, typename G>
void index_add(G* out, const T* src, const int* idx, int64_t n, int64_t row_size, int64_t num_rows) {
  if (n == 0 || row_size == 0) return;
  cudaStream_t st = stream();
  const bool vec = row_size % 8 == 0 && aligned16(out) && aligned16(src);
  if (num_rows <= kFewRows) {  // token types: per-chunk row sums, no sort
    if (num_rows == 0) {  // every index is out of range
      index_add_prepare<<<grid_for(n, 256), 256, 0, st>>>(nullptr, nullptr, idx, n, num_rows, device_error());
      MBERT_LAUNCH_CHECK();
      return;
    }
    if (vec && num_rows <= 2) index_add_few<T, G, 8, 2>(out, src, idx, n, row_size, int(num_rows), st);
    else if (vec) index_add_few<T, G, 8, 4>(out, src, idx, n, row_size, int(num_rows), st);
    else if (num_rows <= 2) index_add_few<T, G, 1, 2>(out, src, idx, n, row_size, int(num_rows), st);
    else index_add_few<T, G, 1, 4>(out, src, idx, n, row_size, int(num_rows), st);
    return;
  }
  int end_bit = 1;
  while ((int64_t(1) << end_bit) <= num_rows) ++end_bit;  // keys are in [0, num_rows]
  const bool small = small_sort_fits(n);
  const int passes = (end_bit + 7) / 8;
  const int64_t tiles = ceil_div(n, kTile);
  const int64_t ticket_count = tiles * ceil_div(ceil_div(row_size, vec ? 8 : 1), vec ? column_threads<8>(row_size)
                                                                                      : column_threads<1>(row_size));
  std::size_t temp_bytes = 0;
  if (small)
    temp_bytes = std::size_t(passes) * std::size_t(ceil_div(n, kSortTile)) * kDigits * sizeof(int);
  else
    MBERT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, static_cast<const int*>(nullptr),
                                                     static_cast<int*>(nullptr), static_cast<const int*>(nullptr),
                                                     static_cast<int*>(nullptr), n, 0, end_bit, st));
  // Scratch from the caching allocator; freed at the end (stream order keeps it valid).
  const std::size_t arrays = align256(4 * std::size_t(n) * sizeof(int));
  const std::size_t partial_bytes = align256(2 * std::size_t(tiles) * std::size_t(row_size) * sizeof(float));
  const std::size_t ticket_bytes = align256(std::size_t(ticket_count) * sizeof(int));
  char* scratch = static_cast<char*>(alloc(arrays + partial_bytes + ticket_bytes + temp_bytes + 256));
  int* keys_in = reinterpret_cast<int*>(scratch);
  int* vals_in = keys_in + n;
  int* keys_out = vals_in + n;
  int* vals_out = keys_out + n;
  float* partial = reinterpret_cast<float*>(scratch + arrays);
  int* tickets = reinterpret_cast<int*>(scratch + arrays + partial_bytes);
  void* temp = scratch + arrays + partial_bytes + ticket_bytes;
  try {
    const int *keys = keys_out, *vals = vals_out;
    if (small) {
      sort_pairs_small(keys_in, vals_in, keys_out, vals_out, static_cast<int*>(temp), idx, int(n), int(num_rows),
                       passes, tickets, ticket_count, st);
      if (passes % 2 == 0) keys = keys_in, vals = vals_in;
    } else {
      MBERT_CUDA_CHECK(cudaMemsetAsync(tickets, 0, std::size_t(ticket_count) * sizeof(int), st));
      index_add_prepare<<<grid_for(n, 256), 256, 0, st>>>(keys_in, vals_in, idx, n, num_rows, device_error());
      MBERT_LAUNCH_CHECK();
      MBERT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, vals_in, vals_out, n, 0,
                                                       end_bit, st));
    }
    if (vec)
      index_add_launch<T, G, 8>(out, partial, tickets, src, keys, vals, n, row_size, int(num_rows), st);
    else
      index_add_launch<T, G, 1>(out, partial, tickets, src, keys, vals, n, row_size, int(num_rows), st);
  } catch (...) {
    free(scratch);
    throw;
  }
  free(scratch);
}

// ---- wrappers --------------------------------------------------------------------------

DType storage_dtype(const Args& a, int i) {
  DType d = a.dtype(i);
  if (d == DType::F64) throw_f64(a.fn());
  return d;
}

template <typename Kernel2, typename Kernel4>
void launch_rows(DType dt, int64_t n, int64_t row_size, const void* p0, const void* p1, Kernel2 k2, Kernel4 k4) {
  const std::size_t es = dtype_size(dt);
  const int N = int(16 / es);
  const bool vec = row_size % N == 0 && aligned16(p0) && aligned16(p1);
  const int64_t work = vec ? n * row_size / N : n * row_size;
  const unsigned grid = grid_for(work, 256);
  if (es == 2) k2(grid, vec);
  else k4(grid, vec);
  MBERT_LAUNCH_CHECK();
}

Napi::Value index_select_js(const Napi::CallbackInfo& info) {
  Args a(info, "indexSelect", 7);
  const DType dt = storage_dtype(a, 0);
  const int64_t n = a.size(4, "n"), rs = a.size(5, "rowSize"), nr = a.size(6, "numRows");
  void* out = dbuf(a, 1, dt, n * rs, "out");
  const void* table = dbuf(a, 2, dt, n > 0 ? nr * rs : 0, "table");
  const int* idx = dbuf<const int>(a, 3, DType::I32, n, "idx");
  if (n * rs == 0) return undefined(a);
  cudaStream_t st = stream();
  DeviceError* err = device_error();
  launch_rows(
      dt, n, rs, out, table,
      [&](unsigned g, bool vec) {
        auto* o = static_cast<uint16_t*>(out);
        auto* t = static_cast<const uint16_t*>(table);
        if (vec) index_select_kernel<uint16_t, true><<<g, 256, 0, st>>>(o, t, idx, n, rs, nr, err);
        else index_select_kernel<uint16_t, false><<<g, 256, 0, st>>>(o, t, idx, n, rs, nr, err);
      },
      [&](unsigned g, bool vec) {
        auto* o = static_cast<uint32_t*>(out);
        auto* t = static_cast<const uint32_t*>(table);
        if (vec) index_select_kernel<uint32_t, true><<<g, 256, 0, st>>>(o, t, idx, n, rs, nr, err);
        else index_select_kernel<uint32_t, false><<<g, 256, 0, st>>>(o, t, idx, n, rs, nr, err);
      });
  return undefined(a);
}

Napi::Value index_copy_js(const Napi::CallbackInfo& info) {
  Args a(info, "indexCopy", 7);
  const DType dt = storage_dtype(a, 0);
  const int64_t n = a.size(4, "n"), rs = a.size(5, "rowSize"), nr = a.size(6, "numRows");
  void* out = dbuf(a, 1, dt, n > 0 ? nr * rs : 0, "out");
  const void* src = dbuf(a, 2, dt, n * rs, "src");
  const int* idx = dbuf<const int>(a, 3, DType::I32, n, "idx");
  if (n * rs == 0) return undefined(a);
  cudaStream_t st = stream();
  DeviceError* err = device_error();
  launch_rows(
      dt, n, rs, out, src,
      [&](unsigned g, bool vec) {
        auto* o = static_cast<uint16_t*>(out);
        auto* s = static_cast<const uint16_t*>(src);
        if (vec) index_copy_kernel<uint16_t, true><<<g, 256, 0, st>>>(o, s, idx, n, rs, nr, err);
        else index_copy_kernel<uint16_t, false><<<g, 256, 0, st>>>(o, s, idx, n, rs, nr, err);
      },
      [&](unsigned g, bool vec) {
        auto* o = static_cast<uint32_t*>(out);
        auto* s = static_cast<const uint32_t*>(src);
        if (vec) index_copy_kernel<uint32_t, true><<<g, 256, 0, st>>>(o, s, idx, n, rs, nr, err);
        else index_copy_kernel<uint32_t, false><<<g, 256, 0, st>>>(o, s, idx, n, rs, nr, err);
      });
  return undefined(a);
}

// indexAdd(dtype, gradDtype, out, src, idx, n, rowSize, numRows)
Napi::Value index_add_js(const Napi::CallbackInfo& info) {
  Args a(info, "indexAdd", 8);
  const DType dt = float_dtype(a, 0);
  const DType gt = float_dtype(a, 1);
  const int64_t n = a.size(5, "n"), rs = a.size(6, "rowSize"), nr = a.size(7, "numRows");
  MBERT_CHECK(n <= INT32_MAX && nr < INT32_MAX, "cuda.indexAdd: n and numRows must fit in int32");
  MBERT_CHECK(ceil_div(rs, 256) <= 65535, "cuda.indexAdd: rowSize too large");
  void* out = dbuf(a, 2, gt, n > 0 ? nr * rs : 0, "out");
  const void* src = dbuf(a, 3, dt, n * rs, "src");
  const int* idx = dbuf<const int>(a, 4, DType::I32, n, "idx");
  if (dt == DType::BF16 && gt == DType::F32)
    index_add<bf16, float>(static_cast<float*>(out), static_cast<const bf16*>(src), idx, n, rs, nr);
  else if (dt == DType::BF16 && gt == DType::BF16)
    index_add<bf16, bf16>(static_cast<bf16*>(out), static_cast<const bf16*>(src), idx, n, rs, nr);
  else if (dt == DType::F32 && gt == DType::F32)
    index_add<float, float>(static_cast<float*>(out), static_cast<const float*>(src), idx, n, rs, nr);
  else
    throw Error(str("cuda.indexAdd: ", dtype_name(dt), " src with ", dtype_name(gt), " out is not supported"));
  return undefined(a);
}

}  // namespace

MBERT_EXPORT(cuda, indexSelect, index_select_js);
MBERT_EXPORT(cuda, indexAdd, index_add_js);
MBERT_EXPORT(cuda, indexCopy, index_copy_js);

}  // namespace cuda
}  // namespace mbert
