// binding.cc — the one Init. Builds exports.cpu / exports.cuda from the
// MBERT_EXPORT registry, each function wrapped in a trampoline that turns C++
// exceptions into JavaScript errors; adds cudaStatus() and buildInfo().
#include <napi.h>

#include <exception>
#include <string>

#include "common/error.h"
#include "common/registry.h"

#ifndef MBERT_BUILD_FLAGS
#define MBERT_BUILD_FLAGS "unknown"
#endif
#ifndef MBERT_NO_CUDA_REASON
#define MBERT_NO_CUDA_REASON "built without CUDA (nvcc not found at build time)"
#endif

namespace mbert {
namespace {

Napi::Error make_error(Napi::Env env, const std::string& msg, const std::string& code) {
  Napi::Error err = Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

// Calls the registered function; every exception becomes a JS Error.
Napi::Value trampoline(const Napi::CallbackInfo& info) {
  auto* entry = static_cast<ExportEntry*>(info.Data());
  try {
    return entry->fn(info);
  } catch (const Napi::Error&) {
    throw;  // already a JS error
  } catch (const Error& e) {
    throw make_error(info.Env(), e.what(), e.code());
  } catch (const std::bad_alloc&) {
    throw make_error(info.Env(), entry->name + ": out of host memory", "OUT_OF_MEMORY");
  } catch (const std::exception& e) {
    throw make_error(info.Env(), e.what(), "KERNEL_ERROR");
  } catch (...) {
    throw make_error(info.Env(), entry->name + ": unknown native exception", "KERNEL_ERROR");
  }
}

const ExportEntry* find_export(const char* ns, const char* name) {
  for (const ExportEntry* e : registered_exports()) {
    if (e->ns == ns && e->name == name) return e;
  }
  return nullptr;
}

bool has_namespace(const char* ns) {
  for (const ExportEntry* e : registered_exports()) {
    if (e->ns == ns) return true;
  }
  return false;
}

Napi::Object status_object(Napi::Env env, const std::string& reason) {
  Napi::Object s = Napi::Object::New(env);
  s.Set("available", false);
  s.Set("reason", reason);
  return s;
}

// The CUDA side registers MBERT_EXPORT(cuda, status, fn) returning a
// BackendStatus; without it (or when it throws) this reports why.
Napi::Value cuda_status(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ExportEntry* st = find_export("cuda", "status");
  if (!st) {
    return status_object(env, has_namespace("cuda") ? "cuda backend registers no status function"
                                                    : MBERT_NO_CUDA_REASON);
  }
  try {
    return st->fn(info);
  } catch (const Napi::Error& e) {
    return status_object(env, e.Message());
  } catch (const std::exception& e) {
    return status_object(env, e.what());
  } catch (...) {
    return status_object(env, "cuda status: unknown native exception");
  }
}

Napi::Value build_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("cuda", has_namespace("cuda"));
  o.Set("compiler", "g++ " __VERSION__);
  o.Set("flags", MBERT_BUILD_FLAGS);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (ExportEntry* e : registered_exports()) {
    Napi::Object target;
    if (exports.Has(e->ns)) {
      target = exports.Get(e->ns).As<Napi::Object>();
    } else {
      target = Napi::Object::New(env);
      exports.Set(e->ns, target);
    }
    target.Set(e->name, Napi::Function::New(env, trampoline, e->name, e));
  }
  if (!exports.Has("cpu")) exports.Set("cpu", Napi::Object::New(env));
  exports.Set("cudaStatus", Napi::Function::New(env, cuda_status, "cudaStatus"));
  exports.Set("buildInfo", Napi::Function::New(env, build_info, "buildInfo"));
  return exports;
}

}  // namespace
}  // namespace mbert

static Napi::Object InitMbert(Napi::Env env, Napi::Object exports) { return mbert::Init(env, exports); }

NODE_API_MODULE(mbert, InitMbert)
