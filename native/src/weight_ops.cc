#include "weight_ops.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "gemm.h"
#include "gemv.h"
#include "weight_kernels.h"

namespace finetune {
namespace {

// Dequantized weights per GEMM call (4 MB): large enough that the GEMM runs near its full speed on the panel and
// re-reading x for each panel costs little, small enough that a 128256 x 2048 LM head never needs 1 GB of floats.
constexpr int64_t kPanelFloats = int64_t{1} << 20;
// The longest reduction one GEMM call of the panel path takes: panels of 1M floats are then at least 512 wide.
constexpr int64_t kDepthChunk = 2048;
// Dequantized floats (or, when streaming, stored bytes) per parallel task: below this a second thread costs more
// than it saves.
constexpr int64_t kTaskFloats = 65536;
constexpr int64_t kStreamTaskBytes = 131072;
constexpr int64_t kMaxStreamTasks = 64;
constexpr int64_t kMaxSplitChunks = 8;  // partial sums of a streaming x·W, added in chunk order

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The panel, product, x-chunk and partial-sum buffers, kept between calls (allocating and faulting in 4 MB per call costs
// more than a small product); one weight product at a time uses them.
struct Scratch {
  std::mutex lock;
  std::vector<float> panel, product, columns, partials;
};

Scratch& scratch() {
  static Scratch* s = new Scratch();  // never destroyed, like the GEMM's state
  return *s;
}

// Runs rows(r0, r1) over [0, count) in tasks of about kTaskFloats floats each (`per_row` floats per row), on up to
// `workers` threads.
template <typename Rows>
void parallel_rows(int64_t count, int64_t per_row, const Rows& rows, int64_t workers = thread_count()) {
  const int64_t step = std::max<int64_t>(1, kTaskFloats / std::max<int64_t>(1, per_row));
  parallel_for(ceil_div(count, step), workers, [&](int64_t task) {
    rows(task * step, std::min(count, (task + 1) * step));
  });
}

// Decoding: each row of W streamed once for all n ≤ kStreamingRows rows of x, rows split across the pool. A row's
// sum is computed whole by one thread, so the result does not depend on the thread count.
void stream(const WeightStore& w, const float* x, int64_t n, float* y) {
  const WeightKernels& kernels = weight_kernels(w.format);
  const int64_t tasks = std::clamp<int64_t>(w.bytes() / kStreamTaskBytes, 1, kMaxStreamTasks);
  const int64_t step = ceil_div(w.rows, tasks);
  parallel_for(ceil_div(w.rows, step), thread_count(), [&](int64_t task) {
    kernels.rows_dot(w, x, w.cols, n, y, w.rows, task * step, std::min(w.rows, (task + 1) * step));
  });
}

// Decoding-sized x·W (x [n, rows], n ≤ kStreamingRows): W streamed row after row, contiguously. Rows are cut into
// at most kMaxSplitChunks chunks by the shape alone; each chunk sums into its own buffer (chunk 0 into y), and the
// buffers are added in chunk order, so the result does not depend on which thread ran which chunk.
void stream_transposed(const WeightStore& w, const float* x, int64_t n, float* y) {
  const WeightKernels& kernels = weight_kernels(w.format);
  const int64_t chunks = std::clamp<int64_t>(std::min(w.bytes() / kStreamTaskBytes, w.rows / 32), 1, kMaxSplitChunks);
  const int64_t step = ceil_div(w.rows, chunks);
  const int64_t outputs = n * w.cols;
  Scratch& s = scratch();
  std::lock_guard<std::mutex> lock(s.lock);
  s.partials.resize(static_cast<size_t>((chunks - 1) * outputs));
  float* partials = s.partials.data();
  parallel_for(chunks, thread_count(), [&](int64_t chunk) {
    float* sums = chunk == 0 ? y : partials + (chunk - 1) * outputs;
    std::fill(sums, sums + outputs, 0.0f);
    float xr[kStreamingRows];
    for (int64_t r = chunk * step; r < std::min(w.rows, (chunk + 1) * step); ++r) {
      for (int64_t i = 0; i < n; ++i) xr[i] = x[i * w.rows + r];
      kernels.row_axpy(w, r, 0, w.cols, xr, n, sums, w.cols);
    }
  });
  for (int64_t chunk = 1; chunk < chunks; ++chunk) {
    const float* part = partials + (chunk - 1) * outputs;
    for (int64_t j = 0; j < outputs; ++j) y[j] += part[j];
  }
}

// Training and prefill: blocks of W dequantized into a panel, each multiplied by the GEMM. Outputs (rows of W for
// x·Wᵀ, columns for x·W) are cut into panels of `width`; a long reduction (depth, e.g. a down projection's 8192)
// is cut into chunks of at most kDepthChunk, whose products are added into y in chunk order. Without the depth
// chunks a panel of a deep matrix would be only a few outputs wide, and the GEMM would pack all of x again for
// each of many thin panels.
void panels(const WeightStore& w, const float* x, int64_t n, float* y, bool transposed) {
  const int64_t outputs = transposed ? w.cols : w.rows;
  const int64_t depth = transposed ? w.rows : w.cols;
  // Depth chunks of equal size, whole blocks (so a chunk of a row starts on a block).
  const int64_t chunks = ceil_div(depth, kDepthChunk);
  const int64_t chunk = chunks == 1 ? depth : ceil_div(ceil_div(depth, chunks), kQuantBlock) * kQuantBlock;
  // A multiple of kQuantBlock too, so a column panel starts on a block.
  const int64_t width = std::min(outputs, std::max(kQuantBlock, kPanelFloats / chunk / kQuantBlock * kQuantBlock));
  const bool direct = width == outputs && chunks == 1;  // one product: the GEMM writes y itself
  const WeightKernels& kernels = weight_kernels(w.format);
  // A BLAS runs its own threads, which spin for a while after each call, as ours do after a job: sharing the cores
  // between the two pools at every panel would cost more than dequantizing on one thread (about 1% of the product).
  const Kernel gemm = active_kernel();
  const int64_t workers = gemm == Kernel::OpenBlas || gemm == Kernel::Accelerate ? 1 : thread_count();

  Scratch& s = scratch();
  std::lock_guard<std::mutex> lock(s.lock);
  s.panel.resize(static_cast<size_t>(width * chunk));
  if (!direct) s.product.resize(static_cast<size_t>(n * width));
  if (chunks > 1) s.columns.resize(static_cast<size_t>(n * chunk));
  float* panel = s.panel.data();
  for (int64_t d0 = 0; d0 < depth; d0 += chunk) {
    const int64_t dc = std::min(chunk, depth - d0);
    // x[:, d0 : d0 + dc], contiguous for the GEMM (copied once per chunk, not once per panel).
    const float* xs = x;
    if (chunks > 1) {
      float* columns = s.columns.data();
      for (int64_t i = 0; i < n; ++i) std::memcpy(columns + i * dc, x + i * depth + d0, static_cast<size_t>(dc) * 4);
      xs = columns;
    }
    for (int64_t p0 = 0; p0 < outputs; p0 += width) {
      const int64_t pw = std::min(width, outputs - p0);
      if (!transposed) {
        // W[p0 : p0 + pw, d0 : d0 + dc]: panel [pw, dc], multiplied transposed.
        parallel_rows(pw, dc, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i) kernels.dequantize(w, p0 + i, d0, d0 + dc, panel + i * dc);
        }, workers);
      } else {
        // W[d0 : d0 + dc, p0 : p0 + pw]: panel [dc, pw].
        parallel_rows(dc, pw, [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) kernels.dequantize(w, d0 + r, p0, p0 + pw, panel + r * pw);
        }, workers);
      }
      GemmArgs g{};
      g.a = xs;
      g.b = panel;
      g.c = direct ? y : s.product.data();
      g.m = n;
      g.n = pw;
      g.k = dc;
      g.trans_b = !transposed;
      g.batch = 1;
      sgemm(g);
      if (direct) continue;
      for (int64_t i = 0; i < n; ++i) {
        float* out = y + i * outputs + p0;
        const float* product = g.c + i * pw;
        if (d0 == 0) {
          std::memcpy(out, product, static_cast<size_t>(pw) * 4);
        } else {
          for (int64_t j = 0; j < pw; ++j) out[j] += product[j];
        }
      }
    }
  }
}

}  // namespace

void weights_matmul(const WeightStore& w, const float* x, int64_t n, float* y, bool transposed) {
  const int64_t outputs = transposed ? w.cols : w.rows;
  const int64_t depth = transposed ? w.rows : w.cols;
  if (n == 0 || outputs == 0) return;
  if (depth == 0) {
    std::fill(y, y + n * outputs, 0.0f);
    return;
  }
  if (w.format == StoreFormat::F32) {
    // Nothing to dequantize: the GEMM (or its streaming kernels for few rows) reads the store in place.
    GemmArgs g{};
    g.a = x;
    g.b = reinterpret_cast<const float*>(w.data.get());
    g.c = y;
    g.m = n;
    g.n = outputs;
    g.k = depth;
    g.trans_b = !transposed;
    g.batch = 1;
    sgemm(g);
    return;
  }
  if (n <= kStreamingRows) {
    if (transposed) stream_transposed(w, x, n, y);
    else stream(w, x, n, y);
    return;
  }
  panels(w, x, n, y, transposed);
}

void weights_rows(const WeightStore& w, const int32_t* ids, int64_t count, float* out) {
  const WeightKernels& kernels = weight_kernels(w.format);
  parallel_rows(count, w.cols, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) kernels.dequantize(w, ids[i], 0, w.cols, out + i * w.cols);
  });
}

void weights_dequantize(const WeightStore& w, float* out) {
  const WeightKernels& kernels = weight_kernels(w.format);
  parallel_rows(w.rows, w.cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) kernels.dequantize(w, r, 0, w.cols, out + r * w.cols);
  });
}

}  // namespace finetune
