// Plain C++ kernels for every format: what runs without AVX2 (arm64 included), and the reference the AVX2 kernels
// must match bit for bit when dequantizing.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "float_formats.h"
#include "weight_kernels.h"

namespace finetune {
namespace {

void dequantize_f32(const WeightStore& w, int64_t r, int64_t c0, int64_t c1, float* out) {
  std::memcpy(out, w.row(r) + c0 * 4, static_cast<size_t>(c1 - c0) * 4);
}

void dequantize_bf16(const WeightStore& w, int64_t r, int64_t c0, int64_t c1, float* out) {
  const uint8_t* row = w.row(r);
  for (int64_t c = c0; c < c1; ++c) {
    uint16_t h;
    std::memcpy(&h, row + c * 2, 2);
    out[c - c0] = bf16_to_float(h);
  }
}

void dequantize_f16(const WeightStore& w, int64_t r, int64_t c0, int64_t c1, float* out) {
  const uint8_t* row = w.row(r);
  for (int64_t c = c0; c < c1; ++c) {
    uint16_t h;
    std::memcpy(&h, row + c * 2, 2);
    out[c - c0] = f16_to_float(h);
  }
}

void dequantize_int8(const WeightStore& w, int64_t r, int64_t c0, int64_t c1, float* out) {
  const auto* codes = reinterpret_cast<const int8_t*>(w.row(r));
  const float* scales = w.row_scales(r);
  for (int64_t c = c0; c < c1; ++c) out[c - c0] = static_cast<float>(codes[c]) * scales[c / kQuantBlock];
}

void dequantize_nf4(const WeightStore& w, int64_t r, int64_t c0, int64_t c1, float* out) {
  const uint8_t* packed = w.row(r);
  const float* scales = w.row_scales(r);
  for (int64_t c = c0; c < c1; ++c) {
    // Element c is in group c / 16, byte nf4_byte(c % 8) of it, the high nibble for the group's second half.
    const uint8_t byte = packed[(c / kNf4Group) * (kNf4Group / 2) + nf4_byte(c % 8)];
    const int code = (c % kNf4Group) < 8 ? (byte & 0x0f) : (byte >> 4);
    out[c - c0] = kNf4CodeBook[code] * scales[c / kQuantBlock];
  }
}

// One block of the row at a time into a small buffer, then eight running sums per row of x (so the compiler can
// keep them in vector registers), added up in a fixed order at the end.
template <void (*Dequantize)(const WeightStore&, int64_t, int64_t, int64_t, float*)>
void rows_dot(const WeightStore& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy, int64_t r0,
              int64_t r1) {
  constexpr int kLanes = 8;
  float block[kQuantBlock];
  for (int64_t r = r0; r < r1; ++r) {
    float sums[8][kLanes] = {};  // m ≤ kStreamingRows = 8
    for (int64_t c0 = 0; c0 < w.cols; c0 += kQuantBlock) {
      const int64_t count = std::min(kQuantBlock, w.cols - c0);
      Dequantize(w, r, c0, c0 + count, block);
      for (int64_t i = 0; i < m; ++i) {
        const float* xi = x + i * ldx + c0;
        for (int64_t j = 0; j < count; ++j) sums[i][j % kLanes] += xi[j] * block[j];
      }
    }
    for (int64_t i = 0; i < m; ++i) {
      float s = 0.0f;
      for (int lane = 0; lane < kLanes; ++lane) s += sums[i][lane];
      y[i * ldy + r] = s;
    }
  }
}

template <void (*Dequantize)(const WeightStore&, int64_t, int64_t, int64_t, float*)>
void row_axpy(const WeightStore& w, int64_t r, int64_t c0, int64_t c1, const float* xr, int64_t m, float* acc, int64_t ld) {
  float block[kQuantBlock];
  for (int64_t b0 = c0; b0 < c1; b0 += kQuantBlock) {
    const int64_t count = std::min(kQuantBlock, c1 - b0);
    Dequantize(w, r, b0, b0 + count, block);
    for (int64_t i = 0; i < m; ++i) {
      float* out = acc + i * ld + (b0 - c0);
      for (int64_t j = 0; j < count; ++j) out[j] += xr[i] * block[j];
    }
  }
}

template <void (*Dequantize)(const WeightStore&, int64_t, int64_t, int64_t, float*)>
constexpr WeightKernels kernels_of() {
  return WeightKernels{Dequantize, rows_dot<Dequantize>, row_axpy<Dequantize>};
}

}  // namespace

const WeightKernels& portable_weight_kernels(StoreFormat format) {
  static const WeightKernels f32 = kernels_of<dequantize_f32>();
  static const WeightKernels bf16 = kernels_of<dequantize_bf16>();
  static const WeightKernels f16 = kernels_of<dequantize_f16>();
  static const WeightKernels int8 = kernels_of<dequantize_int8>();
  static const WeightKernels nf4 = kernels_of<dequantize_nf4>();
  switch (format) {
    case StoreFormat::F32: return f32;
    case StoreFormat::Bf16: return bf16;
    case StoreFormat::F16: return f16;
    case StoreFormat::Int8: return int8;
    case StoreFormat::Nf4: return nf4;
  }
  return f32;
}

const WeightKernels& weight_kernels(StoreFormat format) {
  static const bool portable_only = [] {
    const char* kernel = std::getenv("FINETUNE_NATIVE_KERNEL");
    return kernel != nullptr && std::strcmp(kernel, "portable") == 0;
  }();
  const WeightKernels* simd = portable_only ? nullptr : avx2_weight_kernels(format);
  return simd != nullptr ? *simd : portable_weight_kernels(format);
}

}  // namespace finetune
