// quant_legacy.cpp - the block-of-32 types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1.
//
// Quantizers use the format's reference rounding (the one gguf.quants implements in numpy), step by
// step in float32 so that the bytes match it exactly:
//   Q4_0 / Q5_0: d = (the value of largest magnitude) / -8 (or -16), q = trunc(x / d + 8.5) (16.5),
//                capped at 15 (31); the extreme value lands on q = 0.
//   Q4_1 / Q5_1: d = (max - min) / 15 (31), m = min, q = trunc((x - min) / d + 0.5), capped.
//   Q8_0 / Q8_1: d = max|x| / 127, q = x / d rounded half away from zero.
// "x / d" is x times the float32 reciprocal 1/d (0 when d is 0), as in the reference.
#include "core/types.h"
#include "cpu/blocks.h"
#include "cpu/quant_rows.h"

#include <algorithm>
#include <cmath>

namespace pi {

namespace {

// The bits of a 5-bit value q_j above its low nibble, gathered into one 32-bit mask (bit j).
inline uint32_t read_qh(const uint8_t qh[4]) {
    return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 |
           static_cast<uint32_t>(qh[2]) << 16 | static_cast<uint32_t>(qh[3]) << 24;
}

inline void write_qh(uint32_t bits, uint8_t qh[4]) {
    for (int k = 0; k < 4; k++) qh[k] = static_cast<uint8_t>(bits >> (8 * k));
}

// q_j of a block of 32 nibble-packed values: byte j holds q_j (low) and q_{j+16} (high).
inline int nibble(const uint8_t * qs, int j) {
    return j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
}

inline void pack_nibbles(const uint8_t q[32], uint8_t * qs) {
    for (int j = 0; j < 16; j++) qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | (q[j + 16] << 4));
}

// The element of largest magnitude, with its sign (the first one on ties).
inline float signed_absmax(const float * x, int n) {
    float amax = std::fabs(x[0]), vmax = x[0];
    for (int j = 1; j < n; j++) {
        if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            vmax = x[j];
        }
    }
    return vmax;
}

inline float reciprocal_or_zero(float d) { return d != 0.0f ? 1.0f / d : 0.0f; }

// Symmetric 4- or 5-bit codes with an offset of half the range: q = trunc(x * id + offset + 0.5).
void quantize_symmetric_block(const float * x, float * d_out, uint8_t q[32], int offset, int qmax) {
    const float vmax = signed_absmax(x, 32);
    const float d    = vmax / static_cast<float>(-offset);
    const float id   = reciprocal_or_zero(d);
    const float bias = static_cast<float>(offset) + 0.5f;
    for (int j = 0; j < 32; j++) {
        const float scaled = x[j] * id;
        const int   v      = static_cast<int>(scaled + bias);  // truncation, as in the reference
        q[j] = static_cast<uint8_t>(std::min(qmax, std::max(0, v)));
    }
    *d_out = d;
}

// Asymmetric codes: q = trunc((x - min) * id + 0.5), d = (max - min) / qmax.
void quantize_asymmetric_block(const float * x, float * d_out, float * m_out, uint8_t q[32], int qmax) {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < 32; j++) {
        lo = std::min(lo, x[j]);
        hi = std::max(hi, x[j]);
    }
    const float d  = (hi - lo) / static_cast<float>(qmax);
    const float id = reciprocal_or_zero(d);
    for (int j = 0; j < 32; j++) {
        const float scaled = (x[j] - lo) * id;
        const int   v      = static_cast<int>(scaled + 0.5f);
        q[j] = static_cast<uint8_t>(std::min(qmax, std::max(0, v)));
    }
    *d_out = d;
    *m_out = lo;
}

// Q8_0 / Q8_1 codes: q = round(x / d) half away from zero, d = max|x| / 127.
float quantize_q8_block(const float * x, int8_t q[32]) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = std::max(amax, std::fabs(x[j]));
    const float d  = amax / 127.0f;
    const float id = reciprocal_or_zero(d);
    for (int j = 0; j < 32; j++) {
        const float scaled = x[j] * id;
        q[j] = static_cast<int8_t>(std::round(scaled));
    }
    return d;
}

}  // namespace

// ---- dequantize ------------------------------------------------------------------------------

void dequantize_row_q4_0(const void * src, float * dst, int64_t n) {
    const block_q4_0 * b = static_cast<const block_q4_0 *>(src);
    for (int64_t i = 0; i < n / QK4_0; i++, dst += QK4_0) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK4_0; j++) dst[j] = d * static_cast<float>(nibble(b[i].qs, j) - 8);
    }
}

void dequantize_row_q4_1(const void * src, float * dst, int64_t n) {
    const block_q4_1 * b = static_cast<const block_q4_1 *>(src);
    for (int64_t i = 0; i < n / QK4_1; i++, dst += QK4_1) {
        const float d = fp16_to_fp32(b[i].d);
        const float m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < QK4_1; j++) {
            const float dq = d * static_cast<float>(nibble(b[i].qs, j));
            dst[j] = dq + m;
        }
    }
}

void dequantize_row_q5_0(const void * src, float * dst, int64_t n) {
    const block_q5_0 * b = static_cast<const block_q5_0 *>(src);
    for (int64_t i = 0; i < n / QK5_0; i++, dst += QK5_0) {
        const float    d  = fp16_to_fp32(b[i].d);
        const uint32_t qh = read_qh(b[i].qh);
        for (int j = 0; j < QK5_0; j++) {
            const int q = nibble(b[i].qs, j) | static_cast<int>((qh >> j) & 1) << 4;
            dst[j] = d * static_cast<float>(q - 16);
        }
    }
}

void dequantize_row_q5_1(const void * src, float * dst, int64_t n) {
    const block_q5_1 * b = static_cast<const block_q5_1 *>(src);
    for (int64_t i = 0; i < n / QK5_1; i++, dst += QK5_1) {
        const float    d  = fp16_to_fp32(b[i].d);
        const float    m  = fp16_to_fp32(b[i].m);
        const uint32_t qh = read_qh(b[i].qh);
        for (int j = 0; j < QK5_1; j++) {
            const int   q  = nibble(b[i].qs, j) | static_cast<int>((qh >> j) & 1) << 4;
            const float dq = d * static_cast<float>(q);
            dst[j] = dq + m;
        }
    }
}

void dequantize_row_q8_0(const void * src, float * dst, int64_t n) {
    const block_q8_0 * b = static_cast<const block_q8_0 *>(src);
    for (int64_t i = 0; i < n / QK8_0; i++, dst += QK8_0) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK8_0; j++) dst[j] = d * static_cast<float>(b[i].qs[j]);
    }
}

void dequantize_row_q8_1(const void * src, float * dst, int64_t n) {
    const block_q8_1 * b = static_cast<const block_q8_1 *>(src);
    for (int64_t i = 0; i < n / QK8_1; i++, dst += QK8_1) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK8_1; j++) dst[j] = d * static_cast<float>(b[i].qs[j]);
    }
}

// ---- quantize --------------------------------------------------------------------------------

void quantize_row_q4_0(const float * src, void * dst, int64_t n) {
    block_q4_0 * b = static_cast<block_q4_0 *>(dst);
    for (int64_t i = 0; i < n / QK4_0; i++, src += QK4_0) {
        float   d;
        uint8_t q[32];
        quantize_symmetric_block(src, &d, q, 8, 15);
        b[i].d = fp32_to_fp16(d);
        pack_nibbles(q, b[i].qs);
    }
}

void quantize_row_q4_1(const float * src, void * dst, int64_t n) {
    block_q4_1 * b = static_cast<block_q4_1 *>(dst);
    for (int64_t i = 0; i < n / QK4_1; i++, src += QK4_1) {
        float   d, m;
        uint8_t q[32];
        quantize_asymmetric_block(src, &d, &m, q, 15);
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(m);
        pack_nibbles(q, b[i].qs);
    }
}

void quantize_row_q5_0(const float * src, void * dst, int64_t n) {
    block_q5_0 * b = static_cast<block_q5_0 *>(dst);
    for (int64_t i = 0; i < n / QK5_0; i++, src += QK5_0) {
        float   d;
        uint8_t q[32];
        quantize_symmetric_block(src, &d, q, 16, 31);
        uint32_t qh = 0;
        for (int j = 0; j < 32; j++) qh |= static_cast<uint32_t>(q[j] >> 4) << j;
        b[i].d = fp32_to_fp16(d);
        write_qh(qh, b[i].qh);
        pack_nibbles(q, b[i].qs);
    }
}

void quantize_row_q5_1(const float * src, void * dst, int64_t n) {
    block_q5_1 * b = static_cast<block_q5_1 *>(dst);
    for (int64_t i = 0; i < n / QK5_1; i++, src += QK5_1) {
        float   d, m;
        uint8_t q[32];
        quantize_asymmetric_block(src, &d, &m, q, 31);
        uint32_t qh = 0;
        for (int j = 0; j < 32; j++) qh |= static_cast<uint32_t>(q[j] >> 4) << j;
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(m);
        write_qh(qh, b[i].qh);
        pack_nibbles(q, b[i].qs);
    }
}

void quantize_row_q8_0(const float * src, void * dst, int64_t n) {
    block_q8_0 * b = static_cast<block_q8_0 *>(dst);
    for (int64_t i = 0; i < n / QK8_0; i++, src += QK8_0) {
        b[i].d = fp32_to_fp16(quantize_q8_block(src, b[i].qs));
    }
}

// As Q8_0, plus s = d * sum(q) for the offset term of Q4_1 / Q5_1 dot products. s uses the stored
// (half) d, so that s equals the sum of the dequantized values up to the rounding of s itself.
void quantize_row_q8_1(const float * src, void * dst, int64_t n) {
    block_q8_1 * b = static_cast<block_q8_1 *>(dst);
    for (int64_t i = 0; i < n / QK8_1; i++, src += QK8_1) {
        b[i].d = fp32_to_fp16(quantize_q8_block(src, b[i].qs));
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) sum += b[i].qs[j];
        b[i].s = fp32_to_fp16(fp16_to_fp32(b[i].d) * static_cast<float>(sum));
    }
}

}  // namespace pi
