// quant_k.cpp - the K-quant quantizers: fit_superblock (quant_k_fit.h) chooses the integers, the
// functions here place them into each format's bytes (positions as listed in quant_k_dequant.cpp).
#include "core/types.h"
#include "cpu/blocks.h"
#include "cpu/quant_k_fit.h"
#include "cpu/quant_rows.h"

#include <cmath>
#include <cstring>

namespace pi {

namespace {

//                                     sub_len affine qmin qmax  sc_lo sc_hi mn_hi
constexpr kquant_spec kSpecQ2K = {16, true,    0,   3,    0,   15,   15};
constexpr kquant_spec kSpecQ3K = {16, false,  -4,   3,  -32,   31,    0};
constexpr kquant_spec kSpecQ4K = {32, true,    0,  15,    0,   63,   63};
constexpr kquant_spec kSpecQ5K = {32, true,    0,  31,    0,   63,   63};
constexpr kquant_spec kSpecQ6K = {16, false, -32,  31, -128,  127,    0};

}  // namespace

void quantize_row_q2_K(const float * src, void * dst, int64_t n) {
    block_q2_K * b = static_cast<block_q2_K *>(dst);
    kquant_fit   f;
    for (int64_t k = 0; k < n / QK_K; k++, src += QK_K) {
        fit_superblock(src, kSpecQ2K, &f);
        std::memset(&b[k], 0, sizeof(block_q2_K));
        b[k].d    = f.d;
        b[k].dmin = f.dmin;
        for (int j = 0; j < 16; j++) b[k].scales[j] = static_cast<uint8_t>(f.sc[j] | f.mn[j] << 4);
        for (int i = 0; i < QK_K; i++) {
            b[k].qs[32 * (i / 128) + i % 32] |= static_cast<uint8_t>(f.q[i] << (2 * ((i % 128) / 32)));
        }
    }
}

void quantize_row_q3_K(const float * src, void * dst, int64_t n) {
    block_q3_K * b = static_cast<block_q3_K *>(dst);
    kquant_fit   f;
    for (int64_t k = 0; k < n / QK_K; k++, src += QK_K) {
        fit_superblock(src, kSpecQ3K, &f);
        std::memset(&b[k], 0, sizeof(block_q3_K));
        b[k].d = f.d;
        uint8_t sc[16];
        for (int j = 0; j < 16; j++) sc[j] = static_cast<uint8_t>(f.sc[j] + 32);  // stored biased
        k3_pack_scales(sc, b[k].scales);
        for (int i = 0; i < QK_K; i++) {
            const int u = f.q[i] + 4;  // 0..7: low 2 bits in qs, bit 2 in hmask
            b[k].qs[32 * (i / 128) + i % 32] |= static_cast<uint8_t>((u & 3) << (2 * ((i % 128) / 32)));
            b[k].hmask[i % 32] |= static_cast<uint8_t>((u >> 2) << (i / 32));
        }
    }
}

void quantize_row_q4_K(const float * src, void * dst, int64_t n) {
    block_q4_K * b = static_cast<block_q4_K *>(dst);
    kquant_fit   f;
    for (int64_t k = 0; k < n / QK_K; k++, src += QK_K) {
        fit_superblock(src, kSpecQ4K, &f);
        std::memset(&b[k], 0, sizeof(block_q4_K));
        b[k].d    = f.d;
        b[k].dmin = f.dmin;
        uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; j++) {
            sc[j] = static_cast<uint8_t>(f.sc[j]);
            mn[j] = static_cast<uint8_t>(f.mn[j]);
        }
        k4_pack_scale_mins(sc, mn, b[k].scales);
        for (int i = 0; i < QK_K; i++) {
            b[k].qs[32 * (i / 64) + i % 32] |= static_cast<uint8_t>(f.q[i] << (4 * ((i / 32) % 2)));
        }
    }
}

void quantize_row_q5_K(const float * src, void * dst, int64_t n) {
    block_q5_K * b = static_cast<block_q5_K *>(dst);
    kquant_fit   f;
    for (int64_t k = 0; k < n / QK_K; k++, src += QK_K) {
        fit_superblock(src, kSpecQ5K, &f);
        std::memset(&b[k], 0, sizeof(block_q5_K));
        b[k].d    = f.d;
        b[k].dmin = f.dmin;
        uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; j++) {
            sc[j] = static_cast<uint8_t>(f.sc[j]);
            mn[j] = static_cast<uint8_t>(f.mn[j]);
        }
        k4_pack_scale_mins(sc, mn, b[k].scales);
        for (int i = 0; i < QK_K; i++) {
            b[k].qs[32 * (i / 64) + i % 32] |= static_cast<uint8_t>((f.q[i] & 0x0F) << (4 * ((i / 32) % 2)));
            b[k].qh[i % 32] |= static_cast<uint8_t>((f.q[i] >> 4) << (i / 32));
        }
    }
}

void quantize_row_q6_K(const float * src, void * dst, int64_t n) {
    block_q6_K * b = static_cast<block_q6_K *>(dst);
    kquant_fit   f;
    for (int64_t k = 0; k < n / QK_K; k++, src += QK_K) {
        fit_superblock(src, kSpecQ6K, &f);
        std::memset(&b[k], 0, sizeof(block_q6_K));
        b[k].d = f.d;
        for (int j = 0; j < 16; j++) b[k].scales[j] = static_cast<int8_t>(f.sc[j]);
        for (int i = 0; i < QK_K; i++) {
            const int u = f.q[i] + 32;  // 0..63: low 4 bits in ql, high 2 in qh
            const int h = i / 128, r = i % 128;
            b[k].ql[64 * h + r % 64] |= static_cast<uint8_t>((u & 0x0F) << (4 * (r / 64)));
            b[k].qh[32 * h + r % 32] |= static_cast<uint8_t>((u >> 4) << (2 * (r / 32)));
        }
    }
}

// The activation format of K-quant dot products: d = max|x| / 127 as float, q = round(x / d),
// and the sum of every 16 codes.
void quantize_row_q8_K(const float * src, void * dst, int64_t n) {
    block_q8_K * b = static_cast<block_q8_K *>(dst);
    for (int64_t k = 0; k < n / QK_K; k++, src += QK_K) {
        float amax = 0.0f;
        for (int i = 0; i < QK_K; i++) amax = std::fmax(amax, std::fabs(src[i]));
        const float d  = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[k].d = d;
        for (int i = 0; i < QK_K; i++) {
            const float scaled = src[i] * id;
            b[k].qs[i] = static_cast<int8_t>(std::round(scaled));
        }
        for (int g = 0; g < QK_K / 16; g++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += b[k].qs[16 * g + i];
            b[k].bsums[g] = static_cast<int16_t>(sum);
        }
    }
}

}  // namespace pi
