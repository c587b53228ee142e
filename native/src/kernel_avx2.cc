// 6x16 AVX2/FMA micro-kernel: 12 ymm accumulators, two B vectors and one broadcast A value fit the 16 registers.
// Only these functions are compiled for AVX2 (target attribute, not a file-wide -mavx2), so the rest of the
// addon, and any inline library code it instantiates, still runs on CPUs without AVX2.
#include "microkernel.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FINETUNE_HAVE_AVX2_KERNEL 1
#include <immintrin.h>
#endif

namespace finetune {

#ifdef FINETUNE_HAVE_AVX2_KERNEL
namespace {

constexpr int kMr = 6;
constexpr int kNr = 16;

__attribute__((target("avx2,fma"))) void store_row(float* c, __m256 lo, __m256 hi, bool accumulate) {
  if (accumulate) {
    lo = _mm256_add_ps(lo, _mm256_loadu_ps(c));
    hi = _mm256_add_ps(hi, _mm256_loadu_ps(c + 8));
  }
  _mm256_storeu_ps(c, lo);
  _mm256_storeu_ps(c + 8, hi);
}

__attribute__((target("avx2,fma"))) void kernel_6x16(int64_t kc, const float* a, int64_t rs_a, int64_t cs_a,
                                                     const float* bp, float* c, int64_t ldc, int mr, int nr,
                                                     bool accumulate) {
  const float* a0 = a;
  const float* a1 = a + (mr > 1 ? 1 : 0) * rs_a;
  const float* a2 = a + (mr > 2 ? 2 : mr - 1) * rs_a;
  const float* a3 = a + (mr > 3 ? 3 : mr - 1) * rs_a;
  const float* a4 = a + (mr > 4 ? 4 : mr - 1) * rs_a;
  const float* a5 = a + (mr > 5 ? 5 : mr - 1) * rs_a;
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  int64_t at = 0;
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(bp);
    const __m256 b1 = _mm256_load_ps(bp + 8);
    __m256 x = _mm256_broadcast_ss(a0 + at);
    c00 = _mm256_fmadd_ps(x, b0, c00);
    c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a1 + at);
    c10 = _mm256_fmadd_ps(x, b0, c10);
    c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a2 + at);
    c20 = _mm256_fmadd_ps(x, b0, c20);
    c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a3 + at);
    c30 = _mm256_fmadd_ps(x, b0, c30);
    c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(a4 + at);
    c40 = _mm256_fmadd_ps(x, b0, c40);
    c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(a5 + at);
    c50 = _mm256_fmadd_ps(x, b0, c50);
    c51 = _mm256_fmadd_ps(x, b1, c51);
    at += cs_a;
    bp += kNr;
  }
  if (mr == kMr && nr == kNr) {
    store_row(c + 0 * ldc, c00, c01, accumulate);
    store_row(c + 1 * ldc, c10, c11, accumulate);
    store_row(c + 2 * ldc, c20, c21, accumulate);
    store_row(c + 3 * ldc, c30, c31, accumulate);
    store_row(c + 4 * ldc, c40, c41, accumulate);
    store_row(c + 5 * ldc, c50, c51, accumulate);
    return;
  }
  // Edge tile: spill to a local tile, then write only the valid part so C is never touched out of range.
  alignas(32) float tile[kMr * kNr];
  _mm256_store_ps(tile + 0 * kNr, c00), _mm256_store_ps(tile + 0 * kNr + 8, c01);
  _mm256_store_ps(tile + 1 * kNr, c10), _mm256_store_ps(tile + 1 * kNr + 8, c11);
  _mm256_store_ps(tile + 2 * kNr, c20), _mm256_store_ps(tile + 2 * kNr + 8, c21);
  _mm256_store_ps(tile + 3 * kNr, c30), _mm256_store_ps(tile + 3 * kNr + 8, c31);
  _mm256_store_ps(tile + 4 * kNr, c40), _mm256_store_ps(tile + 4 * kNr + 8, c41);
  _mm256_store_ps(tile + 5 * kNr, c50), _mm256_store_ps(tile + 5 * kNr + 8, c51);
  for (int i = 0; i < mr; ++i) {
    float* row = c + i * ldc;
    const float* src = tile + i * kNr;
    for (int j = 0; j < nr; ++j) row[j] = accumulate ? row[j] + src[j] : src[j];
  }
}

}  // namespace

const KernelSpec* avx2_fma_kernel() {
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  // mc x kc of A (168 KB) fits a 512 KB+ L2; kc x 16 of B (16 KB) stays in L1 while A panels stream past it.
  static const KernelSpec spec{kMr, kNr, 168, 256, 4080, kernel_6x16};
  return supported ? &spec : nullptr;
}

#else

const KernelSpec* avx2_fma_kernel() { return nullptr; }

#endif

}  // namespace finetune
