// act_quant.cpp - converts an activation vector into the format its weight type is dotted with
// (act_bytes / act_prepare of cpu/kernels.h; layouts in cpu/dot.h).
#include "core/types.h"
#include "cpu/blocks.h"
#include "cpu/dot.h"
#include "cpu/kernels.h"

#include <cmath>
#include <cstring>

namespace pi {

act_kind act_kind_for(int32_t wtype) {
    switch (wtype) {
        case PI_TYPE_F32:
        case PI_TYPE_F16:
        case PI_TYPE_BF16: return ACT_F32;
        case PI_TYPE_Q4_0:
        case PI_TYPE_Q4_1:
        case PI_TYPE_Q5_0:
        case PI_TYPE_Q5_1:
        case PI_TYPE_Q8_0: return ACT_Q8;
        case PI_TYPE_Q2_K:
        case PI_TYPE_Q3_K:
        case PI_TYPE_Q4_K:
        case PI_TYPE_Q5_K:
        case PI_TYPE_Q6_K: return ACT_Q8K;
        default: return ACT_NONE;
    }
}

bool kernel_supports(int32_t wtype) { return act_kind_for(wtype) != ACT_NONE; }

size_t act_bytes(int32_t wtype, int64_t n_cols) {
    switch (act_kind_for(wtype)) {
        case ACT_F32: return (size_t)n_cols * sizeof(float);
        case ACT_Q8:  return (size_t)n_cols + (size_t)(n_cols / QK8_0) * 2 * sizeof(float);
        case ACT_Q8K: return (size_t)(n_cols / QK_K) * sizeof(block_q8_K);
        default:      return 0;
    }
}

// Round to nearest, ties to even (the default rounding mode), as cvtps2dq does in the SIMD
// converters, so that every ISA writes the same bytes. No addition follows the product, so no
// compiler may fuse it into an FMA with different rounding.
static inline int round_half_even(float v) { return (int)std::nearbyint(v); }

static inline float f16_round(float v) { return fp16_to_fp32(fp32_to_fp16(v)); }

void act_prepare_q8_scalar(const float * x, int64_t n, void * out, q8_sum sum_kind) {
    int8_t * q  = static_cast<int8_t *>(out);
    float *  ds = reinterpret_cast<float *>(static_cast<char *>(out) + n);
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const float * xb = x + b * QK8_0;
        float amax = 0.0f;
        for (int i = 0; i < QK8_0; i++) amax = std::fabs(xb[i]) > amax ? std::fabs(xb[i]) : amax;
        const float d  = amax / 127.0f;
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int i = 0; i < QK8_0; i++) {
            const int v = round_half_even(xb[i] * id);
            q[b * QK8_0 + i] = (int8_t)v;
            sum += v;
        }
        const float dh = f16_round(d);
        ds[2 * b + 0] = dh;
        ds[2 * b + 1] = sum_kind == Q8_SUM_F16 ? f16_round(d * (float)sum) : dh * (float)sum;
    }
}

void act_prepare_q8k_scalar(const float * x, int64_t n, void * out) {
    block_q8_K * y = static_cast<block_q8_K *>(out);
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float * xb = x + b * QK_K;
        float amax = 0.0f;
        for (int i = 0; i < QK_K; i++) amax = std::fabs(xb[i]) > amax ? std::fabs(xb[i]) : amax;
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        y[b].d = amax / 127.0f;
        for (int i = 0; i < QK_K; i++) y[b].qs[i] = (int8_t)round_half_even(xb[i] * id);
        for (int g = 0; g < QK_K / 16; g++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += y[b].qs[g * 16 + i];
            y[b].bsums[g] = (int16_t)sum;
        }
    }
}

// The ggml partner of each 32-block type keeps a sum in f16 (q8_1) or none (q8_0).
static q8_sum q8_sum_for(int32_t wtype) {
    return wtype == PI_TYPE_Q4_1 || wtype == PI_TYPE_Q5_1 ? Q8_SUM_F16 : Q8_SUM_EXACT;
}

void act_prepare(int32_t wtype, const float * x, int64_t n_cols, void * out) {
    const dot_table & t = dot_table_current();
    switch (act_kind_for(wtype)) {
        case ACT_F32: {
            float * y = static_cast<float *>(out);
            if (y != x) std::memcpy(y, x, (size_t)n_cols * sizeof(float));
            if (wtype == PI_TYPE_F16) t.round_f16(y, n_cols);
            if (wtype == PI_TYPE_BF16) {
                for (int64_t i = 0; i < n_cols; i++) y[i] = bf16_to_fp32(fp32_to_bf16(y[i]));
            }
            break;
        }
        case ACT_Q8:  t.prepare_q8(x, n_cols, out, q8_sum_for(wtype)); break;
        case ACT_Q8K: t.prepare_q8k(x, n_cols, out); break;
        default: break;
    }
}

}  // namespace pi
