// runtime.cu — device init, the stream, the caching allocator, copies, events,
// the device error flag and the GEMM workspace (see runtime.h).
//
// Allocator: every request is rounded up to a size class (multiples of 512 B
// below 1 MiB; above, 8 classes per power of two, so at most 12.5% is lost)
// and served from that class's free list, else from cudaMalloc. free() puts
// the block back on its list; only empty_cache() and the out-of-memory retry
// call cudaFree. All work runs on one stream, so a block freed by the host can
// be handed out again at once: every later use is ordered after earlier ones.
#include "cuda/runtime.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/error.h"

namespace mbert {
namespace cuda {

namespace {

constexpr std::size_t kWorkspaceBytes = 32u << 20;
constexpr std::size_t kStagingSlotBytes = 2u << 20;  // one pinned slot
constexpr int kStagingSlots = 16;                    // 32 MiB pinned ring

struct Runtime {
  std::mutex mu;
  bool ready = false;
  int device = 0;
  int sms = 0;
  cudaStream_t stream = nullptr;
  void* workspace = nullptr;
  DeviceError* error = nullptr;
  // allocator
  std::unordered_map<std::size_t, std::vector<void*>> free_lists;  // class size -> cached blocks
  struct Block {
    std::size_t cls;    // size class (what the block really holds)
    std::size_t bytes;  // what was asked for (range checks)
  };
  std::map<uintptr_t, Block> live;  // ordered: range checks find the block below an address
  std::size_t allocated = 0, cached = 0, peak = 0;
  // pinned staging ring
  char* staging = nullptr;
  cudaEvent_t staging_done[kStagingSlots] = {};
  bool staging_used[kStagingSlots] = {};
  int staging_next = 0;
  // events
  std::unordered_map<int, cudaEvent_t> events;
  std::vector<cudaEvent_t> spare_events;
  int next_event = 1;
};

Runtime& rt() {
  static Runtime* r = new Runtime();  // never destroyed: the driver may be gone at exit
  return *r;
}

std::string error_text(cudaError_t e) {
  return str(static_cast<int>(e), " (", cudaGetErrorString(e), ")");
}

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

int wanted_device() {
  const char* env = std::getenv("MBERT_CUDA_DEVICE");
  return env && *env ? std::atoi(env) : 0;
}

std::size_t size_class(std::size_t bytes) {
  if (bytes <= (1u << 20)) return (bytes + 511) & ~std::size_t(511);
  std::size_t p = std::size_t(1) << (63 - __builtin_clzll(bytes - 1));  // largest power of two < bytes
  std::size_t step = p / 8;
  return (bytes + step - 1) / step * step;
}

// Caller holds r.mu.
void release_cached(Runtime& r) {
  for (auto& kv : r.free_lists) {
    for (void* p : kv.second) cudaFree(p);
    r.cached -= kv.first * kv.second.size();
    kv.second.clear();
  }
  r.free_lists.clear();
}

void init_locked(Runtime& r) {
  if (r.ready) return;
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw Error(str("cuda: no CUDA device: cudaGetDeviceCount returned ", error_text(e)), "NO_DEVICE");
  }
  if (count == 0) throw Error("cuda: no CUDA device: cudaGetDeviceCount found 0 devices", "NO_DEVICE");
  r.device = wanted_device();
  MBERT_CHECK(r.device >= 0 && r.device < count, "cuda: MBERT_CUDA_DEVICE=", r.device, " but only ", count,
              " device(s) are visible");
  MBERT_CUDA_CHECK(cudaSetDevice(r.device));
  cudaDeviceProp prop;
  MBERT_CUDA_CHECK(cudaGetDeviceProperties(&prop, r.device));
  MBERT_CHECK(prop.major >= 8, "cuda: ", prop.name, " has compute capability ", prop.major, ".", prop.minor,
              "; the addon needs 8.0 or newer (bfloat16 tensor cores)");
  r.sms = prop.multiProcessorCount;
  MBERT_CUDA_CHECK(cudaStreamCreateWithFlags(&r.stream, cudaStreamNonBlocking));
  MBERT_CUDA_CHECK(cudaMalloc(&r.workspace, kWorkspaceBytes));
  MBERT_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&r.error), sizeof(DeviceError)));
  MBERT_CUDA_CHECK(cudaMemsetAsync(r.error, 0, sizeof(DeviceError), r.stream));
  MBERT_CUDA_CHECK(cudaStreamSynchronize(r.stream));
  r.ready = true;
}

Runtime& ready() {
  Runtime& r = rt();
  if (!r.ready) {
    std::lock_guard<std::mutex> lock(r.mu);
    init_locked(r);
  }
  return r;
}

}  // namespace

// ---- status --------------------------------------------------------------------

int device_count() noexcept {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

StatusInfo query_status() noexcept {
  StatusInfo s;
  try {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      cudaGetLastError();
      s.reason = str("no CUDA device: cudaGetDeviceCount returned ", error_text(e));
      return s;
    }
    if (count == 0) {
      s.reason = "no CUDA device: cudaGetDeviceCount found 0 devices";
      return s;
    }
    int dev = wanted_device();
    if (dev < 0 || dev >= count) {
      s.reason = str("MBERT_CUDA_DEVICE=", dev, " but only ", count, " device(s) are visible");
      return s;
    }
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, dev);
    if (e != cudaSuccess) {
      cudaGetLastError();
      s.reason = str("cudaGetDeviceProperties returned ", error_text(e));
      return s;
    }
    s.device = str(prop.name, " (sm_", prop.major, prop.minor, ", ", gib(double(prop.totalGlobalMem)), ", ",
                   prop.multiProcessorCount, " SMs)");
    if (prop.major < 8) {
      s.reason = str(prop.name, " has compute capability ", prop.major, ".", prop.minor, "; 8.0 or newer is needed");
      return s;
    }
    s.available = true;
  } catch (const std::exception& ex) {
    s.available = false;
    s.reason = ex.what();
  }
  return s;
}

// ---- device, stream --------------------------------------------------------------

void ensure_init() { ready(); }
cudaStream_t stream() { return ready().stream; }
int sm_count() { return ready().sms; }
int device_index() { return ready().device; }
void* workspace() { return ready().workspace; }
std::size_t workspace_bytes() { return kWorkspaceBytes; }

// ---- allocator ----------------------------------------------------------------------

void* alloc(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  Runtime& r = ready();
  std::lock_guard<std::mutex> lock(r.mu);
  const std::size_t cls = size_class(bytes);
  void* p = nullptr;
  auto it = r.free_lists.find(cls);
  if (it != r.free_lists.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    r.cached -= cls;
  } else {
    cudaError_t e = cudaMalloc(&p, cls);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free allocation error
      // Cached blocks may belong to queued work: wait for it, then give them back.
      cudaStreamSynchronize(r.stream);
      release_cached(r);
      e = cudaMalloc(&p, cls);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      std::size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      cudaGetLastError();
      throw OutOfMemory(str("OutOfMemory: cuda.alloc could not allocate ", bytes, " bytes (", gib(double(bytes)),
                            "); the device has ", free_b, " bytes (", gib(double(free_b)), ") free of ",
                            gib(double(total_b)), ", ", r.allocated, " bytes held by live tensors. Use a smaller ",
                            "microbatch (more gradient-accumulation steps) or free tensors you no longer need."));
    }
  }
  r.live.emplace(reinterpret_cast<uintptr_t>(p), Runtime::Block{cls, bytes});
  r.allocated += cls;
  if (r.allocated > r.peak) r.peak = r.allocated;
  return p;
}

void free(void* ptr) {
  if (ptr == nullptr) return;
  Runtime& r = ready();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.live.find(reinterpret_cast<uintptr_t>(ptr));
  MBERT_CHECK(it != r.live.end(), "cuda.free: ", ptr, " is not a live allocation of this backend (double free?)");
  const std::size_t cls = it->second.cls;
  r.live.erase(it);
  r.allocated -= cls;
  r.cached += cls;
  r.free_lists[cls].push_back(ptr);
}

void check_range(const void* p, std::size_t bytes, const char* fn, int arg, const char* what) {
  if (bytes == 0) return;
  MBERT_CHECK(p != nullptr, fn, ": argument ", arg, " (", what, ") must not be null");
  Runtime& r = rt();
  std::lock_guard<std::mutex> lock(r.mu);
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = r.live.upper_bound(a);
  if (it != r.live.begin()) {
    --it;
    if (a + bytes <= it->first + it->second.bytes) return;
  }
  throw Error(str(fn, ": argument ", arg, " (", what, "): ", bytes, " bytes at ", p,
                  " is outside any live cuda allocation"));
}

MemoryStats memory_stats() {
  Runtime& r = rt();
  std::lock_guard<std::mutex> lock(r.mu);
  MemoryStats s;
  s.allocated = r.allocated;
  s.reserved = r.allocated + r.cached;
  s.peak = r.peak;
  s.count = r.live.size();
  return s;
}

void reset_peak() {
  Runtime& r = rt();
  std::lock_guard<std::mutex> lock(r.mu);
  r.peak = r.allocated;
}

void empty_cache() {
  Runtime& r = rt();
  if (!r.ready) return;
  std::lock_guard<std::mutex> lock(r.mu);
  MBERT_CUDA_CHECK(cudaStreamSynchronize(r.stream));
  release_cached(r);
}

// ---- copies ---------------------------------------------------------------------------

void upload(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  Runtime& r = ready();
  std::lock_guard<std::mutex> lock(r.mu);
  if (r.staging == nullptr) {
    MBERT_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&r.staging), kStagingSlotBytes * kStagingSlots));
    for (int i = 0; i < kStagingSlots; ++i)
      MBERT_CUDA_CHECK(cudaEventCreateWithFlags(&r.staging_done[i], cudaEventDisableTiming));
  }
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  while (bytes > 0) {
    const std::size_t n = bytes < kStagingSlotBytes ? bytes : kStagingSlotBytes;
    const int slot = r.staging_next;
    r.staging_next = (slot + 1) % kStagingSlots;
    // Waits only when the ring wrapped before this slot's last copy ran.
    if (r.staging_used[slot]) MBERT_CUDA_CHECK(cudaEventSynchronize(r.staging_done[slot]));
    char* pinned = r.staging + std::size_t(slot) * kStagingSlotBytes;
    std::memcpy(pinned, s, n);
    MBERT_CUDA_CHECK(cudaMemcpyAsync(d, pinned, n, cudaMemcpyHostToDevice, r.stream));
    MBERT_CUDA_CHECK(cudaEventRecord(r.staging_done[slot], r.stream));
    r.staging_used[slot] = true;
    s += n;
    d += n;
    bytes -= n;
  }
}

void download(void* dst, const void* src, std::size_t bytes) {
  Runtime& r = ready();
  if (bytes > 0) MBERT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, r.stream));
  MBERT_CUDA_CHECK(cudaStreamSynchronize(r.stream));
}

void copy(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0 || dst == src) return;
  Runtime& r = ready();
  MBERT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, r.stream));
}

void synchronize() { MBERT_CUDA_CHECK(cudaStreamSynchronize(ready().stream)); }

// ---- events -------------------------------------------------------------------------------

int event_record() {
  Runtime& r = ready();
  std::lock_guard<std::mutex> lock(r.mu);
  cudaEvent_t ev;
  if (!r.spare_events.empty()) {
    ev = r.spare_events.back();
    r.spare_events.pop_back();
  } else {
    MBERT_CUDA_CHECK(cudaEventCreate(&ev));
  }
  MBERT_CUDA_CHECK(cudaEventRecord(ev, r.stream));
  const int handle = r.next_event++;
  r.events.emplace(handle, ev);
  return handle;
}

double event_elapsed(int start, int end) {
  Runtime& r = ready();
  cudaEvent_t a, b;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    auto ia = r.events.find(start), ib = r.events.find(end);
    MBERT_CHECK(ia != r.events.end(), "cuda.eventElapsed: unknown event handle ", start);
    MBERT_CHECK(ib != r.events.end(), "cuda.eventElapsed: unknown event handle ", end);
    a = ia->second;
    b = ib->second;
  }
  MBERT_CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  MBERT_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  return ms;
}

void event_destroy(int handle) {
  Runtime& r = ready();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.events.find(handle);
  MBERT_CHECK(it != r.events.end(), "cuda.eventDestroy: unknown event handle ", handle);
  r.spare_events.push_back(it->second);  // reused by the next eventRecord
  r.events.erase(it);
}

// ---- device error flag ------------------------------------------------------------------------

DeviceError* device_error() { return ready().error; }

std::optional<std::string> take_device_error() {
  Runtime& r = ready();
  DeviceError e;
  MBERT_CUDA_CHECK(cudaMemcpyAsync(&e, r.error, sizeof e, cudaMemcpyDeviceToHost, r.stream));
  MBERT_CUDA_CHECK(cudaStreamSynchronize(r.stream));
  if (e.code == kErrNone) return std::nullopt;
  MBERT_CUDA_CHECK(cudaMemsetAsync(r.error, 0, sizeof(DeviceError), r.stream));
  const char* what = e.code == kErrIndexSelect  ? "indexSelect: index"
                     : e.code == kErrIndexAdd   ? "indexAdd: index"
                     : e.code == kErrIndexCopy  ? "indexCopy: index"
                     : e.code == kErrCrossEntropyLabel ? "crossEntropy: label"
                                                       : "unknown kernel: value";
  return str(what, " ", e.value, " at position ", e.position, " is outside [0, ", e.limit, ")");
}

void throw_f64(const char* kernel) {
  throw Error(str("cuda.", kernel, ": float64 is not supported on cuda; use float32 or bfloat16"), "UNSUPPORTED_DTYPE");
}

}  // namespace cuda
}  // namespace mbert
