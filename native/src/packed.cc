#include "packed.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

namespace finetune {
namespace {

// Below this many flops a product finishes before a parked worker would wake up.
constexpr double kParallelMinFlops = 4.0e6;
constexpr int64_t kMaxPanel = 16;  // widest mr/nr of any kernel
constexpr int64_t kDirectPanels = 4;  // at most this many B panels: A is read in place, not packed

int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

float* aligned_buffer(std::vector<float>& storage, size_t floats) {
  constexpr size_t kAlign = 64;
  const size_t want = floats + kAlign / sizeof(float);
  if (storage.size() < want) {
    storage.clear();
    storage.shrink_to_fit();
    storage.resize(want);
  }
  auto address = reinterpret_cast<uintptr_t>(storage.data());
  return reinterpret_cast<float*>((address + kAlign - 1) / kAlign * kAlign);
}

// Packs op(A)[i0:i0+mc, p0:p0+kc] as mr-row panels, k-major within a panel, zero-padding the last panel.
void pack_a(const GemmArgs& g, const float* a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, float* out) {
  for (int64_t ir = 0; ir < mc; ir += mr) {
    const int rows = static_cast<int>(std::min<int64_t>(mr, mc - ir));
    if (!g.trans_a) {
      // A is m x k: each panel row is a contiguous run of k.
      const float* src[kMaxPanel];
      for (int r = 0; r < rows; ++r) src[r] = a + (i0 + ir + r) * g.k + p0;
      for (int64_t k = 0; k < kc; ++k) {
        float* dst = out + k * mr;
        for (int r = 0; r < rows; ++r) dst[r] = src[r][k];
        for (int r = rows; r < mr; ++r) dst[r] = 0.0f;
      }
    } else {
      // A is stored k x m: the panel's rows are adjacent for each k.
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = a + (p0 + k) * g.m + i0 + ir;
        float* dst = out + k * mr;
        for (int r = 0; r < rows; ++r) dst[r] = src[r];
        for (int r = rows; r < mr; ++r) dst[r] = 0.0f;
      }
    }
    out += static_cast<int64_t>(mr) * kc;
  }
}

// Packs op(B)[p0:p0+kc, j0:j0+nc] as nr-column panels, k-major within a panel, zero-padding the last panel.
void pack_b(const GemmArgs& g, const float* b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, float* out) {
  for (int64_t jr = 0; jr < nc; jr += nr) {
    const int cols = static_cast<int>(std::min<int64_t>(nr, nc - jr));
    if (!g.trans_b) {
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = b + (p0 + k) * g.n + j0 + jr;
        float* dst = out + k * nr;
        for (int j = 0; j < cols; ++j) dst[j] = src[j];
        for (int j = cols; j < nr; ++j) dst[j] = 0.0f;
      }
    } else {
      // B is stored n x k: each panel column is a contiguous run of k.
      const float* src[kMaxPanel];
      for (int j = 0; j < cols; ++j) src[j] = b + (j0 + jr + j) * g.k + p0;
      for (int64_t k = 0; k < kc; ++k) {
        float* dst = out + k * nr;
        for (int j = 0; j < cols; ++j) dst[j] = src[j][k];
        for (int j = cols; j < nr; ++j) dst[j] = 0.0f;
      }
    }
    out += static_cast<int64_t>(nr) * kc;
  }
}

// kc for a k split into equal blocks no larger than spec.kc (300 -> 150 + 150, not 256 + 44).
int64_t balanced_kc(const KernelSpec& spec, int64_t k) {
  const int64_t blocks = (k + spec.kc - 1) / spec.kc;
  return (k + blocks - 1) / blocks;
}

// C[r0:r1, c0:c1] of one batch entry, on one worker.
void block(const KernelSpec& spec, const GemmArgs& g, const float* a, const float* b, float* c, int64_t r0,
           int64_t r1, int64_t c0, int64_t c1, const Workspace& ws) {
  const int64_t kc_max = balanced_kc(spec, g.k);
  // op(A) element (i, p) is a[i * rs_a + p * cs_a].
  const int64_t rs_a = g.trans_a ? 1 : g.k;
  const int64_t cs_a = g.trans_a ? g.m : 1;
  for (int64_t jc = c0; jc < c1; jc += spec.nc) {
    const int64_t nc = std::min(spec.nc, c1 - jc);
    // With few B panels each A value is used only a few times, so packing A would cost more than it saves:
    // read A in place, each row panel once, while the whole (small) packed B block stays in cache.
    const bool direct_a = nc <= kDirectPanels * spec.nr;
    for (int64_t pc = 0; pc < g.k; pc += kc_max) {
      const int64_t kc = std::min(kc_max, g.k - pc);
      pack_b(g, b, pc, kc, jc, nc, spec.nr, ws.b);
      if (direct_a) {
        for (int64_t ir = r0; ir < r1; ir += spec.mr) {
          const int mr = static_cast<int>(std::min<int64_t>(spec.mr, r1 - ir));
          for (int64_t jr = 0; jr < nc; jr += spec.nr) {
            const int nr = static_cast<int>(std::min<int64_t>(spec.nr, nc - jr));
            spec.fn(kc, a + ir * rs_a + pc * cs_a, rs_a, cs_a, ws.b + jr * kc, c + ir * g.n + jc + jr, g.n, mr, nr, pc > 0);
          }
        }
        continue;
      }
      for (int64_t ic = r0; ic < r1; ic += spec.mc) {
        const int64_t mc = std::min(spec.mc, r1 - ic);
        pack_a(g, a, ic, mc, pc, kc, spec.mr, ws.a);
        // jr outside ir: one kc x nr panel of B stays in L1 while the A panels stream from L2.
        for (int64_t jr = 0; jr < nc; jr += spec.nr) {
          const int nr = static_cast<int>(std::min<int64_t>(spec.nr, nc - jr));
          for (int64_t ir = 0; ir < mc; ir += spec.mr) {
            const int mr = static_cast<int>(std::min<int64_t>(spec.mr, mc - ir));
            spec.fn(kc, ws.a + ir * kc, 1, spec.mr, ws.b + jr * kc, c + (ic + ir) * g.n + jc + jr, g.n, mr, nr, pc > 0);
          }
        }
      }
    }
  }
}

}  // namespace

void packed_sgemm(const KernelSpec& spec, const GemmArgs& g, ThreadPool& pool, std::vector<Workspace>& workspaces) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  if (g.k == 0) {
    for (int64_t i = 0; i < g.batch; ++i) std::memset(g.c + i * g.stride_c, 0, sizeof(float) * g.m * g.n);
    return;
  }
  const double flops = 2.0 * static_cast<double>(g.m) * static_cast<double>(g.n) * static_cast<double>(g.k) *
                       static_cast<double>(g.batch);
  const int workers = flops < kParallelMinFlops ? 1 : pool.size();

  // Tasks: every batch entry split into `pieces` along its longer side (rows by default). Splitting only
  // when the batch count does not already divide evenly keeps each worker on whole matrices when it can.
  const int64_t pieces = (workers > 1 && g.batch % workers != 0) ? workers : 1;
  const bool by_rows = g.m >= g.n;
  const int64_t extent = by_rows ? g.m : g.n;
  const int64_t unit = by_rows ? spec.mr : spec.nr;
  const int64_t chunk = round_up((extent + pieces - 1) / pieces, unit);
  const int64_t tasks = g.batch * pieces;

  const int64_t kc = balanced_kc(spec, g.k);
  const size_t a_floats = static_cast<size_t>(round_up(std::min(spec.mc, g.m), spec.mr) * kc);
  const size_t b_floats = static_cast<size_t>(round_up(std::min(spec.nc, g.n), spec.nr) * kc);
  for (int w = 0; w < workers; ++w) {
    Workspace& ws = workspaces[static_cast<size_t>(w)];
    ws.a = aligned_buffer(ws.a_storage, a_floats);
    ws.b = aligned_buffer(ws.b_storage, b_floats);
  }

  std::atomic<int64_t> next{0};
  pool.run(workers, [&](int worker) {
    const Workspace& ws = workspaces[static_cast<size_t>(worker)];
    for (int64_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) {
      const int64_t i = t / pieces;
      const int64_t lo = (t % pieces) * chunk;
      const int64_t hi = std::min(extent, lo + chunk);
      if (lo >= hi) continue;
      const float* a = g.a + i * g.stride_a;
      const float* b = g.b + i * g.stride_b;
      float* c = g.c + i * g.stride_c;
      if (by_rows) block(spec, g, a, b, c, lo, hi, 0, g.n, ws);
      else block(spec, g, a, b, c, 0, g.m, lo, hi, ws);
    }
  });
}

}  // namespace finetune
