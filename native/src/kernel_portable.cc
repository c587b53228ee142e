// Plain C++ micro-kernel for CPUs without AVX2 (and non-x86 builds without a BLAS). GCC and Clang get 4-float
// vector types, which map to SSE2 or NEON; other compilers get scalar loops.
#include <cstring>

#include "microkernel.h"

namespace finetune {
namespace {

constexpr int kMr = 6;
constexpr int kNr = 8;

void write_tile(const float (&tile)[kMr][kNr], float* c, int64_t ldc, int mr, int nr, bool accumulate) {
  for (int i = 0; i < mr; ++i) {
    float* row = c + i * ldc;
    for (int j = 0; j < nr; ++j) row[j] = accumulate ? row[j] + tile[i][j] : tile[i][j];
  }
}

#if defined(__GNUC__) || defined(__clang__)

typedef float v4 __attribute__((vector_size(16)));

void kernel_6x8(int64_t kc, const float* a, int64_t rs_a, int64_t cs_a, const float* bp, float* c, int64_t ldc, int mr,
                int nr, bool accumulate) {
  const float* rows[kMr];
  for (int i = 0; i < kMr; ++i) rows[i] = a + (i < mr ? i : mr - 1) * rs_a;
  // 12 accumulators + 2 B vectors + 1 broadcast: within the 16 registers of SSE2 and NEON.
  v4 acc[kMr][2] = {};
  int64_t at = 0;
  for (int64_t k = 0; k < kc; ++k) {
    v4 b0, b1;
    std::memcpy(&b0, bp, sizeof b0);
    std::memcpy(&b1, bp + 4, sizeof b1);
    for (int i = 0; i < kMr; ++i) {
      const float x = rows[i][at];
      const v4 xs = {x, x, x, x};
      acc[i][0] += xs * b0;
      acc[i][1] += xs * b1;
    }
    at += cs_a;
    bp += kNr;
  }
  float tile[kMr][kNr];
  std::memcpy(tile, acc, sizeof tile);
  write_tile(tile, c, ldc, mr, nr, accumulate);
}

#else

void kernel_6x8(int64_t kc, const float* a, int64_t rs_a, int64_t cs_a, const float* bp, float* c, int64_t ldc, int mr,
                int nr, bool accumulate) {
  const float* rows[kMr];
  for (int i = 0; i < kMr; ++i) rows[i] = a + (i < mr ? i : mr - 1) * rs_a;
  float tile[kMr][kNr] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < kMr; ++i) {
      const float x = rows[i][k * cs_a];
      for (int j = 0; j < kNr; ++j) tile[i][j] += x * bp[j];
    }
    bp += kNr;
  }
  write_tile(tile, c, ldc, mr, nr, accumulate);
}

#endif

}  // namespace

const KernelSpec* portable_kernel() {
  static const KernelSpec spec{kMr, kNr, 120, 256, 2048, kernel_6x8};
  return &spec;
}

}  // namespace finetune
