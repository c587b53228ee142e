// The per-format inner loops over a WeightStore: dequantizing part of a row (for the GEMM panels, embedding rows
// and tests) and the fused dequantize-and-dot of decoding. Every kernel produces the same dequantized values, bit
// for bit: float32(code value · scale) for int8/nf4, the exact widening for bf16/f16.
#pragma once

#include <cstdint>

#include "weight_store.h"

namespace finetune {

struct WeightKernels {
  // out[0 : c1 - c0] = W[r, c0:c1] as float32; c0 is a multiple of kQuantBlock.
  void (*dequantize)(const WeightStore& w, int64_t r, int64_t c0, int64_t c1, float* out);
  // y[i·ldy + r] = Σ_j x[i·ldx + j] · W[r, j] for r in [r0, r1), i < m ≤ kStreamingRows. Each sum runs in an order
  // fixed by cols alone, so it does not matter which thread computes which rows.
  void (*rows_dot)(const WeightStore& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy, int64_t r0,
                   int64_t r1);
  // acc[i·ld + (c - c0)] += xr[i] · W[r, c] for c in [c0, c1), i < m ≤ kStreamingRows; c0 is a multiple of
  // kQuantBlock. One row of W into the running sums of x·W for a few rows of x.
  void (*row_axpy)(const WeightStore& w, int64_t r, int64_t c0, int64_t c1, const float* xr, int64_t m, float* acc,
                   int64_t ld);
};

const WeightKernels& portable_weight_kernels(StoreFormat format);
// Null when the CPU (or the compiler) cannot run AVX2 + FMA (+ F16C for f16).
const WeightKernels* avx2_weight_kernels(StoreFormat format);
// AVX2 where it runs, unless FINETUNE_NATIVE_KERNEL=portable; chosen once.
const WeightKernels& weight_kernels(StoreFormat format);

}  // namespace finetune
