// Scalar conversions between float32 and the 16-bit formats, and the NF4 code book: the one definition every kernel
// (portable and AVX2) and the quantizer agree on, so a dequantized value is the same bits whichever path made it.
#pragma once

#include <cstdint>
#include <cstring>

namespace finetune {

inline uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

inline float bits_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// bf16 is the top half of a float32: widening is exact.
inline float bf16_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

// Round to nearest, ties to even; a NaN stays a (quiet) NaN instead of rounding into infinity.
inline uint16_t float_to_bf16(float value) {
  uint32_t x = float_bits(value);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

// IEEE binary16 to float32: exact (every half, subnormals included, is a float).
inline float f16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa · 2^-24, exact in float32.
    const float magnitude = static_cast<float>(mantissa) * (1.0f / 16777216.0f);
    return bits_float(float_bits(magnitude) | sign);
  }
  if (exponent == 31) return bits_float(sign | 0x7f800000u | (mantissa << 13));
  return bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

// float32 to binary16, round to nearest, ties to even; beyond the largest half (65504) rounds to infinity.
inline uint16_t float_to_f16(float value) {
  const uint32_t x = float_bits(value);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t magnitude = x & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // ≥ 65520, the midpoint to 2^16
  if (magnitude < 0x38800000u) {
    // Below 2^-14: a subnormal half, in units of 2^-24; at most 2^-25 (a tie with 0 included) rounds to zero.
    const uint32_t exponent = magnitude >> 23;
    if (exponent < 102) return sign;
    const uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exponent;  // 14..24
    uint32_t q = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (q & 1u))) ++q;  // may carry into the smallest normal: still correct
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t h = (magnitude >> 13) - (112u << 10);
  const uint32_t rest = magnitude & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is the right rounding
  return static_cast<uint16_t>(sign | h);
}

// QLoRA's NormalFloat4 (bitsandbytes): every value is exactly a float32.
constexpr float kNf4CodeBook[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};
constexpr uint8_t kNf4Zero = 7;  // the code of 0.0: an all-zero block, and the padding of a row's last byte

// Midpoints between neighbouring code-book entries, (a + b) / 2 in double (bitsandbytes compares with midpoints
// too).
struct Nf4Midpoints {
  double value[15];
  constexpr Nf4Midpoints() : value() {
    for (int c = 0; c < 15; ++c) value[c] = (static_cast<double>(kNf4CodeBook[c]) + static_cast<double>(kNf4CodeBook[c + 1])) / 2.0;
  }
};
constexpr Nf4Midpoints kNf4Midpoints{};

// The code nearest to t (a value divided by its block's absmax): the number of midpoints below t, by binary search.
// A value exactly on a midpoint takes the lower code; NaN fails every comparison and takes code 0.
inline uint8_t nf4_code(double t) {
  int code = 0;
  for (int step = 8; step > 0; step >>= 1) {
    if (t > kNf4Midpoints.value[code + step - 1]) code += step;
  }
  return static_cast<uint8_t>(code);
}

}  // namespace finetune
