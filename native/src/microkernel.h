// The register-blocked inner kernels the packed GEMM is built on.
#pragma once

#include <cstdint>

namespace finetune {

// C[0:mr, 0:nr] = (or +=, when accumulate) A * Bp over kc steps. A element (r, k) is a[r * rs_a + k * cs_a]: a packed
// panel (rs_a 1, cs_a MR) or the caller's matrix read in place. Bp is a packed kc x NR panel (NR floats per k,
// 32-byte aligned). Rows past mr reread row mr - 1 (never out of bounds) and, like columns past nr, are never written.
using MicroKernel = void (*)(int64_t kc, const float* a, int64_t rs_a, int64_t cs_a, const float* bp, float* c, int64_t ldc,
                             int mr, int nr, bool accumulate);

struct KernelSpec {
  int mr, nr;          // register tile
  int64_t mc, kc, nc;  // cache blocks: A block mc x kc stays in L2, B panel kc x nc in L3
  MicroKernel fn;
};

// Null when the CPU (or the compiler) cannot run AVX2 + FMA.
const KernelSpec* avx2_fma_kernel();
const KernelSpec* portable_kernel();

}  // namespace finetune
