// registry.h — static registration of addon exports.
// A kernel file writes `MBERT_EXPORT(cpu, layernormForward, layernorm_forward_js)`
// and binding.cc's Init exposes it as addon.cpu.layernormForward. No central list.
#pragma once

#include <napi.h>

#include <string>
#include <vector>

namespace mbert {

using ExportFn = Napi::Value (*)(const Napi::CallbackInfo&);

struct ExportEntry {
  std::string ns;
  std::string name;
  ExportFn fn;
};

// Adds (ns, name) -> fn. Returns the entry's index (for the static initializer).
int register_export(const char* ns, const char* name, ExportFn fn);

// Every registered export, in registration order. Entries are never removed,
// so pointers into the returned vector's elements stay valid after Init.
const std::vector<ExportEntry*>& registered_exports();

}  // namespace mbert

#define MBERT_EXPORT_CAT2(a, b) a##b
#define MBERT_EXPORT_CAT(a, b) MBERT_EXPORT_CAT2(a, b)
#define MBERT_EXPORT(ns, name, fn)                                                            \
  static const int MBERT_EXPORT_CAT(mbert_export_##ns##_##name##_, __LINE__) [[maybe_unused]] = \
      ::mbert::register_export(#ns, #name, fn)
