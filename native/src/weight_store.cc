// Making a store: each row is read from the source bytes and quantized one block at a time, so a 128256 x 2048
// embedding needs its final store plus a few hundred bytes of scratch per thread, never a float32 copy.
#include "weight_store.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "float_formats.h"
#include "gemm.h"

namespace finetune {
namespace {

std::atomic<int64_t> live_bytes{0};

// Rows quantized per parallel task: about 64K elements, so a task is worth handing to another thread.
constexpr int64_t kTaskElements = 65536;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Elements [c0, c0 + count) of one source row, widened to float32 exactly (the source may be unaligned).
void read_source(const uint8_t* row, SourceDtype dtype, int64_t c0, int64_t count, float* out) {
  for (int64_t j = 0; j < count; ++j) {
    const int64_t c = c0 + j;
    if (dtype == SourceDtype::F32) {
      std::memcpy(&out[j], row + c * 4, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, row + c * 2, 2);
      out[j] = dtype == SourceDtype::F16 ? f16_to_float(h) : bf16_to_float(h);
    }
  }
}

float block_absmax(const float* values, int64_t count) {
  float absmax = 0.0f;
  for (int64_t j = 0; j < count; ++j) absmax = std::max(absmax, std::fabs(values[j]));  // a NaN is skipped
  return absmax;
}

// Round half away from zero, clamped to [-127, 127]; a NaN weight becomes 0. The fraction a - trunc(a) is exact,
// so comparing it with 0.5 rounds exactly (adding 0.5 first would not), without a libm call per weight.
int8_t int8_code(double t) {
  if (!(t == t)) return 0;
  const double magnitude = std::min(std::fabs(t), 127.0 + 0.5);
  double q = static_cast<double>(static_cast<int64_t>(magnitude));
  if (magnitude - q >= 0.5) q += 1.0;
  q = std::min(q, 127.0);
  return static_cast<int8_t>(t < 0 ? -q : q);
}

void quantize_int8_row(const uint8_t* source, SourceDtype dtype, WeightStore& w, int64_t r) {
  auto* codes = reinterpret_cast<int8_t*>(w.data.get() + r * w.row_bytes);
  float* scales = w.scales.get() + r * w.blocks_per_row;
  float block[kQuantBlock];
  for (int64_t b = 0; b < w.blocks_per_row; ++b) {
    const int64_t c0 = b * kQuantBlock;
    const int64_t count = std::min(kQuantBlock, w.cols - c0);
    read_source(source, dtype, c0, count, block);
    const float scale = block_absmax(block, count) / 127.0f;
    scales[b] = scale;
    for (int64_t j = 0; j < count; ++j) {
      codes[c0 + j] = scale == 0.0f ? 0 : int8_code(static_cast<double>(block[j]) / static_cast<double>(scale));
    }
  }
}

void quantize_nf4_row(const uint8_t* source, SourceDtype dtype, WeightStore& w, int64_t r) {
  uint8_t* packed = w.data.get() + r * w.row_bytes;
  float* scales = w.scales.get() + r * w.blocks_per_row;
  float block[kQuantBlock];
  uint8_t codes[kQuantBlock];
  for (int64_t b = 0; b < w.blocks_per_row; ++b) {
    const int64_t c0 = b * kQuantBlock;
    const int64_t count = std::min(kQuantBlock, w.cols - c0);
    read_source(source, dtype, c0, count, block);
    const float absmax = block_absmax(block, count);
    scales[b] = absmax;
    std::fill(codes, codes + kQuantBlock, kNf4Zero);
    for (int64_t j = 0; j < count; ++j) {
      codes[j] = absmax == 0.0f ? kNf4Zero : nf4_code(static_cast<double>(block[j]) / static_cast<double>(absmax));
    }
    // The block's groups (a block is whole groups, so none crosses a block), the padded tail included.
    for (int64_t g = 0; g < ceil_div(count, kNf4Group); ++g) {
      uint8_t* out = packed + (c0 + g * kNf4Group) / 2;
      const uint8_t* group = codes + g * kNf4Group;
      for (int p = 0; p < 8; ++p) out[nf4_byte(p)] = static_cast<uint8_t>(group[p] | (group[p + 8] << 4));
    }
  }
}

void store_row(const uint8_t* source, SourceDtype dtype, WeightStore& w, int64_t r) {
  const uint8_t* row = source + r * w.cols * source_element_bytes(dtype);
  uint8_t* out = w.data.get() + r * w.row_bytes;
  const bool same = (w.format == StoreFormat::F32 && dtype == SourceDtype::F32) ||
                    (w.format == StoreFormat::Bf16 && dtype == SourceDtype::Bf16) ||
                    (w.format == StoreFormat::F16 && dtype == SourceDtype::F16);
  if (same) {
    std::memcpy(out, row, static_cast<size_t>(w.row_bytes));
    return;
  }
  float chunk[kQuantBlock];
  switch (w.format) {
    case StoreFormat::F32:
    case StoreFormat::Bf16:
    case StoreFormat::F16:
      for (int64_t c0 = 0; c0 < w.cols; c0 += kQuantBlock) {
        const int64_t count = std::min(kQuantBlock, w.cols - c0);
        read_source(row, dtype, c0, count, chunk);
        for (int64_t j = 0; j < count; ++j) {
          const int64_t c = c0 + j;
          if (w.format == StoreFormat::F32) {
            std::memcpy(out + c * 4, &chunk[j], 4);
          } else {
            const uint16_t h = w.format == StoreFormat::Bf16 ? float_to_bf16(chunk[j]) : float_to_f16(chunk[j]);
            std::memcpy(out + c * 2, &h, 2);
          }
        }
      }
      return;
    case StoreFormat::Int8:
      quantize_int8_row(row, dtype, w, r);
      return;
    case StoreFormat::Nf4:
      quantize_nf4_row(row, dtype, w, r);
      return;
  }
}

int64_t row_bytes_of(StoreFormat format, int64_t cols) {
  switch (format) {
    case StoreFormat::F32: return cols * 4;
    case StoreFormat::Bf16:
    case StoreFormat::F16: return cols * 2;
    case StoreFormat::Int8: return cols;
    case StoreFormat::Nf4: return ceil_div(cols, kNf4Group) * (kNf4Group / 2);
  }
  return 0;
}

}  // namespace

const char* format_name(StoreFormat format) {
  switch (format) {
    case StoreFormat::F32: return "f32";
    case StoreFormat::Bf16: return "bf16";
    case StoreFormat::F16: return "f16";
    case StoreFormat::Int8: return "int8";
    case StoreFormat::Nf4: return "nf4";
  }
  return "f32";
}

int64_t source_element_bytes(SourceDtype dtype) { return dtype == SourceDtype::F32 ? 4 : 2; }

WeightStore::~WeightStore() {
  if (data) live_bytes.fetch_sub(bytes());
}

std::unique_ptr<WeightStore> create_weight_store(const uint8_t* source, SourceDtype dtype, int64_t rows, int64_t cols,
                                                 StoreFormat format) {
  auto w = std::make_unique<WeightStore>();
  w->rows = rows;
  w->cols = cols;
  w->format = format;
  w->row_bytes = row_bytes_of(format, cols);
  const bool blocked = format == StoreFormat::Int8 || format == StoreFormat::Nf4;
  w->blocks_per_row = blocked ? ceil_div(cols, kQuantBlock) : 0;
  // Not value-initialised: every byte is written below, and untouched pages would only be faulted in by a memset.
  if (w->blocks_per_row > 0) w->scales.reset(new float[static_cast<size_t>(std::max<int64_t>(1, rows * w->blocks_per_row))]);
  w->data.reset(new uint8_t[static_cast<size_t>(std::max<int64_t>(1, rows * w->row_bytes))]);
  live_bytes.fetch_add(w->bytes());

  const int64_t rows_per_task = std::max<int64_t>(1, kTaskElements / std::max<int64_t>(1, cols));
  WeightStore& store = *w;
  parallel_for(ceil_div(rows, rows_per_task), thread_count(), [&](int64_t task) {
    const int64_t end = std::min(rows, (task + 1) * rows_per_task);
    for (int64_t r = task * rows_per_task; r < end; ++r) store_row(source, dtype, store, r);
  });
  return w;
}

int64_t total_store_bytes() { return live_bytes.load(); }

}  // namespace finetune
