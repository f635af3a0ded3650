// runtime.h — the CUDA runtime of the addon: lazy device init, the one
// non-blocking stream every kernel runs on, the caching allocator, host<->device
// copies through a reused pinned staging ring, events, the device-side error
// flag kernels raise on a bad index/label, and the 32 MiB GEMM workspace.
//
// Everything here is host code; kernels include "cuda/kernel_util.cuh".
// Nothing synchronizes except where a value is read (download, synchronize,
// eventElapsed, takeDeviceError, emptyCache).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace mbert {
namespace cuda {

// ---- status (never throws) -------------------------------------------------

struct StatusInfo {
  bool available = false;
  std::string reason;  // why not, when !available
  std::string device;  // "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB, 132 SMs)" when available
};

// Probes the driver (cudaGetDeviceCount) without initializing anything else.
StatusInfo query_status() noexcept;
int device_count() noexcept;

// ---- device, stream --------------------------------------------------------

// Initializes the device on first use (device MBERT_CUDA_DEVICE or 0): sets it
// current, creates the stream, the error flag and the workspace. Throws
// mbert::Error when no usable device exists. Idempotent and cheap after the first call.
void ensure_init();

// The one non-blocking stream all work goes on (initializes on first use).
cudaStream_t stream();

// Properties of the current device, read once at init.
int sm_count();
int device_index();

// 32 MiB of scratch memory, stream-ordered: a kernel sequence may use it as long
// as it is done with it before the launcher returns control to another op that
// could use it (everything is on one stream, so this holds by construction).
void* workspace();
std::size_t workspace_bytes();

// ---- caching allocator -------------------------------------------------------

struct MemoryStats {
  std::size_t allocated = 0;  // bytes handed out and not freed (rounded block sizes)
  std::size_t reserved = 0;   // allocated + cached free blocks
  std::size_t peak = 0;       // highest `allocated` since reset_peak
  std::size_t count = 0;      // live allocations
};

// 256-byte aligned; 0 bytes returns nullptr. On cudaMalloc failure the cache is
// emptied and the request retried once; then throws mbert::OutOfMemory
// ("OutOfMemory: ...") naming requested and free bytes.
void* alloc(std::size_t bytes);
// nullptr is a no-op; an address not returned by alloc throws.
void free(void* ptr);
MemoryStats memory_stats();
// Throws "<fn>: argument <arg> (<what>): <bytes> bytes at 0x.. is outside any
// live cuda allocation" unless [p, p + bytes) lies inside one live block.
void check_range(const void* p, std::size_t bytes, const char* fn, int arg, const char* what);
void reset_peak();
// Returns cached free blocks to the driver (synchronizes the stream first).
void empty_cache();

// ---- copies ------------------------------------------------------------------

// Host -> device through the pinned staging ring, asynchronous on the stream.
void upload(void* dst, const void* src, std::size_t bytes);
// Device -> host; waits for queued work.
void download(void* dst, const void* src, std::size_t bytes);
// Device -> device, asynchronous on the stream.
void copy(void* dst, const void* src, std::size_t bytes);
void synchronize();

// ---- events --------------------------------------------------------------------

// Records an event on the stream; returns a small integer handle.
int event_record();
// Milliseconds between two recorded events (waits for `end`).
double event_elapsed(int start, int end);
void event_destroy(int handle);

// ---- device error flag ---------------------------------------------------------

// Kernels that find a bad index/label set this record (first one wins) and go
// on; the host reads it only in take_device_error.
struct DeviceError {
  int code;            // 0 = none; see DeviceErrorCode
  int pad;
  long long position;  // i of the offending idx[i] / labels[i]
  long long value;     // the offending value
  long long limit;     // the valid range is [0, limit)
};

enum DeviceErrorCode : int {
  kErrNone = 0,
  kErrIndexSelect = 1,
  kErrIndexAdd = 2,
  kErrIndexCopy = 3,
  kErrCrossEntropyLabel = 4,
};

// Device address of the flag record (initializes on first use).
DeviceError* device_error();
// Synchronizes, reads and clears the flag; nullopt when no kernel set it.
std::optional<std::string> take_device_error();

// Throws the uniform "float64 is not supported on cuda" error for `kernel`.
[[noreturn]] void throw_f64(const char* kernel);

}  // namespace cuda
}  // namespace mbert
