// Batched row-major fp32 GEMM: C_i = op(A_i) * op(B_i) for i < batch.
#pragma once

#include <cstdint>
#include <functional>

namespace finetune {

struct GemmArgs {
  const float* a;
  const float* b;
  float* c;
  int64_t m, n, k;
  bool trans_a, trans_b;
  int64_t batch;
  // In elements; 0 repeats the same matrix for every batch (broadcast).
  int64_t stride_a, stride_b, stride_c;
};

enum class Kernel { OpenBlas, Accelerate, Avx2Fma, Portable };

const char* kernel_name(Kernel kernel);

// The kernel and thread count chosen once, at first use, from the build, the CPU and the environment.
Kernel active_kernel();
int thread_count();
struct GemvKernels;
// The streaming kernels sgemm uses for few rows (AVX2 where it runs, else portable), for callers that stream
// their own small products (the decoder's attention).
const GemvKernels& active_gemv_kernels();

// Overwrites every C_i (also when k == 0). May throw std::bad_alloc or std::system_error.
void sgemm(const GemmArgs& args);

// Runs item(i) for every i < count on up to `workers` threads of the GEMM's pool, each pulling the next index, one
// call at a time with the GEMM kernels that share the pool (so never from inside an item or a GEMM). The weight
// store uses it to quantize, dequantize and stream its rows. `item` must not throw.
void parallel_for(int64_t count, int64_t workers, const std::function<void(int64_t)>& item);

}  // namespace finetune
