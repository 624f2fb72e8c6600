// quant_rows.h - per-type row converters behind pi::dequantize / pi::quantize (cpu/quant.cpp).
//
// Every function takes a row of n values, n a multiple of the type's block size (the caller
// checks). They are the scalar reference: clear and exact, not fast. Dequantizers reproduce the
// float32 arithmetic of the format's definition operation by operation (d * sc first, then times q,
// then minus the offset), so their results equal gguf.quants' numpy dequantizers bit for bit. Products
// are kept in their own statements so that no compiler may fuse them into an FMA.
#pragma once

#include <cstdint>

namespace pi {

// Whether pi::dequantize / pi::quantize (cpu/kernels.h) handle this type id.
bool can_dequantize(int32_t type);
bool can_quantize(int32_t type);

// F32 / F16 / BF16 (cpu/quant_float.cpp). F16 and BF16 round to nearest even.
void dequantize_row_f32(const void * src, float * dst, int64_t n);
void dequantize_row_f16(const void * src, float * dst, int64_t n);
void dequantize_row_bf16(const void * src, float * dst, int64_t n);
void quantize_row_f32(const float * src, void * dst, int64_t n);
void quantize_row_f16(const float * src, void * dst, int64_t n);
void quantize_row_bf16(const float * src, void * dst, int64_t n);

// Blocks of 32 (cpu/quant_legacy.cpp). The quantizers follow the format's reference rounding, as
// gguf.quants implements it, so their bytes equal gguf.quants.quantize.
void dequantize_row_q4_0(const void * src, float * dst, int64_t n);
void dequantize_row_q4_1(const void * src, float * dst, int64_t n);
void dequantize_row_q5_0(const void * src, float * dst, int64_t n);
void dequantize_row_q5_1(const void * src, float * dst, int64_t n);
void dequantize_row_q8_0(const void * src, float * dst, int64_t n);
void dequantize_row_q8_1(const void * src, float * dst, int64_t n);
void quantize_row_q4_0(const float * src, void * dst, int64_t n);
void quantize_row_q4_1(const float * src, void * dst, int64_t n);
void quantize_row_q5_0(const float * src, void * dst, int64_t n);
void quantize_row_q5_1(const float * src, void * dst, int64_t n);
void quantize_row_q8_0(const float * src, void * dst, int64_t n);
void quantize_row_q8_1(const float * src, void * dst, int64_t n);

// K-quants, super-blocks of 256 (cpu/quant_k_dequant.cpp, cpu/quant_k.cpp). The quantizers search
// scales that minimise the squared error of each super-block (see quant_k_fit.h).
void dequantize_row_q2_K(const void * src, float * dst, int64_t n);
void dequantize_row_q3_K(const void * src, float * dst, int64_t n);
void dequantize_row_q4_K(const void * src, float * dst, int64_t n);
void dequantize_row_q5_K(const void * src, float * dst, int64_t n);
void dequantize_row_q6_K(const void * src, float * dst, int64_t n);
void dequantize_row_q8_K(const void * src, float * dst, int64_t n);
void quantize_row_q2_K(const float * src, void * dst, int64_t n);
void quantize_row_q3_K(const float * src, void * dst, int64_t n);
void quantize_row_q4_K(const float * src, void * dst, int64_t n);
void quantize_row_q5_K(const float * src, void * dst, int64_t n);
void quantize_row_q6_K(const float * src, void * dst, int64_t n);
void quantize_row_q8_K(const float * src, void * dst, int64_t n);

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block, packed in 12 bytes:
// bytes 0-3 hold the low 6 bits of scales 0-3, bytes 4-7 the low 6 bits of mins 0-3, bytes 8-11
// the low 4 bits of scale j+4 (low nibble) and min j+4 (high nibble); the top 2 bits of scale and
// min j+4 sit in the top 2 bits of bytes j and j+4. Inline and static (each file compiled for its
// own ISA keeps its copy): the SIMD down kernel of sparse_down_avx2.cpp calls it per row and block,
// where an out-of-line call cost 2.4x the kernel's time.
static inline void k4_get_scale_min(const uint8_t * p, int j, uint8_t * sc, uint8_t * mn) {
    if (j < 4) {
        *sc = p[j] & 63;
        *mn = p[j + 4] & 63;
    } else {
        *sc = static_cast<uint8_t>((p[j + 4] & 0x0F) | ((p[j - 4] >> 6) << 4));
        *mn = static_cast<uint8_t>((p[j + 4] >> 4) | ((p[j] >> 6) << 4));
    }
}
void k4_pack_scale_mins(const uint8_t sc[8], const uint8_t mn[8], uint8_t * packed);
// The 16 6-bit scales of a Q3_K super-block (stored biased by 32) in 12 bytes: the low nibble of
// scale i is nibble (i / 8) of byte i % 8; its top 2 bits are bits 2 * (i / 4) of byte 8 + i % 4.
uint8_t k3_get_scale(const uint8_t * packed, int i);
void k3_pack_scales(const uint8_t sc[16], uint8_t * packed);

}  // namespace pi
