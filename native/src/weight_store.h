// A frozen weight matrix W [rows, cols] held in native memory in one of five formats (issue #12: the base model's
// weights live outside the wasm heap, quantized). Immutable once made, so any number of threads may read it.
#pragma once

#include <cstdint>
#include <memory>

namespace finetune {

enum class StoreFormat { F32, Bf16, F16, Int8, Nf4 };
enum class SourceDtype { F32, F16, Bf16 };

// Elements per int8/nf4 block along a row; a row's last block may be shorter, and no block crosses rows.
constexpr int64_t kQuantBlock = 64;
// nf4 codes are packed in groups of 16 elements in 8 bytes. Element e of a group (e < 16) sits in byte
// nf4_byte(e % 8), in its low nibble when e < 8 and its high nibble otherwise. The odd order is what the AVX2
// kernel gets for free: it broadcasts the group's 8 bytes to every 32-bit lane and shifts lane p right by
// 8 · (p / 2) bits, so lane p holds byte nf4_byte(p): elements p and p + 8. Every row starts on a group (its last
// group is padded with the code of 0.0).
constexpr int64_t kNf4Group = 16;
constexpr int64_t nf4_byte(int64_t p) { return (p % 2 == 0) ? p / 2 : 4 + p / 2; }

const char* format_name(StoreFormat format);
int64_t source_element_bytes(SourceDtype dtype);

struct WeightStore {
  int64_t rows = 0, cols = 0;
  StoreFormat format = StoreFormat::F32;
  // Row r starts at data + r * row_bytes: float, uint16 (bf16/f16), int8, or nf4 groups.
  int64_t row_bytes = 0;
  int64_t blocks_per_row = 0;  // int8/nf4: ceil(cols / kQuantBlock) scales per row, else 0
  std::unique_ptr<uint8_t[]> data;
  std::unique_ptr<float[]> scales;  // int8: absmax / 127; nf4: absmax

  const uint8_t* row(int64_t r) const { return data.get() + r * row_bytes; }
  const float* row_scales(int64_t r) const { return scales.get() + r * blocks_per_row; }
  // What the store holds in memory (codes and scales), counted in total_store_bytes() while it lives.
  int64_t bytes() const { return rows * row_bytes + rows * blocks_per_row * static_cast<int64_t>(sizeof(float)); }

  WeightStore() = default;
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;
  ~WeightStore();
};

// Quantizes (or copies) W from the raw little-endian bytes of a [rows, cols] tensor (rows · cols elements of
// `dtype`, any alignment), block by block across the GEMM's pool, with no float32 copy of the whole matrix.
// Throws std::bad_alloc when the store does not fit in memory.
std::unique_ptr<WeightStore> create_weight_store(const uint8_t* source, SourceDtype dtype, int64_t rows, int64_t cols,
                                                 StoreFormat format);

// Bytes held by every live store.
int64_t total_store_bytes();

}  // namespace finetune
