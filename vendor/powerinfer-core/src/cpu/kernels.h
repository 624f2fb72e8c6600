// kernels.h - the CPU kernels the forward pass calls: quantized matrix-vector and matrix-matrix
// products per weight type, with a scalar reference and AVX2 / AVX-512 paths chosen at run time
// (pi_cpu_set_isa, env POWERINFER_ISA).
//
// A product W·x runs in two steps, as in ggml: the activation x is converted once into the format
// the weight type is dotted with (f32 for F32, Q8_0-style blocks for Q4_0/Q5_0/Q8_0, Q8_1-style
// blocks with sums for Q4_1/Q5_1, Q8_K blocks for the K-quants, ...), then every weight row is
// dotted with it. Rows can be split among threads freely: each call writes y[r0..r1) only.
#pragma once

#include "powerinfer.h"

#include <cstddef>
#include <cstdint>

namespace pi {

// True if matvec/matmul/dequantize support this weight type.
bool kernel_supports(int32_t wtype);

// Bytes of the prepared activation for a row of n_cols.
size_t act_bytes(int32_t wtype, int64_t n_cols);
// Converts x (n_cols floats) into the activation format of wtype, written to out (act_bytes).
void act_prepare(int32_t wtype, const float * x, int64_t n_cols, void * out);

// y[r - r0] = dot(row r of W, x) for r in [r0, r1). W rows are w_row_bytes apart.
void matvec(int32_t wtype, const void * W, size_t w_row_bytes, const void * xq, int64_t n_cols,
            float * y, int64_t r0, int64_t r1);

// Same for a subset of rows: y[k] = dot(row rows[k] of W, x) for k in [0, n_rows). The sparse FFN
// path uses it; rows need not be sorted.
void matvec_rows(int32_t wtype, const void * W, size_t w_row_bytes, const void * xq, int64_t n_cols,
                 const int32_t * rows, int64_t n_rows, float * y);

// Batched: Y[b * ldy + r] = dot(row r of W, x_b) for b in [0, n_b), r in [r0, r1), where the n_b
// prepared activations are xq_stride bytes apart. Weight rows are read once per group of b.
void matmul(int32_t wtype, const void * W, size_t w_row_bytes, const void * xq, size_t xq_stride,
            int64_t n_b, int64_t n_cols, float * Y, int64_t ldy, int64_t r0, int64_t r1);

// Batched over a subset of rows: Y[b * ldy + k] = dot(row rows[k] of W, x_b) for b in [0, n_b), k in
// [k0, k1) (the sparse FFN of a prompt batch: the union of the tokens' active neurons). Each
// product has the bits matvec_rows gives it for that activation alone.
void matmul_rows(int32_t wtype, const void * W, size_t w_row_bytes, const void * xq, size_t xq_stride,
                 int64_t n_b, int64_t n_cols, const int32_t * rows, int64_t k0, int64_t k1, float * Y, int64_t ldy);

// dst[0..n) = the values of a row of type (n a multiple of the block size).
void dequantize(int32_t type, const void * src, float * dst, int64_t n);
// Quantizes n floats into type (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K, ...);
// returns false for a type without a quantizer.
bool quantize(int32_t type, const float * src, void * dst, int64_t n);

// Small f32 helpers the forward pass uses in its inner loops (SIMD dispatched).
float dot_f32(const float * a, const float * b, int64_t n);
float dot_f16_f32(const uint16_t * a, const float * b, int64_t n);        // KV cache keys
void  to_f16(const float * x, int64_t n, uint16_t * h);                  // h[i] = fp32_to_fp16(x[i])
// Attention's value product: out[b * ldo + c] = sum over r < n_rows of p[b * ldp + r] * V[r][c], for
// b < nb and c < n_cols, V's rows (F16 or F32) row_bytes apart. The terms are added in order of r,
// one fma each, on every ISA, so the bits depend neither on the ISA nor on nb nor on how the
// columns are split among calls.
void  weighted_rows(int32_t vtype, const void * V, size_t row_bytes, int64_t n_rows, int64_t n_cols, const float * p,
                    int64_t ldp, int nb, float * out, int64_t ldo);

}  // namespace pi
