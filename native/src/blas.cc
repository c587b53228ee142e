#include "blas.h"

#include <cstring>
#include <thread>

#if defined(FINETUNE_OPENBLAS)
#include <cblas.h>
// Declared here too because a generic cblas.h (reference BLAS) found first on the include path lacks them.
extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
}
#elif defined(FINETUNE_ACCELERATE)
#include <Accelerate/Accelerate.h>
#endif

namespace finetune {

#if defined(FINETUNE_OPENBLAS) || defined(FINETUNE_ACCELERATE)

bool blas_available() { return true; }

int blas_threads(int threads) {
#if defined(FINETUNE_OPENBLAS)
  if (threads > 0) openblas_set_num_threads(threads);
  return openblas_get_num_threads();
#else
  // Accelerate schedules its own threads.
  const unsigned cores = std::thread::hardware_concurrency();
  return threads > 0 ? threads : (cores == 0 ? 1 : static_cast<int>(cores));
#endif
}

void blas_sgemm(const GemmArgs& g) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  if (g.k == 0) {
    // Leading dimensions would be 0, which cblas rejects with a message on stderr.
    for (int64_t i = 0; i < g.batch; ++i) std::memset(g.c + i * g.stride_c, 0, sizeof(float) * g.m * g.n);
    return;
  }
  const auto m = static_cast<int>(g.m), n = static_cast<int>(g.n), k = static_cast<int>(g.k);
  const int lda = g.trans_a ? m : k;
  const int ldb = g.trans_b ? k : n;
  for (int64_t i = 0; i < g.batch; ++i) {
    if (m == 1) {
      // One row (decoding a token): a matrix-vector product, which BLAS streams at memory bandwidth; sgemm with
      // M = 1 does not. c = a·op(B): with B stored [k, n] that is Bᵀ·a, with B stored [n, k] (trans_b) it is B·a.
      cblas_sgemv(CblasRowMajor, g.trans_b ? CblasNoTrans : CblasTrans, g.trans_b ? n : k, g.trans_b ? k : n, 1.0f,
                  g.b + i * g.stride_b, ldb, g.a + i * g.stride_a, 1, 0.0f, g.c + i * g.stride_c, 1);
      continue;
    }
    cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans, g.trans_b ? CblasTrans : CblasNoTrans, m, n, k,
                1.0f, g.a + i * g.stride_a, lda, g.b + i * g.stride_b, ldb, 0.0f, g.c + i * g.stride_c, n);
  }
}

#else

bool blas_available() { return false; }
int blas_threads(int) { return 0; }
void blas_sgemm(const GemmArgs&) {}

#endif

}  // namespace finetune
