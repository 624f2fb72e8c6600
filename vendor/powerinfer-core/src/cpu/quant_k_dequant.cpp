// quant_k_dequant.cpp - reading the K-quant super-blocks of 256 values (Q2_K .. Q6_K, Q8_K), and
// the packing of their 6-bit scales.
//
// Value i of a super-block (0..255) lives at these places (facts of the format, see blocks.h):
//   Q2_K  2 bits: byte 32 * (i / 128) + i % 32 of qs, bit pair (i % 128) / 32; sub-block i / 16.
//   Q3_K  as Q2_K for the low 2 bits; the third bit is bit i / 32 of hmask[i % 32].
//   Q4_K  4 bits: byte 32 * (i / 64) + i % 32 of qs, nibble (i % 64) / 32; sub-block i / 32.
//   Q5_K  as Q4_K; the fifth bit is bit i / 32 of qh[i % 32].
//   Q6_K  in each half h = i / 128 (r = i % 128): low 4 bits in nibble r / 64 of ql[64 h + r % 64],
//         high 2 bits in bit pair r / 32 of qh[32 h + r % 32]; sub-block i / 16.
#include "core/types.h"
#include "cpu/blocks.h"
#include "cpu/quant_rows.h"

#include <cstring>

namespace pi {

// ---- scale packing ---------------------------------------------------------------------------

void k4_pack_scale_mins(const uint8_t sc[8], const uint8_t mn[8], uint8_t * p) {
    for (int j = 0; j < 4; j++) {
        p[j]     = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        p[j + 4] = static_cast<uint8_t>((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
        p[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0x0F) | ((mn[j + 4] & 0x0F) << 4));
    }
}

uint8_t k3_get_scale(const uint8_t * p, int i) {
    const int lo = (p[i % 8] >> (4 * (i / 8))) & 0x0F;
    const int hi = (p[8 + i % 4] >> (2 * (i / 4))) & 0x03;
    return static_cast<uint8_t>(lo | hi << 4);
}

void k3_pack_scales(const uint8_t sc[16], uint8_t * p) {
    std::memset(p, 0, 12);
    for (int i = 0; i < 16; i++) {
        p[i % 8]     |= static_cast<uint8_t>((sc[i] & 0x0F) << (4 * (i / 8)));
        p[8 + i % 4] |= static_cast<uint8_t>(((sc[i] >> 4) & 0x03) << (2 * (i / 4)));
    }
}

// ---- dequantize ------------------------------------------------------------------------------

void dequantize_row_q2_K(const void * src, float * dst, int64_t n) {
    const block_q2_K * b = static_cast<const block_q2_K *>(src);
    for (int64_t k = 0; k < n / QK_K; k++, dst += QK_K) {
        const float d    = fp16_to_fp32(b[k].d);
        const float dmin = fp16_to_fp32(b[k].dmin);
        for (int i = 0; i < QK_K; i++) {
            const uint8_t s  = b[k].scales[i / 16];
            const float   dl = d * static_cast<float>(s & 0x0F);
            const float   ml = dmin * static_cast<float>(s >> 4);
            const int     q  = (b[k].qs[32 * (i / 128) + i % 32] >> (2 * ((i % 128) / 32))) & 3;
            const float   dq = dl * static_cast<float>(q);
            dst[i] = dq - ml;
        }
    }
}

void dequantize_row_q3_K(const void * src, float * dst, int64_t n) {
    const block_q3_K * b = static_cast<const block_q3_K *>(src);
    for (int64_t k = 0; k < n / QK_K; k++, dst += QK_K) {
        const float d = fp16_to_fp32(b[k].d);
        for (int i = 0; i < QK_K; i++) {
            const int   sc   = static_cast<int>(k3_get_scale(b[k].scales, i / 16)) - 32;
            const float dl   = d * static_cast<float>(sc);
            const int   low  = (b[k].qs[32 * (i / 128) + i % 32] >> (2 * ((i % 128) / 32))) & 3;
            const int   high = (b[k].hmask[i % 32] >> (i / 32)) & 1;
            const int   q    = low - (high ? 0 : 4);  // a clear mask bit means "minus 4"
            dst[i] = dl * static_cast<float>(q);
        }
    }
}

void dequantize_row_q4_K(const void * src, float * dst, int64_t n) {
    const block_q4_K * b = static_cast<const block_q4_K *>(src);
    for (int64_t k = 0; k < n / QK_K; k++, dst += QK_K) {
        const float d    = fp16_to_fp32(b[k].d);
        const float dmin = fp16_to_fp32(b[k].dmin);
        for (int j = 0; j < QK_K / 32; j++) {
            uint8_t sc, mn;
            k4_get_scale_min(b[k].scales, j, &sc, &mn);
            const float dl = d * static_cast<float>(sc);
            const float ml = dmin * static_cast<float>(mn);
            for (int l = 0; l < 32; l++) {
                const int   i  = 32 * j + l;
                const int   q  = (b[k].qs[32 * (i / 64) + l] >> (4 * (j % 2))) & 0x0F;
                const float dq = dl * static_cast<float>(q);
                dst[i] = dq - ml;
            }
        }
    }
}

void dequantize_row_q5_K(const void * src, float * dst, int64_t n) {
    const block_q5_K * b = static_cast<const block_q5_K *>(src);
    for (int64_t k = 0; k < n / QK_K; k++, dst += QK_K) {
        const float d    = fp16_to_fp32(b[k].d);
        const float dmin = fp16_to_fp32(b[k].dmin);
        for (int j = 0; j < QK_K / 32; j++) {
            uint8_t sc, mn;
            k4_get_scale_min(b[k].scales, j, &sc, &mn);
            const float dl = d * static_cast<float>(sc);
            const float ml = dmin * static_cast<float>(mn);
            for (int l = 0; l < 32; l++) {
                const int   i    = 32 * j + l;
                const int   low  = (b[k].qs[32 * (i / 64) + l] >> (4 * (j % 2))) & 0x0F;
                const int   high = (b[k].qh[l] >> j) & 1;
                const float dq   = dl * static_cast<float>(low | high << 4);
                dst[i] = dq - ml;
            }
        }
    }
}

void dequantize_row_q6_K(const void * src, float * dst, int64_t n) {
    const block_q6_K * b = static_cast<const block_q6_K *>(src);
    for (int64_t k = 0; k < n / QK_K; k++, dst += QK_K) {
        const float d = fp16_to_fp32(b[k].d);
        for (int i = 0; i < QK_K; i++) {
            const int   h    = i / 128, r = i % 128;
            const int   low  = (b[k].ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
            const int   high = (b[k].qh[32 * h + r % 32] >> (2 * (r / 32))) & 0x03;
            const float dl   = d * static_cast<float>(b[k].scales[i / 16]);
            dst[i] = dl * static_cast<float>((low | high << 4) - 32);
        }
    }
}

void dequantize_row_q8_K(const void * src, float * dst, int64_t n) {
    const block_q8_K * b = static_cast<const block_q8_K *>(src);
    for (int64_t k = 0; k < n / QK_K; k++, dst += QK_K) {
        for (int i = 0; i < QK_K; i++) dst[i] = b[k].d * static_cast<float>(b[k].qs[i]);
    }
}

}  // namespace pi
