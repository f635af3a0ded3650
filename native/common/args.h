// args.h — argument parsing for N-API wrappers. Every error names the function,
// the argument index and the expectation:
//   "layernormForward: argument 3 (x) must be a non-negative integer address, got -1"
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "common/error.h"

namespace mbert {

struct View {
  void* data;
  std::size_t bytes;
};

class Args {
 public:
  // Checks that exactly `expected` arguments were passed (-1: any number).
  Args(const Napi::CallbackInfo& info, const char* fn, int expected = -1) : info_(info), fn_(fn) {
    if (expected >= 0 && static_cast<int>(info.Length()) != expected) {
      throw Error(str(fn_, ": expected ", expected, " arguments, got ", info.Length()));
    }
  }

  const char* fn() const { return fn_; }
  std::size_t count() const { return info_.Length(); }
  Napi::Env env() const { return info_.Env(); }

  // A buffer address: finite, non-negative integer; 0 -> nullptr.
  void* ptr(int i) const {
    double d = number(i, "an address (non-negative integer)");
    if (!(d >= 0) || d != std::floor(d) || d > 9007199254740992.0) {
      throw Error(str(fn_, ": argument ", i, " must be a non-negative integer address, got ", d));
    }
    return reinterpret_cast<void*>(static_cast<uintptr_t>(d));
  }

  // An integer (size, stride, offset, index); must be exact.
  int64_t i64(int i) const {
    double d = number(i, "an integer");
    if (d != std::floor(d) || std::fabs(d) > 9007199254740992.0) {
      throw Error(str(fn_, ": argument ", i, " must be an integer, got ", d));
    }
    return static_cast<int64_t>(d);
  }

  // A non-negative integer (sizes, counts).
  int64_t size(int i, const char* what) const {
    int64_t v = i64(i);
    if (v < 0) throw Error(str(fn_, ": argument ", i, " (", what, ") must be >= 0, got ", v));
    return v;
  }

  double f64(int i) const { return number(i, "a number"); }

  // Any number, NaN and infinities included (fill values).
  double real(int i) const {
    Napi::Value v = at(i);
    if (!v.IsNumber()) throw Error(str(fn_, ": argument ", i, " must be a number"));
    return v.As<Napi::Number>().DoubleValue();
  }

  bool flag(int i) const {
    Napi::Value v = at(i);
    if (!v.IsBoolean()) throw Error(str(fn_, ": argument ", i, " must be a boolean"));
    return v.As<Napi::Boolean>().Value();
  }

  DType dtype(int i) const {
    double d = number(i, "a dtype code");
    if (d != 0 && d != 1 && d != 2 && d != 3) {
      throw Error(str(fn_, ": argument ", i, " must be a dtype code 0..3 (float32, float64, bfloat16, int32), got ", d));
    }
    return static_cast<DType>(static_cast<int>(d));
  }

  std::vector<int64_t> ints(int i) const {
    Napi::Value v = at(i);
    if (!v.IsArray()) throw Error(str(fn_, ": argument ", i, " must be an array of integers"));
    Napi::Array arr = v.As<Napi::Array>();
    std::vector<int64_t> out(arr.Length());
    for (uint32_t k = 0; k < arr.Length(); ++k) {
      Napi::Value e = arr.Get(k);
      double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : NAN;
      if (!(d == std::floor(d)) || std::fabs(d) > 9007199254740992.0) {
        throw Error(str(fn_, ": argument ", i, " element ", k, " must be an integer"));
      }
      out[k] = static_cast<int64_t>(d);
    }
    return out;
  }

  // A Float64Array of whole entries of `width` numbers each (a per-tensor table of
  // addresses and scalars, e.g. adamwList's); its values, checked finite.
  std::vector<double> table(int i, int width, const char* what) const {
    Napi::Value v = at(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      throw Error(str(fn_, ": argument ", i, " (", what, ") must be a Float64Array"));
    }
    Napi::Float64Array t = v.As<Napi::Float64Array>();
    const std::size_t n = t.ElementLength();
    if (n % static_cast<std::size_t>(width) != 0) {
      throw Error(str(fn_, ": argument ", i, " (", what, ") must hold whole entries of ", width, " numbers, got ", n));
    }
    std::vector<double> out(t.Data(), t.Data() + n);
    for (std::size_t k = 0; k < n; ++k) {
      if (!std::isfinite(out[k])) {
        throw Error(str(fn_, ": argument ", i, " (", what, ") entry ", k / width, " field ", k % width,
                        " must be finite, got ", out[k]));
      }
    }
    return out;
  }

  // A TypedArray or DataView: pointer to its first byte and its byte length.
  View view(int i) const {
    Napi::Value v = at(i);
    if (v.IsTypedArray()) {
      Napi::TypedArray t = v.As<Napi::TypedArray>();
      auto* base = static_cast<uint8_t*>(t.ArrayBuffer().Data());
      return View{base + t.ByteOffset(), t.ByteLength()};
    }
    if (v.IsDataView()) {
      Napi::DataView t = v.As<Napi::DataView>();
      return View{static_cast<uint8_t*>(t.Data()), t.ByteLength()};
    }
    throw Error(str(fn_, ": argument ", i, " must be a TypedArray or DataView"));
  }

 private:
  Napi::Value at(int i) const {
    if (i < 0 || static_cast<std::size_t>(i) >= info_.Length()) {
      throw Error(str(fn_, ": missing argument ", i));
    }
    return info_[i];
  }

  double number(int i, const char* expect) const {
    Napi::Value v = at(i);
    if (!v.IsNumber()) throw Error(str(fn_, ": argument ", i, " must be ", expect));
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d)) throw Error(str(fn_, ": argument ", i, " must be ", expect, " (finite), got ", d));
    return d;
  }

  const Napi::CallbackInfo& info_;
  const char* fn_;
};

// Entry `e` of a table argument (Args::table) with fields read as addresses, sizes or
// numbers; errors name the function, the argument, the entry and the field.
class TableRow {
 public:
  TableRow(const Args& a, int arg, const std::vector<double>& t, int width, std::size_t e)
      : a_(a), arg_(arg), v_(t.data() + e * width), e_(e) {}

  std::size_t index() const { return e_; }
  std::string name(const char* what) const { return str("entry ", e_, " ", what); }

  void* ptr(int k, const char* what) const {
    const double d = v_[k];
    if (!(d >= 0) || d != std::floor(d) || d > 9007199254740992.0) {
      throw Error(str(a_.fn(), ": argument ", arg_, " ", name(what), " must be a non-negative integer address, got ", d));
    }
    return reinterpret_cast<void*>(static_cast<uintptr_t>(d));
  }
  int64_t size(int k, const char* what) const {
    const double d = v_[k];
    if (!(d >= 0) || d != std::floor(d) || d > 9007199254740992.0) {
      throw Error(str(a_.fn(), ": argument ", arg_, " ", name(what), " must be a non-negative integer, got ", d));
    }
    return static_cast<int64_t>(d);
  }
  double num(int k) const { return v_[k]; }

 private:
  const Args& a_;
  int arg_;
  const double* v_;
  std::size_t e_;
};

// Field k of a table row as a buffer of `bytes`, checked by `check` like checked_ptr.
template <typename Check>
void* checked_row_ptr(const Args& a, int arg, const TableRow& row, int k, std::size_t bytes, const char* what,
                      bool required, Check check) {
  void* p = row.ptr(k, what);
  const std::string name = row.name(what);
  if (!p) {
    if (required && bytes > 0) throw Error(str(a.fn(), ": argument ", arg, " (", name, ") must not be null"));
    return nullptr;
  }
  check(p, bytes, a.fn(), arg, name.c_str());
  return p;
}

// Pointer argument i spanning `bytes`, checked by `check(p, bytes, fn, i, what)` (each
// backend's allocation map). Null is accepted only when !required or bytes == 0.
template <typename Check>
void* checked_ptr(const Args& a, int i, std::size_t bytes, const char* what, bool required, Check check) {
  void* p = a.ptr(i);
  if (!p) {
    if (required && bytes > 0) throw Error(str(a.fn(), ": argument ", i, " (", what, ") must not be null"));
    return nullptr;
  }
  check(p, bytes, a.fn(), i, what);
  return p;
}

}  // namespace mbert
