// AVX2/FMA/F16C kernels for weight_kernels.h. As in kernel_avx2.cc, only these functions are compiled for AVX2
// (target attribute, not a file-wide -mavx2), so the addon still loads on CPUs without it.
//
// Each format is a decoder that turns 16 stored weights into two vectors of their exact dequantized float32
// values; one dot-product loop and one dequantize loop serve all formats. nf4 looks its codes up in the code book
// already multiplied by the block's scale: two permutes (codes 0-7 and 8-15) and a blend on bit 3 of the code.
// The permutes bound its speed (about 4 cycles per 16 weights on a Zen 4 core; byte-plane lookups with vpshufb
// measured no faster), so everything around them avoids the shuffle ports (see kNf4Group), and one-token nf4
// decoding on two cores is compute-bound rather than memory-bound.
#include <algorithm>
#include <cstring>

#include "weight_kernels.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FINETUNE_HAVE_AVX2_WEIGHTS 1
#include <immintrin.h>

#include "float_formats.h"
#endif

namespace finetune {

#ifdef FINETUNE_HAVE_AVX2_WEIGHTS
namespace {

#define FINETUNE_AVX2 __attribute__((target("avx2,fma,f16c")))

constexpr int64_t kGroup = 16;  // weights per decoder step (one nf4 group)

struct F32Decoder {
  const float* row = nullptr;
  FINETUNE_AVX2 void start(const WeightStore& w, int64_t r) { row = reinterpret_cast<const float*>(w.row(r)); }
  FINETUNE_AVX2 void block(int64_t) {}
  FINETUNE_AVX2 void load16(int64_t c, __m256& w0, __m256& w1) const {
    w0 = _mm256_loadu_ps(row + c);
    w1 = _mm256_loadu_ps(row + c + 8);
  }
};

struct Bf16Decoder {
  const uint8_t* row = nullptr;
  FINETUNE_AVX2 void start(const WeightStore& w, int64_t r) { row = w.row(r); }
  FINETUNE_AVX2 void block(int64_t) {}
  FINETUNE_AVX2 void load16(int64_t c, __m256& w0, __m256& w1) const {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + c * 2));
    w0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(h)), 16));
    w1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(h, 1)), 16));
  }
};

struct F16Decoder {
  const uint8_t* row = nullptr;
  FINETUNE_AVX2 void start(const WeightStore& w, int64_t r) { row = w.row(r); }
  FINETUNE_AVX2 void block(int64_t) {}
  FINETUNE_AVX2 void load16(int64_t c, __m256& w0, __m256& w1) const {
    w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c * 2)));
    w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c * 2 + 16)));
  }
};

struct Int8Decoder {
  const uint8_t* row = nullptr;
  const float* scales = nullptr;
  __m256 scale;
  FINETUNE_AVX2 void start(const WeightStore& w, int64_t r) {
    row = w.row(r);
    scales = w.row_scales(r);
    scale = _mm256_setzero_ps();  // block() sets it before any load16(); this only tells the compiler so
  }
  FINETUNE_AVX2 void block(int64_t b) { scale = _mm256_set1_ps(scales[b]); }
  FINETUNE_AVX2 void load16(int64_t c, __m256& w0, __m256& w1) const {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c));
    w0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), scale);
    w1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))), scale);
  }
};

struct Nf4Decoder {
  const uint8_t* row = nullptr;
  const float* scales = nullptr;
  __m256 low, high;  // code book entries 0-7 and 8-15 times the block's absmax
  FINETUNE_AVX2 void start(const WeightStore& w, int64_t r) {
    row = w.row(r);
    scales = w.row_scales(r);
    low = high = _mm256_setzero_ps();  // as Int8Decoder::scale
  }
  FINETUNE_AVX2 void block(int64_t b) {
    const __m256 absmax = _mm256_set1_ps(scales[b]);
    low = _mm256_mul_ps(_mm256_loadu_ps(kNf4CodeBook), absmax);
    high = _mm256_mul_ps(_mm256_loadu_ps(kNf4CodeBook + 8), absmax);
  }
  // Lane p's code in bits 0-3 (the permute reads bits 0-2); `upper` has bit 3 of the code in its sign bit.
  FINETUNE_AVX2 __m256 lookup(__m256i code, __m256i upper) const {
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(low, code), _mm256_permutevar8x32_ps(high, code),
                            _mm256_castsi256_ps(upper));
  }
  FINETUNE_AVX2 void load16(int64_t c, __m256& w0, __m256& w1) const {
    // Lane p gets byte nf4_byte(p) of the group in its low 8 bits (higher bits hold other bytes, ignored).
    long long group;
    std::memcpy(&group, row + c / 2, 8);
    const __m256i bytes = _mm256_srlv_epi32(_mm256_set1_epi64x(group), _mm256_setr_epi32(0, 0, 8, 8, 16, 16, 24, 24));
    w0 = lookup(bytes, _mm256_slli_epi32(bytes, 28));
    w1 = lookup(_mm256_srli_epi32(bytes, 4), _mm256_slli_epi32(bytes, 24));
  }
};

FINETUNE_AVX2 float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Whole groups through the decoder; a last partial group (cols not a multiple of 16) through the portable kernel,
// which gives the same bits.
template <class Decoder, StoreFormat Format>
FINETUNE_AVX2 void dequantize(const WeightStore& w, int64_t r, int64_t c0, int64_t c1, float* out) {
  Decoder decoder;
  decoder.start(w, r);
  const int64_t whole = c0 + (c1 - c0) / kGroup * kGroup;
  for (int64_t c = c0; c < whole; c += kGroup) {
    if (c == c0 || c % kQuantBlock == 0) decoder.block(c / kQuantBlock);
    __m256 w0, w1;
    decoder.load16(c, w0, w1);
    _mm256_storeu_ps(out + (c - c0), w0);
    _mm256_storeu_ps(out + (c - c0) + 8, w1);
  }
  if (whole < c1) portable_weight_kernels(Format).dequantize(w, r, whole, c1, out + (whole - c0));
}

// One decoded group of 16 weights into the sums of M rows of x: its first 8 weights into sums[i][First], the
// next 8 into sums[i][Second] (constants once inlined, so the sums stay in registers).
template <class Decoder, int M, int S, int First, int Second>
FINETUNE_AVX2 __attribute__((always_inline)) inline void group(const Decoder& decoder, const float* x, int64_t ldx,
                                                               int64_t c, __m256 (&sums)[M][S]) {
  __m256 w0, w1;
  decoder.load16(c, w0, w1);
  for (int i = 0; i < M; ++i) {
    const float* xi = x + i * ldx + c;
    sums[i][First] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xi), sums[i][First]);
    sums[i][Second] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xi + 8), sums[i][Second]);
  }
}

// M rows of x against rows [r0, r1) of W. An FMA waits for the previous one on the same sum, so a row of x needs
// several sums for the decoder to run at full speed: four for one row (a pair of groups, two halves each), two for
// up to four rows, one for more (they already give enough independent chains).
template <class Decoder, StoreFormat Format, int M>
FINETUNE_AVX2 void dot_rows(const WeightStore& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                            int64_t r1) {
  constexpr int S = M == 1 ? 4 : (M <= 4 ? 2 : 1);
  const int64_t whole = w.cols / kGroup * kGroup;
  Decoder decoder;
  for (int64_t r = r0; r < r1; ++r) {
    decoder.start(w, r);
    __m256 sums[M][S];
    for (int i = 0; i < M; ++i)
      for (int s = 0; s < S; ++s) sums[i][s] = _mm256_setzero_ps();
    // Whole blocks first, unrolled (4 groups, scale set once), then the last partial block group by group.
    int64_t c0 = 0;
    for (; c0 + kQuantBlock <= whole; c0 += kQuantBlock) {
      decoder.block(c0 / kQuantBlock);
      group<Decoder, M, S, 0, S == 1 ? 0 : 1>(decoder, x, ldx, c0, sums);
      group<Decoder, M, S, S == 4 ? 2 : 0, S - 1>(decoder, x, ldx, c0 + kGroup, sums);
      group<Decoder, M, S, 0, S == 1 ? 0 : 1>(decoder, x, ldx, c0 + 2 * kGroup, sums);
      group<Decoder, M, S, S == 4 ? 2 : 0, S - 1>(decoder, x, ldx, c0 + 3 * kGroup, sums);
    }
    for (; c0 < whole; c0 += kQuantBlock) {
      decoder.block(c0 / kQuantBlock);
      const int64_t end = std::min(c0 + kQuantBlock, whole);
      int64_t c = c0;
      if (S == 4) {
        for (; c + 2 * kGroup <= end; c += 2 * kGroup) {
          group<Decoder, M, S, 0, 1>(decoder, x, ldx, c, sums);
          group<Decoder, M, S, S - 2, S - 1>(decoder, x, ldx, c + kGroup, sums);
        }
      }
      for (; c < end; c += kGroup) group<Decoder, M, S, 0, S - 1>(decoder, x, ldx, c, sums);
    }
    float tail[M] = {};
    if (whole < w.cols) {
      float values[kGroup];
      portable_weight_kernels(Format).dequantize(w, r, whole, w.cols, values);
      for (int i = 0; i < M; ++i)
        for (int64_t c = whole; c < w.cols; ++c) tail[i] += x[i * ldx + c] * values[c - whole];
    }
    for (int i = 0; i < M; ++i) {
      __m256 sum = sums[i][0];
      for (int s = 1; s < S; ++s) sum = _mm256_add_ps(sum, sums[i][s]);
      y[i * ldy + r] = horizontal_sum(sum) + tail[i];
    }
  }
}

// One row of W, decoded group by group, into M running sums: acc_i += xr[i] · W[r, c0:c1].
template <class Decoder, StoreFormat Format, int M>
FINETUNE_AVX2 void axpy_row(const WeightStore& w, int64_t r, int64_t c0, int64_t c1, const float* xr, float* acc,
                            int64_t ld) {
  Decoder decoder;
  decoder.start(w, r);
  __m256 xs[M];
  for (int i = 0; i < M; ++i) xs[i] = _mm256_set1_ps(xr[i]);
  const int64_t whole = c0 + (c1 - c0) / kGroup * kGroup;
  for (int64_t c = c0; c < whole; c += kGroup) {
    if (c == c0 || c % kQuantBlock == 0) decoder.block(c / kQuantBlock);
    __m256 w0, w1;
    decoder.load16(c, w0, w1);
    for (int i = 0; i < M; ++i) {
      float* out = acc + i * ld + (c - c0);
      _mm256_storeu_ps(out, _mm256_fmadd_ps(xs[i], w0, _mm256_loadu_ps(out)));
      _mm256_storeu_ps(out + 8, _mm256_fmadd_ps(xs[i], w1, _mm256_loadu_ps(out + 8)));
    }
  }
  if (whole < c1) {
    float values[kGroup];
    portable_weight_kernels(Format).dequantize(w, r, whole, c1, values);
    for (int i = 0; i < M; ++i)
      for (int64_t c = whole; c < c1; ++c) acc[i * ld + (c - c0)] += xr[i] * values[c - whole];
  }
}

template <class Decoder, StoreFormat Format>
void row_axpy(const WeightStore& w, int64_t r, int64_t c0, int64_t c1, const float* xr, int64_t m, float* acc,
              int64_t ld) {
  for (; m > 0; m -= 8, xr += 8, acc += 8 * ld) {
    switch (std::min<int64_t>(m, 8)) {
      case 1: axpy_row<Decoder, Format, 1>(w, r, c0, c1, xr, acc, ld); break;
      case 2: axpy_row<Decoder, Format, 2>(w, r, c0, c1, xr, acc, ld); break;
      case 3: axpy_row<Decoder, Format, 3>(w, r, c0, c1, xr, acc, ld); break;
      case 4: axpy_row<Decoder, Format, 4>(w, r, c0, c1, xr, acc, ld); break;
      case 5: axpy_row<Decoder, Format, 5>(w, r, c0, c1, xr, acc, ld); break;
      case 6: axpy_row<Decoder, Format, 6>(w, r, c0, c1, xr, acc, ld); break;
      case 7: axpy_row<Decoder, Format, 7>(w, r, c0, c1, xr, acc, ld); break;
      default: axpy_row<Decoder, Format, 8>(w, r, c0, c1, xr, acc, ld); break;
    }
  }
}

template <class Decoder, StoreFormat Format>
void rows_dot(const WeightStore& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy, int64_t r0,
              int64_t r1) {
  // Eight rows of x at most per pass (kStreamingRows); more only if a caller ever passes them.
  for (; m > 0; m -= 8, x += 8 * ldx, y += 8 * ldy) {
    switch (std::min<int64_t>(m, 8)) {
      case 1: dot_rows<Decoder, Format, 1>(w, x, ldx, y, ldy, r0, r1); break;
      case 2: dot_rows<Decoder, Format, 2>(w, x, ldx, y, ldy, r0, r1); break;
      case 3: dot_rows<Decoder, Format, 3>(w, x, ldx, y, ldy, r0, r1); break;
      case 4: dot_rows<Decoder, Format, 4>(w, x, ldx, y, ldy, r0, r1); break;
      case 5: dot_rows<Decoder, Format, 5>(w, x, ldx, y, ldy, r0, r1); break;
      case 6: dot_rows<Decoder, Format, 6>(w, x, ldx, y, ldy, r0, r1); break;
      case 7: dot_rows<Decoder, Format, 7>(w, x, ldx, y, ldy, r0, r1); break;
      default: dot_rows<Decoder, Format, 8>(w, x, ldx, y, ldy, r0, r1); break;
    }
  }
}

template <class Decoder, StoreFormat Format>
constexpr WeightKernels kernels_of() {
  return WeightKernels{dequantize<Decoder, Format>, rows_dot<Decoder, Format>, row_axpy<Decoder, Format>};
}

}  // namespace

const WeightKernels* avx2_weight_kernels(StoreFormat format) {
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  }();
  static const WeightKernels f32 = kernels_of<F32Decoder, StoreFormat::F32>();
  static const WeightKernels bf16 = kernels_of<Bf16Decoder, StoreFormat::Bf16>();
  static const WeightKernels f16 = kernels_of<F16Decoder, StoreFormat::F16>();
  static const WeightKernels int8 = kernels_of<Int8Decoder, StoreFormat::Int8>();
  static const WeightKernels nf4 = kernels_of<Nf4Decoder, StoreFormat::Nf4>();
  if (!supported) return nullptr;
  switch (format) {
    case StoreFormat::F32: return &f32;
    case StoreFormat::Bf16: return &bf16;
    case StoreFormat::F16: return &f16;
    case StoreFormat::Int8: return &int8;
    case StoreFormat::Nf4: return &nf4;
  }
  return nullptr;
}

#else

const WeightKernels* avx2_weight_kernels(StoreFormat) { return nullptr; }

#endif

}  // namespace finetune
