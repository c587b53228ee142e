// What the addon's N-API functions share: one call's argument checks and error messages (every message starts with
// the function's name), and the handle a weight store lives behind. Header-only; included by the *_addon.cc files.
#pragma once

#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "weight_store.h"

namespace finetune {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1
constexpr uint64_t kMaxDim = 2147483647;                // the GEMM takes int dimensions

// Marks the objects weightsCreate made, so a look-alike object (or another addon's wrap) is refused.
constexpr napi_type_tag kStoreTag = {0x7e4f2b91c3a85d06ULL, 0xa1d83c5e9f0b7246ULL};

// What a handle owns; `store` is null once weightsFree ran. The finalizer deletes the handle (and the store, if
// it is still there) when the JS object is collected.
struct Handle {
  std::unique_ptr<WeightStore> store;
};

// One call's arguments and its error messages, each prefixed with the function's name.
class Call {
 public:
  Call(napi_env env, napi_callback_info info, const char* name, size_t expected, const char* usage)
      : env_(env), name_(name) {
    argc_ = kMaxArgs;
    ok_ = napi_get_cb_info(env, info, &argc_, argv_, nullptr, nullptr) == napi_ok;
    if (ok_ && argc_ != expected) {
      ok_ = type_error("expected " + std::to_string(expected) + " arguments (" + usage + "), got " + std::to_string(argc_));
    }
  }

  bool ok() const { return ok_; }
  napi_env env() const { return env_; }

  bool type_error(const std::string& message) {
    napi_throw_type_error(env_, "ERR_FINETUNE_WEIGHTS", (std::string(name_) + ": " + message).c_str());
    return false;
  }
  bool range_error(const std::string& message) {
    napi_throw_range_error(env_, "ERR_FINETUNE_WEIGHTS", (std::string(name_) + ": " + message).c_str());
    return false;
  }
  bool error(const std::string& message) {
    napi_throw_error(env_, "ERR_FINETUNE_WEIGHTS", (std::string(name_) + ": " + message).c_str());
    return false;
  }

  bool count(size_t index, const char* what, uint64_t max, uint64_t* out) {
    napi_valuetype type;
    if (napi_typeof(env_, argv_[index], &type) != napi_ok || type != napi_number) {
      return type_error(std::string(what) + " must be a number");
    }
    double number = 0;
    napi_get_value_double(env_, argv_[index], &number);
    if (!(number >= 0) || number > kMaxSafeInteger || std::floor(number) != number) {
      return range_error(std::string(what) + " must be a non-negative integer (got " + std::to_string(number) + ")");
    }
    if (number > static_cast<double>(max)) return range_error(std::string(what) + " is too large (" + std::to_string(number) + ")");
    *out = static_cast<uint64_t>(number);
    return true;
  }

  bool flag(size_t index, const char* what, bool* out) {
    if (napi_get_value_bool(env_, argv_[index], out) != napi_ok) return type_error(std::string(what) + " must be a boolean");
    return true;
  }

  bool string(size_t index, const char* what, std::string* out) {
    char text[32];
    size_t length = 0;
    if (napi_get_value_string_utf8(env_, argv_[index], text, sizeof text, &length) != napi_ok) {
      return type_error(std::string(what) + " must be a string");
    }
    *out = std::string(text, length);
    return true;
  }

  // A typed array of the given type: its data and element count (0 when its buffer was detached).
  template <typename T>
  bool typed(size_t index, const char* what, napi_typedarray_type expected, const char* type_name, T** data,
             uint64_t* length) {
    return typed_value(argv_[index], what, expected, type_name, data, length);
  }
  template <typename T>
  bool typed_value(napi_value value, const std::string& what, napi_typedarray_type expected, const char* type_name,
                   T** data, uint64_t* length) {
    bool is_typed = false;
    napi_is_typedarray(env_, value, &is_typed);
    napi_typedarray_type type;
    size_t count = 0;
    void* pointer = nullptr;
    if (!is_typed || napi_get_typedarray_info(env_, value, &type, &count, &pointer, nullptr, nullptr) != napi_ok ||
        type != expected) {
      return type_error(what + " must be a " + type_name);
    }
    *data = static_cast<T*>(pointer);
    *length = pointer == nullptr ? 0 : count;
    return true;
  }

  // The live store behind argument `index` (or behind `value`, named `what` in messages).
  bool store(size_t index, Handle** handle, const WeightStore** out) { return store_value(argv_[index], "w", handle, out); }
  bool store_value(napi_value value, const std::string& what, Handle** handle, const WeightStore** out) {
    bool tagged = false;
    napi_valuetype type;
    if (napi_typeof(env_, value, &type) != napi_ok || type != napi_object ||
        napi_check_object_type_tag(env_, value, &kStoreTag, &tagged) != napi_ok || !tagged) {
      return type_error(what + " must be a weights store made by weightsCreate");
    }
    void* wrapped = nullptr;
    if (napi_unwrap(env_, value, &wrapped) != napi_ok || wrapped == nullptr) {
      return type_error(what + " must be a weights store made by weightsCreate");
    }
    *handle = static_cast<Handle*>(wrapped);
    if (!(*handle)->store) {
      return error("the weights store " + (what == "w" ? "" : what + " ") + "was freed (weightsFree) and cannot be used");
    }
    if (out != nullptr) *out = (*handle)->store.get();
    return true;
  }

  // Runs native work, turning any C++ exception into a JS error.
  template <typename Work>
  void guarded(const Work& work) {
    try {
      work();
    } catch (const std::bad_alloc&) {
      error("out of memory");
    } catch (const std::exception& failure) {
      error(failure.what());
    } catch (...) {
      error("unknown native failure");
    }
  }

  napi_value arg(size_t index) const { return argv_[index]; }

 private:
  static constexpr size_t kMaxArgs = 6;
  napi_env env_;
  const char* name_;
  size_t argc_ = 0;
  napi_value argv_[kMaxArgs] = {};
  bool ok_ = false;
};

}  // namespace finetune
