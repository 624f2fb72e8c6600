// quant_float.cpp - rows of F32, F16 and BF16 (one value per "block").
#include "core/types.h"
#include "cpu/kernels.h"
#include "cpu/quant_rows.h"

#include <cstring>

namespace pi {

void dequantize_row_f32(const void * src, float * dst, int64_t n) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void dequantize_row_f16(const void * src, float * dst, int64_t n) {
    const uint16_t * h = static_cast<const uint16_t *>(src);
    for (int64_t i = 0; i < n; i++) dst[i] = fp16_to_fp32(h[i]);
}

void dequantize_row_bf16(const void * src, float * dst, int64_t n) {
    const uint16_t * h = static_cast<const uint16_t *>(src);
    for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_fp32(h[i]);
}

void quantize_row_f32(const float * src, void * dst, int64_t n) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void quantize_row_f16(const float * src, void * dst, int64_t n) {
    to_f16(src, n, static_cast<uint16_t *>(dst));
}

void quantize_row_bf16(const float * src, void * dst, int64_t n) {
    uint16_t * h = static_cast<uint16_t *>(dst);
    for (int64_t i = 0; i < n; i++) h[i] = fp32_to_bf16(src[i]);
}

}  // namespace pi
