// What the addon does with a WeightStore: products for training and prefill (dequantized panels through the
// GEMM), streaming products for decoding, and row lookups. Every function may throw std::bad_alloc or
// std::system_error; the caller has checked every pointer's extent.
#pragma once

#include <cstdint>

#include "weight_store.h"

namespace finetune {

// transposed = false: x [n, cols] → y [n, rows] = x·Wᵀ.  transposed = true: x [n, rows] → y [n, cols] = x·W.
// y is overwritten and must not overlap x.
void weights_matmul(const WeightStore& w, const float* x, int64_t n, float* y, bool transposed);

// out[i, :] = W[ids[i], :] dequantized, for i < count; every id is in [0, rows).
void weights_rows(const WeightStore& w, const int32_t* ids, int64_t count, float* out);

// out [rows, cols] = all of W dequantized.
void weights_dequantize(const WeightStore& w, float* out);

}  // namespace finetune
