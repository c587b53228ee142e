// N-API surface of the weight store (issue #12): weightsCreate / Matmul / Rows / Dequantize / Free / TotalBytes.
// x, y and out may be views into any ArrayBuffer (the wasm heap included), so every length is checked against the
// store's shape before a byte is touched, no pointer into them is kept after a call returns, and no C++ exception
// reaches Node.
#include "weights_addon.h"

#include <cmath>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "napi_call.h"
#include "weight_ops.h"
#include "weight_store.h"

namespace finetune {
namespace {

bool parse_dtype(const std::string& text, SourceDtype* out) {
  if (text == "F32") *out = SourceDtype::F32;
  else if (text == "F16") *out = SourceDtype::F16;
  else if (text == "BF16") *out = SourceDtype::Bf16;
  else return false;
  return true;
}

bool parse_format(const std::string& text, StoreFormat* out) {
  if (text == "f32") *out = StoreFormat::F32;
  else if (text == "bf16") *out = StoreFormat::Bf16;
  else if (text == "f16") *out = StoreFormat::F16;
  else if (text == "int8") *out = StoreFormat::Int8;
  else if (text == "nf4") *out = StoreFormat::Nf4;
  else return false;
  return true;
}

// "x has 10 floats but n · cols = 3 · 4 = 12"
bool check_length(Call& call, const char* what, uint64_t length, uint64_t n, const char* dim_name, uint64_t dim) {
  if (length == n * dim) return true;
  return call.range_error(std::string(what) + " has " + std::to_string(length) + " floats but n · " + dim_name + " = " +
                          std::to_string(n) + " · " + std::to_string(dim) + " = " + std::to_string(n * dim));
}

void finalize(napi_env env, void* data, void*) {
  auto* handle = static_cast<Handle*>(data);
  if (handle->store) {
    int64_t ignored;
    napi_adjust_external_memory(env, -handle->store->bytes(), &ignored);
  }
  delete handle;
}

napi_value make_handle(Call& call, std::unique_ptr<WeightStore> store) {
  napi_env env = call.env();
  const WeightStore& w = *store;
  napi_value object, rows, cols, format, bytes;
  napi_create_object(env, &object);
  napi_create_int64(env, w.rows, &rows);
  napi_create_int64(env, w.cols, &cols);
  napi_create_string_utf8(env, format_name(w.format), NAPI_AUTO_LENGTH, &format);
  napi_create_int64(env, w.bytes(), &bytes);
  const napi_property_descriptor properties[] = {
      {"rows", nullptr, nullptr, nullptr, nullptr, rows, napi_enumerable, nullptr},
      {"cols", nullptr, nullptr, nullptr, nullptr, cols, napi_enumerable, nullptr},
      {"format", nullptr, nullptr, nullptr, nullptr, format, napi_enumerable, nullptr},
      {"bytes", nullptr, nullptr, nullptr, nullptr, bytes, napi_enumerable, nullptr},
  };
  napi_define_properties(env, object, 4, properties);
  const int64_t size = w.bytes();
  auto* handle = new Handle{std::move(store)};
  if (napi_wrap(env, object, handle, finalize, nullptr, nullptr) != napi_ok) {
    delete handle;
    call.error("cannot attach the store to its handle");
    return nullptr;
  }
  napi_type_tag_object(env, object, &kStoreTag);
  napi_object_freeze(env, object);
  // Tells V8's collector how much memory the handle keeps alive, so unreferenced stores are collected in time.
  int64_t ignored;
  napi_adjust_external_memory(env, size, &ignored);
  return object;
}

// weightsCreate(source: Uint8Array, dtype, rows, cols, format)
napi_value Create(napi_env env, napi_callback_info info) {
  Call call(env, info, "weightsCreate", 5, "source, dtype, rows, cols, format");
  if (!call.ok()) return nullptr;
  uint8_t* source = nullptr;
  uint64_t source_bytes = 0, rows = 0, cols = 0;
  std::string dtype_text, format_text;
  if (!call.typed(0, "source", napi_uint8_array, "Uint8Array", &source, &source_bytes) ||
      !call.string(1, "dtype", &dtype_text) || !call.count(2, "rows", kMaxDim, &rows) ||
      !call.count(3, "cols", kMaxDim, &cols) || !call.string(4, "format", &format_text)) {
    return nullptr;
  }
  SourceDtype dtype;
  StoreFormat format;
  if (!parse_dtype(dtype_text, &dtype)) {
    call.type_error("dtype must be \"F32\", \"F16\" or \"BF16\" (got \"" + dtype_text + "\")");
    return nullptr;
  }
  if (!parse_format(format_text, &format)) {
    call.type_error("format must be \"f32\", \"bf16\", \"f16\", \"int8\" or \"nf4\" (got \"" + format_text + "\")");
    return nullptr;
  }
  const uint64_t element = static_cast<uint64_t>(source_element_bytes(dtype));
  const uint64_t expected = rows * cols * element;  // < 2^63: both dimensions are below 2^31
  if (source_bytes != expected) {
    call.range_error("source has " + std::to_string(source_bytes) + " bytes but rows · cols · " + std::to_string(element) +
                     " (" + dtype_text + ") = " + std::to_string(expected));
    return nullptr;
  }
  std::unique_ptr<WeightStore> store;
  call.guarded([&] {
    store = create_weight_store(source, dtype, static_cast<int64_t>(rows), static_cast<int64_t>(cols), format);
  });
  if (!store) return nullptr;
  return make_handle(call, std::move(store));
}

bool overlap(const float* a, uint64_t a_count, const float* b, uint64_t b_count) {
  return a_count > 0 && b_count > 0 && a < b + b_count && b < a + a_count;
}

// weightsMatmul(w, x: Float32Array, n, y: Float32Array, transposed)
napi_value Matmul(napi_env env, napi_callback_info info) {
  Call call(env, info, "weightsMatmul", 5, "w, x, n, y, transposed");
  if (!call.ok()) return nullptr;
  Handle* handle = nullptr;
  const WeightStore* w = nullptr;
  float* x = nullptr;
  float* y = nullptr;
  uint64_t x_length = 0, y_length = 0, n = 0;
  bool transposed = false;
  if (!call.store(0, &handle, &w) || !call.typed(1, "x", napi_float32_array, "Float32Array", &x, &x_length) ||
      !call.count(2, "n", kMaxDim, &n) || !call.typed(3, "y", napi_float32_array, "Float32Array", &y, &y_length) ||
      !call.flag(4, "transposed", &transposed)) {
    return nullptr;
  }
  const auto rows = static_cast<uint64_t>(w->rows), cols = static_cast<uint64_t>(w->cols);
  // x·Wᵀ reads rows of `cols` and writes rows of `rows`; x·W the other way round.
  const char* in_name = transposed ? "rows" : "cols";
  const char* out_name = transposed ? "cols" : "rows";
  if (!check_length(call, "x", x_length, n, in_name, transposed ? rows : cols) ||
      !check_length(call, "y", y_length, n, out_name, transposed ? cols : rows)) {
    return nullptr;
  }
  if (overlap(x, x_length, y, y_length)) {
    call.range_error("y overlaps x; the output must not alias the input");
    return nullptr;
  }
  call.guarded([&] { weights_matmul(*w, x, static_cast<int64_t>(n), y, transposed); });
  return nullptr;
}

// weightsRows(w, ids: Int32Array, out: Float32Array)
napi_value Rows(napi_env env, napi_callback_info info) {
  Call call(env, info, "weightsRows", 3, "w, ids, out");
  if (!call.ok()) return nullptr;
  Handle* handle = nullptr;
  const WeightStore* w = nullptr;
  int32_t* ids = nullptr;
  float* out = nullptr;
  uint64_t count = 0, out_length = 0;
  if (!call.store(0, &handle, &w) || !call.typed(1, "ids", napi_int32_array, "Int32Array", &ids, &count) ||
      !call.typed(2, "out", napi_float32_array, "Float32Array", &out, &out_length)) {
    return nullptr;
  }
  if (out_length != count * static_cast<uint64_t>(w->cols)) {
    call.range_error("out has " + std::to_string(out_length) + " floats but ids.length · cols = " + std::to_string(count) +
                     " · " + std::to_string(w->cols) + " = " + std::to_string(count * static_cast<uint64_t>(w->cols)));
    return nullptr;
  }
  for (uint64_t i = 0; i < count; ++i) {
    if (ids[i] < 0 || ids[i] >= w->rows) {
      call.range_error("ids[" + std::to_string(i) + "] = " + std::to_string(ids[i]) + " is outside [0, " +
                       std::to_string(w->rows) + ")");
      return nullptr;
    }
  }
  call.guarded([&] { weights_rows(*w, ids, static_cast<int64_t>(count), out); });
  return nullptr;
}

// weightsDequantize(w, out: Float32Array)
napi_value Dequantize(napi_env env, napi_callback_info info) {
  Call call(env, info, "weightsDequantize", 2, "w, out");
  if (!call.ok()) return nullptr;
  Handle* handle = nullptr;
  const WeightStore* w = nullptr;
  float* out = nullptr;
  uint64_t length = 0;
  if (!call.store(0, &handle, &w) || !call.typed(1, "out", napi_float32_array, "Float32Array", &out, &length)) return nullptr;
  const uint64_t expected = static_cast<uint64_t>(w->rows) * static_cast<uint64_t>(w->cols);
  if (length != expected) {
    call.range_error("out has " + std::to_string(length) + " floats but rows · cols = " + std::to_string(expected));
    return nullptr;
  }
  call.guarded([&] { weights_dequantize(*w, out); });
  return nullptr;
}

// weightsFree(w): idempotent.
napi_value Free(napi_env env, napi_callback_info info) {
  Call call(env, info, "weightsFree", 1, "w");
  if (!call.ok()) return nullptr;
  void* wrapped = nullptr;
  bool tagged = false;
  napi_valuetype type;
  if (napi_typeof(env, call.arg(0), &type) != napi_ok || type != napi_object ||
      napi_check_object_type_tag(env, call.arg(0), &kStoreTag, &tagged) != napi_ok || !tagged ||
      napi_unwrap(env, call.arg(0), &wrapped) != napi_ok || wrapped == nullptr) {
    call.type_error("w must be a weights store made by weightsCreate");
    return nullptr;
  }
  auto* handle = static_cast<Handle*>(wrapped);
  if (handle->store) {
    int64_t ignored;
    napi_adjust_external_memory(env, -handle->store->bytes(), &ignored);
    handle->store.reset();
  }
  return nullptr;
}

// weightsTotalBytes()
napi_value TotalBytes(napi_env env, napi_callback_info) {
  napi_value result;
  napi_create_int64(env, total_store_bytes(), &result);
  return result;
}

}  // namespace

void register_weights(napi_env env, napi_value exports) {
  const napi_property_descriptor functions[] = {
      {"weightsCreate", nullptr, Create, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"weightsMatmul", nullptr, Matmul, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"weightsRows", nullptr, Rows, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"weightsDequantize", nullptr, Dequantize, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"weightsFree", nullptr, Free, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"weightsTotalBytes", nullptr, TotalBytes, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
}

}  // namespace finetune
