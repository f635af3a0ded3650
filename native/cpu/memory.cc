// memory.cc — CPU buffers: alloc/free (256-byte aligned, tracked in a map so a
// bad free or an out-of-range copy throws instead of crashing), memory stats,
// upload/download/copy with byte-range checks, synchronize (no-op).
// Accounting: `allocated` counts requested bytes; `reserved` counts the rounded
// blocks actually held. There is no cache: emptyCache has nothing to return.
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "cpu/cpu.h"

namespace mbert {
namespace cpu {
namespace {

constexpr std::size_t kAlign = 256;

struct Block {
  std::size_t bytes;     // requested
  std::size_t reserved;  // rounded up (>= kAlign, so 0-byte allocations get a unique address)
};

struct Heap {
  std::mutex mutex;
  std::map<uintptr_t, Block> blocks;
  std::size_t allocated = 0, reserved = 0, peak = 0;
};

Heap& heap() {
  static Heap* h = new Heap();  // never destroyed: buffers may outlive static destruction
  return *h;
}

std::string hex(const void* p) { return str("0x", std::hex, reinterpret_cast<uintptr_t>(p)); }

void* alloc_bytes(double requested) {
  if (!(requested >= 0) || requested > 1e15) {
    throw Error(str("alloc: bytes must be a non-negative integer, got ", requested));
  }
  std::size_t bytes = static_cast<std::size_t>(requested);
  std::size_t rounded = bytes == 0 ? kAlign : (bytes + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p) throw OutOfMemory(str("alloc: out of host memory allocating ", bytes, " bytes"));
  Heap& h = heap();
  std::lock_guard<std::mutex> lock(h.mutex);
  h.blocks[reinterpret_cast<uintptr_t>(p)] = Block{bytes, rounded};
  h.allocated += bytes;
  h.reserved += rounded;
  if (h.allocated > h.peak) h.peak = h.allocated;
  return p;
}

void free_ptr(void* p) {
  Heap& h = heap();
  {
    std::lock_guard<std::mutex> lock(h.mutex);
    auto it = h.blocks.find(reinterpret_cast<uintptr_t>(p));
    if (it == h.blocks.end()) {
      throw Error(str("free: ", hex(p), " is not a live allocation of the cpu backend (double free?)"));
    }
    h.allocated -= it->second.bytes;
    h.reserved -= it->second.reserved;
    h.blocks.erase(it);
  }
  std::free(p);
}

}  // namespace

void check_range(const void* p, std::size_t bytes, const char* fn, int arg, const char* what) {
  if (bytes == 0) return;
  if (!p) throw Error(str(fn, ": argument ", arg, " (", what, ") must not be null"));
  uintptr_t u = reinterpret_cast<uintptr_t>(p);
  Heap& h = heap();
  std::lock_guard<std::mutex> lock(h.mutex);
  auto it = h.blocks.upper_bound(u);
  if (it != h.blocks.begin()) {
    --it;
    uintptr_t base = it->first;
    if (u >= base && u - base <= it->second.bytes && bytes <= it->second.bytes - (u - base)) return;
    if (u >= base && u - base < it->second.reserved) {
      throw Error(str(fn, ": argument ", arg, " (", what, "): ", bytes, " bytes at offset ", u - base,
                      " run past the end of a ", it->second.bytes, "-byte allocation"));
    }
  }
  throw Error(str(fn, ": argument ", arg, " (", what, "): ", hex(p), " is not inside a live cpu allocation"));
}

namespace {

Napi::Value alloc_js(const Napi::CallbackInfo& info) {
  Args a(info, "alloc", 1);
  double bytes = a.f64(0);
  if (bytes != static_cast<double>(static_cast<int64_t>(bytes))) {
    throw Error(str("alloc: bytes must be a non-negative integer, got ", bytes));
  }
  return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(alloc_bytes(bytes))));
}

Napi::Value free_js(const Napi::CallbackInfo& info) {
  Args a(info, "free", 1);
  void* p = a.ptr(0);
  if (p) free_ptr(p);  // free(0) is a no-op, like C
  return info.Env().Undefined();
}

Napi::Value memory_stats_js(const Napi::CallbackInfo& info) {
  Args a(info, "memoryStats", 0);
  Heap& h = heap();
  std::lock_guard<std::mutex> lock(h.mutex);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("allocated", static_cast<double>(h.allocated));
  o.Set("reserved", static_cast<double>(h.reserved));
  o.Set("peak", static_cast<double>(h.peak));
  o.Set("count", static_cast<double>(h.blocks.size()));
  return o;
}

Napi::Value reset_peak_js(const Napi::CallbackInfo& info) {
  Args a(info, "resetPeak", 0);
  Heap& h = heap();
  std::lock_guard<std::mutex> lock(h.mutex);
  h.peak = h.allocated;
  return info.Env().Undefined();
}

Napi::Value empty_cache_js(const Napi::CallbackInfo& info) {
  Args a(info, "emptyCache", 0);
  return info.Env().Undefined();
}

Napi::Value synchronize_js(const Napi::CallbackInfo& info) {
  Args a(info, "synchronize", 0);
  return info.Env().Undefined();
}

// upload(dst, dstOffsetBytes, src: ArrayBufferView)
Napi::Value upload_js(const Napi::CallbackInfo& info) {
  Args a(info, "upload", 3);
  int64_t off = a.size(1, "dstOffsetBytes");
  View src = a.view(2);
  auto* dst = static_cast<uint8_t*>(a.ptr(0));
  if (src.bytes == 0) return info.Env().Undefined();
  MBERT_CHECK(dst, "upload: argument 0 (dst) must not be null");
  check_range(dst + off, src.bytes, "upload", 0, "dst");
  std::memcpy(dst + off, src.data, src.bytes);
  return info.Env().Undefined();
}

// download(src, srcOffsetBytes, dst: ArrayBufferView)
Napi::Value download_js(const Napi::CallbackInfo& info) {
  Args a(info, "download", 3);
  int64_t off = a.size(1, "srcOffsetBytes");
  View dst = a.view(2);
  auto* src = static_cast<uint8_t*>(a.ptr(0));
  if (dst.bytes == 0) return info.Env().Undefined();
  MBERT_CHECK(src, "download: argument 0 (src) must not be null");
  check_range(src + off, dst.bytes, "download", 0, "src");
  std::memcpy(dst.data, src + off, dst.bytes);
  return info.Env().Undefined();
}

// copy(dst, dstOffsetBytes, src, srcOffsetBytes, bytes); overlapping ranges are allowed.
Napi::Value copy_js(const Napi::CallbackInfo& info) {
  Args a(info, "copy", 5);
  int64_t doff = a.size(1, "dstOffsetBytes");
  int64_t soff = a.size(3, "srcOffsetBytes");
  int64_t bytes = a.size(4, "bytes");
  auto* dst = static_cast<uint8_t*>(a.ptr(0));
  auto* src = static_cast<uint8_t*>(a.ptr(2));
  if (bytes == 0) return info.Env().Undefined();
  MBERT_CHECK(dst && src, "copy: dst and src must not be null");
  check_range(dst + doff, bytes, "copy", 0, "dst");
  check_range(src + soff, bytes, "copy", 2, "src");
  std::memmove(dst + doff, src + soff, bytes);
  return info.Env().Undefined();
}

}  // namespace

MBERT_EXPORT(cpu, alloc, alloc_js);
MBERT_EXPORT(cpu, free, free_js);
MBERT_EXPORT(cpu, memoryStats, memory_stats_js);
MBERT_EXPORT(cpu, resetPeak, reset_peak_js);
MBERT_EXPORT(cpu, emptyCache, empty_cache_js);
MBERT_EXPORT(cpu, synchronize, synchronize_js);
MBERT_EXPORT(cpu, upload, upload_js);
MBERT_EXPORT(cpu, download, download_js);
MBERT_EXPORT(cpu, copy, copy_js);

}  // namespace cpu
}  // namespace mbert
