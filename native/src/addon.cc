// N-API surface of finetune_matmul: sgemm() computes inside a caller-owned ArrayBuffer (the wasm heap), so every
// offset and extent is checked here before any byte is read or written, and no C++ exception reaches Node. The
// weight store's functions are registered from weights_addon.cc, the lean decoder's from decoder_addon.cc.
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <exception>
#include <new>
#include <string>

#include "gemm.h"
#include "decoder_addon.h"
#include "weights_addon.h"

namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1
constexpr uint64_t kMaxDim = 2147483647;                // BLAS takes int dimensions

bool throw_error(napi_env env, const std::string& message) {
  napi_throw_error(env, "ERR_FINETUNE_SGEMM", ("sgemm: " + message).c_str());
  return false;
}

bool throw_range(napi_env env, const std::string& message) {
  napi_throw_range_error(env, "ERR_FINETUNE_SGEMM", ("sgemm: " + message).c_str());
  return false;
}

bool throw_type(napi_env env, const std::string& message) {
  napi_throw_type_error(env, "ERR_FINETUNE_SGEMM", ("sgemm: " + message).c_str());
  return false;
}

bool get_count(napi_env env, napi_value value, const char* name, uint64_t max, uint64_t* out) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number) {
    return throw_type(env, std::string(name) + " must be a number");
  }
  double number = 0;
  napi_get_value_double(env, value, &number);
  if (!(number >= 0) || number > kMaxSafeInteger || std::floor(number) != number) {
    return throw_range(env, std::string(name) + " must be a non-negative integer (got " + std::to_string(number) + ")");
  }
  if (number > static_cast<double>(max)) {
    return throw_range(env, std::string(name) + " is too large (" + std::to_string(number) + ")");
  }
  *out = static_cast<uint64_t>(number);
  return true;
}

bool get_flag(napi_env env, napi_value value, const char* name, bool* out) {
  if (napi_get_value_bool(env, value, out) != napi_ok) return throw_type(env, std::string(name) + " must be a boolean");
  return true;
}

bool mul(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > UINT64_MAX / a) return false;
  *out = a * b;
  return true;
}

bool add(uint64_t a, uint64_t b, uint64_t* out) {
  if (b > UINT64_MAX - a) return false;
  *out = a + b;
  return true;
}

struct Extent {
  uint64_t begin = 0, end = 0;  // bytes; empty when begin == end
};

// The bytes matrices `count` floats each, `batch` of them `stride` bytes apart from `offset`, span; checked to lie
// inside [0, length).
bool extent_of(napi_env env, const char* name, uint64_t offset, uint64_t stride, uint64_t batch, uint64_t count,
               uint64_t length, Extent* out) {
  if (offset % 4 != 0 || stride % 4 != 0) {
    return throw_range(env, std::string(name) + " offset and stride must be multiples of 4 bytes");
  }
  uint64_t bytes = 0, last = 0, end = 0;
  const bool empty = count == 0 || batch == 0;
  if (!empty && !(mul(count, 4, &bytes) && mul(batch - 1, stride, &last) && add(offset, last, &end) &&
                  add(end, bytes, &end))) {
    return throw_range(env, std::string(name) + " extent overflows");
  }
  if (empty) end = offset;
  if (end > length) {
    return throw_range(env, std::string(name) + " reaches byte " + std::to_string(end) + " but the buffer has " +
                                std::to_string(length) + " bytes");
  }
  *out = Extent{offset, end};
  return true;
}

bool overlaps(const Extent& x, const Extent& y) {
  return x.begin < x.end && y.begin < y.end && x.begin < y.end && y.begin < x.end;
}

// sgemm(buffer, aOffset, bOffset, cOffset, M, N, K, transA, transB, batch, strideA, strideB, strideC)
napi_value Sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 13;
  napi_value argv[13];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  if (argc != 13) {
    throw_type(env, "expected 13 arguments (buffer, aOffset, bOffset, cOffset, M, N, K, transA, transB, batch, "
                    "strideA, strideB, strideC), got " + std::to_string(argc));
    return nullptr;
  }
  bool is_buffer = false;
  napi_is_arraybuffer(env, argv[0], &is_buffer);
  if (!is_buffer) {
    throw_type(env, "buffer must be an ArrayBuffer (a SharedArrayBuffer is not supported)");
    return nullptr;
  }
  void* data = nullptr;
  size_t length = 0;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &length) != napi_ok) {
    throw_error(env, "cannot read the ArrayBuffer");
    return nullptr;
  }
  uint64_t a_off, b_off, c_off, m, n, k, batch, stride_a, stride_b, stride_c;
  bool trans_a, trans_b;
  if (!get_count(env, argv[1], "aOffset", UINT64_MAX, &a_off) || !get_count(env, argv[2], "bOffset", UINT64_MAX, &b_off) ||
      !get_count(env, argv[3], "cOffset", UINT64_MAX, &c_off) || !get_count(env, argv[4], "M", kMaxDim, &m) ||
      !get_count(env, argv[5], "N", kMaxDim, &n) || !get_count(env, argv[6], "K", kMaxDim, &k) ||
      !get_flag(env, argv[7], "transA", &trans_a) || !get_flag(env, argv[8], "transB", &trans_b) ||
      !get_count(env, argv[9], "batch", kMaxDim, &batch) ||
      !get_count(env, argv[10], "strideA", UINT64_MAX, &stride_a) ||
      !get_count(env, argv[11], "strideB", UINT64_MAX, &stride_b) ||
      !get_count(env, argv[12], "strideC", UINT64_MAX, &stride_c)) {
    return nullptr;
  }
  uint64_t a_count = 0, b_count = 0, c_count = 0;
  if (!mul(m, k, &a_count) || !mul(k, n, &b_count) || !mul(m, n, &c_count)) {
    throw_range(env, "matrix size overflows");
    return nullptr;
  }
  Extent a, b, c;
  if (!extent_of(env, "A", a_off, stride_a, batch, a_count, length, &a) ||
      !extent_of(env, "B", b_off, stride_b, batch, b_count, length, &b) ||
      !extent_of(env, "C", c_off, stride_c, batch, c_count, length, &c)) {
    return nullptr;
  }
  // Outputs written while inputs are still being read would give wrong results; so would two batches of C sharing bytes.
  if (batch > 1 && c_count > 0 && stride_c < c_count * 4) {
    throw_range(env, "strideC (" + std::to_string(stride_c) + ") is smaller than one C matrix; batches would overlap");
    return nullptr;
  }
  if (overlaps(c, a) || overlaps(c, b)) {
    throw_range(env, "C overlaps an input; the output must not alias A or B");
    return nullptr;
  }
  if (c.begin == c.end) return nullptr;  // nothing to write (M, N or batch is 0)

  auto* base = static_cast<uint8_t*>(data);
  finetune::GemmArgs args{};
  args.a = reinterpret_cast<const float*>(base + a_off);
  args.b = reinterpret_cast<const float*>(base + b_off);
  args.c = reinterpret_cast<float*>(base + c_off);
  args.m = static_cast<int64_t>(m);
  args.n = static_cast<int64_t>(n);
  args.k = static_cast<int64_t>(k);
  args.trans_a = trans_a;
  args.trans_b = trans_b;
  args.batch = static_cast<int64_t>(batch);
  args.stride_a = static_cast<int64_t>(stride_a / 4);
  args.stride_b = static_cast<int64_t>(stride_b / 4);
  args.stride_c = static_cast<int64_t>(stride_c / 4);
  try {
    finetune::sgemm(args);
  } catch (const std::bad_alloc&) {
    throw_error(env, "out of memory for packing buffers");
  } catch (const std::exception& error) {
    throw_error(env, error.what());
  } catch (...) {
    throw_error(env, "unknown native failure");
  }
  return nullptr;
}

napi_value Info(napi_env env, napi_callback_info) {
  const char* kernel = "portable";
  int threads = 1;
  try {
    kernel = finetune::kernel_name(finetune::active_kernel());
    threads = finetune::thread_count();
  } catch (...) {
    throw_error(env, "cannot initialise the native kernel");
    return nullptr;
  }
  napi_value result, kernel_value, threads_value;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, kernel, NAPI_AUTO_LENGTH, &kernel_value);
  napi_create_int32(env, threads, &threads_value);
  napi_set_named_property(env, result, "kernel", kernel_value);
  napi_set_named_property(env, result, "threads", threads_value);
  return result;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_value sgemm, info;
  napi_create_function(env, "sgemm", NAPI_AUTO_LENGTH, Sgemm, nullptr, &sgemm);
  napi_create_function(env, "info", NAPI_AUTO_LENGTH, Info, nullptr, &info);
  napi_set_named_property(env, exports, "sgemm", sgemm);
  napi_set_named_property(env, exports, "info", info);
  finetune::register_weights(env, exports);
  finetune::register_decoder(env, exports);
  return exports;
}
