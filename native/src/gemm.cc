#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "blas.h"
#include "gemv.h"
#include "microkernel.h"
#include "packed.h"
#include "thread_pool.h"

namespace finetune {
namespace {

// FINETUNE_THREADS, when it is a positive integer; 0 otherwise.
int threads_from_env() {
  const char* value = std::getenv("FINETUNE_THREADS");
  if (value == nullptr || *value == '\0') return 0;
  char* end = nullptr;
  const long n = std::strtol(value, &end, 10);
  return (*end == '\0' && n > 0 && n <= 1024) ? static_cast<int>(n) : 0;
}

int default_threads() {
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : static_cast<int>(cores);
}

bool env_is(const char* name, const char* expected) {
  const char* value = std::getenv(name);
  return value != nullptr && std::strcmp(value, expected) == 0;
}

struct State {
  Kernel kernel = Kernel::Portable;
  const KernelSpec* spec = nullptr;  // null for the BLAS kernels
  int threads = 1;
  ThreadPool* pool = nullptr;
  std::vector<Workspace> workspaces;
  // Products with a few rows (decoding): our streaming kernels where AVX2 runs (they beat OpenBLAS's sgemv and
  // small-M sgemm on decode shapes), otherwise the linked BLAS, otherwise the portable loops.
  const GemvKernels* gemv = nullptr;
  GemvScratch gemv_scratch;
  std::mutex call;  // one product at a time: the pool and the workspaces are shared
};

State* make_state() {
  auto* s = new State();
  const int requested = threads_from_env();
  // FINETUNE_NATIVE_KERNEL picks a built-in kernel even when a BLAS was linked (tests and benchmarks).
  const bool want_avx2 = env_is("FINETUNE_NATIVE_KERNEL", "avx2-fma");
  const bool want_portable = env_is("FINETUNE_NATIVE_KERNEL", "portable");
  if (blas_available() && !want_avx2 && !want_portable) {
#if defined(FINETUNE_ACCELERATE)
    s->kernel = Kernel::Accelerate;
#else
    s->kernel = Kernel::OpenBlas;
#endif
    s->threads = blas_threads(requested);
    s->gemv = avx2_gemv_kernels();
    // Also for parallel_for (the weight store); a pool starts no thread before its first parallel job.
    s->pool = new ThreadPool(s->threads);
    return s;
  }
  const KernelSpec* avx2 = want_portable ? nullptr : avx2_fma_kernel();
  s->kernel = avx2 != nullptr ? Kernel::Avx2Fma : Kernel::Portable;
  s->spec = avx2 != nullptr ? avx2 : portable_kernel();
  s->threads = requested > 0 ? requested : default_threads();
  s->pool = new ThreadPool(s->threads);
  s->workspaces.resize(static_cast<size_t>(s->threads));
  s->gemv = avx2 != nullptr ? avx2_gemv_kernels() : nullptr;
  if (s->gemv == nullptr) s->gemv = &portable_gemv_kernels();
  return s;
}

// Created on first use and never destroyed: parked pool workers may outlive static destruction at exit.
State& state() {
  static State* s = make_state();
  return *s;
}

}  // namespace

const char* kernel_name(Kernel kernel) {
  switch (kernel) {
    case Kernel::OpenBlas: return "openblas";
    case Kernel::Accelerate: return "accelerate";
    case Kernel::Avx2Fma: return "avx2-fma";
    case Kernel::Portable: return "portable";
  }
  return "portable";
}

Kernel active_kernel() { return state().kernel; }

int thread_count() { return state().threads; }

const GemvKernels& active_gemv_kernels() {
  const GemvKernels* kernels = state().gemv;
  return kernels != nullptr ? *kernels : portable_gemv_kernels();
}

void sgemm(const GemmArgs& args) {
  State& s = state();
  if (args.m >= 1 && args.m <= kStreamingRows && s.gemv != nullptr) {
    std::lock_guard<std::mutex> lock(s.call);
    gemv(args, *s.gemv, *s.pool, s.gemv_scratch);
    return;
  }
  if (s.spec == nullptr) {
    blas_sgemm(args);
    return;
  }
  std::lock_guard<std::mutex> lock(s.call);
  packed_sgemm(*s.spec, args, *s.pool, s.workspaces);
}

void parallel_for(int64_t count, int64_t workers, const std::function<void(int64_t)>& item) {
  if (count <= 0) return;
  State& s = state();
  std::lock_guard<std::mutex> lock(s.call);
  std::atomic<int64_t> next{0};
  s.pool->run(static_cast<int>(std::clamp<int64_t>(workers, 1, count)), [&](int) {
    for (int64_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) item(i);
  });
}

}  // namespace finetune
