// Cache-blocked, packed GEMM (the Goto/BLIS loop nest) over a register micro-kernel, split across a pool.
#pragma once

#include <vector>

#include "gemm.h"
#include "microkernel.h"
#include "thread_pool.h"

namespace finetune {

// Packing buffers of one worker, kept between calls so they are allocated and first-touched once.
struct Workspace {
  std::vector<float> a_storage, b_storage;
  float* a = nullptr;
  float* b = nullptr;
};

// Runs on up to pool.size() workers; `workspaces` needs one entry per pool worker. Allocation happens on the
// calling thread before any worker starts, so a std::bad_alloc surfaces here and never inside a worker.
void packed_sgemm(const KernelSpec& spec, const GemmArgs& g, ThreadPool& pool, std::vector<Workspace>& workspaces);

}  // namespace finetune
