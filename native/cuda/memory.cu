// memory.cu — N-API wrappers of the runtime (runtime.h): status, alloc/free,
// memory stats, copies, synchronize, events, deviceCount, takeDeviceError.
// No kernels live here; the rules (lazy init, one stream, caching allocator)
// are in runtime.cu.
#include "cuda/kernel_util.cuh"

namespace mbert {
namespace cuda {
namespace {

Napi::Value status_js(const Napi::CallbackInfo& info) {
  StatusInfo s = query_status();
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("available", s.available);
  if (!s.reason.empty()) o.Set("reason", s.reason);
  if (!s.device.empty()) o.Set("device", s.device);
  return o;
}

Napi::Value alloc_js(const Napi::CallbackInfo& info) {
  Args a(info, "alloc", 1);
  const int64_t bytes = a.size(0, "bytes");
  void* p = alloc(static_cast<std::size_t>(bytes));
  return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(p)));
}

Napi::Value free_js(const Napi::CallbackInfo& info) {
  Args a(info, "free", 1);
  free(a.ptr(0));
  return info.Env().Undefined();
}

Napi::Value memory_stats_js(const Napi::CallbackInfo& info) {
  Args a(info, "memoryStats", 0);
  MemoryStats s = memory_stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("allocated", static_cast<double>(s.allocated));
  o.Set("reserved", static_cast<double>(s.reserved));
  o.Set("peak", static_cast<double>(s.peak));
  o.Set("count", static_cast<double>(s.count));
  return o;
}

Napi::Value reset_peak_js(const Napi::CallbackInfo& info) {
  Args a(info, "resetPeak", 0);
  reset_peak();
  return info.Env().Undefined();
}

Napi::Value empty_cache_js(const Napi::CallbackInfo& info) {
  Args a(info, "emptyCache", 0);
  empty_cache();
  return info.Env().Undefined();
}

Napi::Value upload_js(const Napi::CallbackInfo& info) {
  Args a(info, "upload", 3);
  char* dst = static_cast<char*>(a.ptr(0));
  const int64_t off = a.size(1, "dstOffsetBytes");
  View v = a.view(2);
  check_range(dst + off, v.bytes, "upload", 0, "dst");
  upload(dst + off, v.data, v.bytes);
  return info.Env().Undefined();
}

Napi::Value download_js(const Napi::CallbackInfo& info) {
  Args a(info, "download", 3);
  const char* src = static_cast<const char*>(a.ptr(0));
  const int64_t off = a.size(1, "srcOffsetBytes");
  View v = a.view(2);
  check_range(src + off, v.bytes, "download", 0, "src");
  download(v.data, src + off, v.bytes);
  return info.Env().Undefined();
}

Napi::Value copy_js(const Napi::CallbackInfo& info) {
  Args a(info, "copy", 5);
  char* dst = static_cast<char*>(a.ptr(0));
  const int64_t doff = a.size(1, "dstOffsetBytes");
  const char* src = static_cast<const char*>(a.ptr(2));
  const int64_t soff = a.size(3, "srcOffsetBytes");
  const int64_t bytes = a.size(4, "bytes");
  if (bytes == 0) return info.Env().Undefined();
  check_range(dst + doff, bytes, "copy", 0, "dst");
  check_range(src + soff, bytes, "copy", 2, "src");
  copy(dst + doff, src + soff, static_cast<std::size_t>(bytes));
  return info.Env().Undefined();
}

Napi::Value synchronize_js(const Napi::CallbackInfo& info) {
  Args a(info, "synchronize", 0);
  synchronize();
  return info.Env().Undefined();
}

Napi::Value device_count_js(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), device_count());
}

Napi::Value event_record_js(const Napi::CallbackInfo& info) {
  Args a(info, "eventRecord", 0);
  return Napi::Number::New(info.Env(), event_record());
}

Napi::Value event_elapsed_js(const Napi::CallbackInfo& info) {
  Args a(info, "eventElapsed", 2);
  return Napi::Number::New(info.Env(), event_elapsed(static_cast<int>(a.i64(0)), static_cast<int>(a.i64(1))));
}

Napi::Value event_destroy_js(const Napi::CallbackInfo& info) {
  Args a(info, "eventDestroy", 1);
  event_destroy(static_cast<int>(a.i64(0)));
  return info.Env().Undefined();
}

Napi::Value take_device_error_js(const Napi::CallbackInfo& info) {
  Args a(info, "takeDeviceError", 0);
  auto e = take_device_error();
  if (!e) return info.Env().Null();
  return Napi::String::New(info.Env(), *e);
}

}  // namespace

MBERT_EXPORT(cuda, status, status_js);
MBERT_EXPORT(cuda, alloc, alloc_js);
MBERT_EXPORT(cuda, free, free_js);
MBERT_EXPORT(cuda, memoryStats, memory_stats_js);
MBERT_EXPORT(cuda, resetPeak, reset_peak_js);
MBERT_EXPORT(cuda, emptyCache, empty_cache_js);
MBERT_EXPORT(cuda, upload, upload_js);
MBERT_EXPORT(cuda, download, download_js);
MBERT_EXPORT(cuda, copy, copy_js);
MBERT_EXPORT(cuda, synchronize, synchronize_js);
MBERT_EXPORT(cuda, deviceCount, device_count_js);
MBERT_EXPORT(cuda, eventRecord, event_record_js);
MBERT_EXPORT(cuda, eventElapsed, event_elapsed_js);
MBERT_EXPORT(cuda, eventDestroy, event_destroy_js);
MBERT_EXPORT(cuda, takeDeviceError, take_device_error_js);

}  // namespace cuda
}  // namespace mbert
