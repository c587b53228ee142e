// The system BLAS, when the build found one (FINETUNE_OPENBLAS or FINETUNE_ACCELERATE).
#pragma once

#include "gemm.h"

namespace finetune {

bool blas_available();
// Sets the BLAS thread count when `threads` > 0, and returns the count it will use.
int blas_threads(int threads);
void blas_sgemm(const GemmArgs& g);

}  // namespace finetune
