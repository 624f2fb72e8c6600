// blocks.h - the byte layouts of the GGUF quantized block types (facts of the file format).
//
// A row of n values is n / QK blocks stored back to back. "d" is the scale and "m"/"dmin" the
// offset, stored as IEEE half. Value i of a block is d * q_i (+ m) with q_i unpacked as noted.
// The static_asserts pin each size to the format's.
#pragma once

#include <cstdint>

namespace pi {

constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK8_1 = 32;
constexpr int QK_K  = 256;  // super-block of the K-quants
constexpr int K_SCALE_SIZE = 12;

typedef uint16_t f16_t;  // IEEE half, as stored

// x = d * (q - 8), q in [0, 16): qs[j] low nibble is value j, high nibble is value j + 16.
struct block_q4_0 { f16_t d; uint8_t qs[QK4_0 / 2]; };
// x = d * q + m, q in [0, 16): nibbles as in q4_0.
struct block_q4_1 { f16_t d; f16_t m; uint8_t qs[QK4_1 / 2]; };
// x = d * (q - 16), q in [0, 32): low 4 bits as q4_0, bit 4 of value j is bit j of qh.
struct block_q5_0 { f16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; };
// x = d * q + m, q in [0, 32): as q5_0.
struct block_q5_1 { f16_t d; f16_t m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; };
// x = d * q, q in [-128, 128).
struct block_q8_0 { f16_t d; int8_t qs[QK8_0]; };
// x = d * q; s = d * sum(q), kept so that products with q4_1/q5_1 can add the offset term cheaply.
struct block_q8_1 { f16_t d; f16_t s; int8_t qs[QK8_1]; };

// 16 sub-blocks of 16: x = d * scale_i * q - dmin * min_i, q 2-bit; scales[i] = scale_i | min_i << 4.
struct block_q2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; f16_t d; f16_t dmin; };
// 16 sub-blocks of 16: x = d * (scale_i - 32) * (q - 4 * !hmask_bit), q 2-bit low + 1 high-mask bit;
// 6-bit scales packed in 12 bytes.
struct block_q3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; f16_t d; };
// 8 sub-blocks of 32: x = d * scale_i * q - dmin * min_i, q 4-bit; 6-bit scales/mins packed in 12 bytes.
struct block_q4_K { f16_t d; f16_t dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; };
// As q4_K with a fifth bit per value in qh.
struct block_q5_K { f16_t d; f16_t dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
// 16 sub-blocks of 16: x = d * scale_i * (q - 32), q 6-bit (4 low bits in ql, 2 high in qh), int8 scales.
struct block_q6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; f16_t d; };
// Activation format of the K-quant dot products: x = d * q, with sums of each group of 16 q.
struct block_q8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };

static_assert(sizeof(block_q4_0) == 18, "q4_0 layout");
static_assert(sizeof(block_q4_1) == 20, "q4_1 layout");
static_assert(sizeof(block_q5_0) == 22, "q5_0 layout");
static_assert(sizeof(block_q5_1) == 24, "q5_1 layout");
static_assert(sizeof(block_q8_0) == 34, "q8_0 layout");
static_assert(sizeof(block_q8_1) == 36, "q8_1 layout");
static_assert(sizeof(block_q2_K) == 84, "q2_K layout");
static_assert(sizeof(block_q3_K) == 110, "q3_K layout");
static_assert(sizeof(block_q4_K) == 144, "q4_K layout");
static_assert(sizeof(block_q5_K) == 176, "q5_K layout");
static_assert(sizeof(block_q6_K) == 210, "q6_K layout");
static_assert(sizeof(block_q8_K) == 292, "q8_K layout");

}  // namespace pi
