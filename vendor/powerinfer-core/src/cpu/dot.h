// dot.h - what the per-ISA kernel files (dot_scalar.cpp, dot_avx2.cpp, dot_avx512.cpp) hand to the
// dispatcher: one row-dot function per weight type, a batched variant where written, and the f32
// vector helpers. Also the layouts of the prepared activations (act_quant.cpp writes them).
//
// Prepared activation formats (ours, internal; act_bytes gives the sizes):
//   ACT_F32  n floats, as given (F32, F16, BF16 weights).
//   ACT_Q8   blocks of 32: all n int8 values q first, then per block b the floats (d_b, s_b), so
//            x ~ d_b * q. Keeping the values contiguous lets one SIMD load fetch several blocks.
//            Used by Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (s_b carries the offset term of the _1 types and
//            the "- 8" / "- 16" of the _0 types).
//            d_b is rounded to f16 precision, as in the q8_0 / q8_1 blocks ggml dots these types
//            with: the scale then costs nothing in accuracy that matters (2^-11 relative against
//            the 1/254 of the int8 rounding) and our products agree with llama.cpp's to the last
//            few bits, so greedy decoding picks the same tokens at near-ties. For the same reason
//            s_b is what each weight type's ggml partner uses: Q8_SUM_F16 (Q4_1, Q5_1) stores
//            f16(d * sum(q)) with the unrounded d, as q8_1 does; Q8_SUM_EXACT (the _0 types) stores
//            d_b * sum(q), exact in f32 (11-bit d times a 12-bit sum), which equals dotting with
//            (q - 8) block by block as ggml does.
//   ACT_Q8K  block_q8_K per 256 values (blocks.h): float d, int8 q[256], int16 sums of each 16.
//            Used by the K-quants.
//   ACT_F32 for F16 (BF16) weights: the floats rounded to f16 (bf16) precision first, as ggml converts
//            the activation to the weight's type before dotting; the products stay exact in f32.
// All quantized activations use d = amax / 127 and q = round-half-even(x * (127 / amax)), so |q| <= 127.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pi {

enum act_kind { ACT_NONE = 0, ACT_F32, ACT_Q8, ACT_Q8K };

// What s_b of an ACT_Q8 block holds (see above).
enum q8_sum { Q8_SUM_EXACT = 0, Q8_SUM_F16 = 1 };

// Largest GGUF type id we index tables with (BF16 = 30).
constexpr int DOT_N_TYPES = 31;

// The activation format a weight type is dotted with (ACT_NONE: type not supported).
act_kind act_kind_for(int32_t wtype);

// ACT_Q8 accessors: the n int8 values, then (d, s) float pairs per block of 32. Static: each file,
// compiled for its own ISA, keeps its own copy (an inline function shared between files compiled
// with different flags could be linked to the wrong one).
static inline const int8_t * act_q8_values(const void * xq) { return static_cast<const int8_t *>(xq); }
static inline const float * act_q8_scales(const void * xq, int64_t n) {
    return reinterpret_cast<const float *>(static_cast<const char *>(xq) + n);
}

// Dot product of one weight row (n values of the type) with a prepared activation.
typedef float (*vec_dot_fn)(int64_t n, const void * w, const void * xq);

// Batched: out[b * ldo] = dot(w, activation b) for b < nb (1 <= nb <= the table's batch_max for
// the type, at most DOT_MAX_BATCH), the activations x_stride bytes apart. Lets a kernel unpack a
// weight block once for several activations.
constexpr int DOT_MAX_BATCH = 8;
typedef void (*vec_dot_batch_fn)(int64_t n, const void * w, const void * xq, size_t x_stride,
                                 int nb, float * out, int64_t ldo);

// Rows: y[r] = dot(row r of W, x) for r < n_rows, rows row_bytes apart; the row loop of matvec
// inside the kernel's file, so that the row kernel is inlined rather than called through a pointer.
typedef void (*vec_dot_rows_fn)(int64_t n, const void * W, size_t row_bytes, const void * xq, float * y,
                                int64_t n_rows);

// Scattered rows: y[k] = dot(row ids[k] of W, x) for k < n_ids (the sparse FFN's active neurons),
// the bits of dot per row. Row k + ahead is requested into L2 while row k is computed, at the pace
// row k is read.
typedef void (*vec_dot_rows_ids_fn)(int64_t n, const void * W, size_t row_bytes, const void * xq, const int32_t * ids,
                                    int64_t n_ids, float * y, int ahead);

// Many short rows (n values each, as the keys of attention: head_dim 64 or 128) against nb <= 4
// activations: Y[b * ldy + r] = dot(row r of W, activation b) for r < n_rows, rows row_bytes apart.
// The bits of dot_batch's for every (row, activation); faster because sixteen rows share one
// horizontal reduction instead of one each.
typedef void (*vec_dot_short_fn)(int64_t n, const void * W, size_t row_bytes, int64_t n_rows, const void * xq,
                                 size_t x_stride, int nb, float * Y, int64_t ldy);

// A block of the batched product: Y[b * ldy + r] = dot(row ids[r] of W (row r when ids is null),
// activation b) for r < n_rows and b < n_b (any count; the activations xs bytes apart), the bits of
// dot for every pair. For kernels that gain from preparing the activations once for many rows.
typedef void (*vec_dot_block_fn)(int64_t n, const void * W, size_t row_bytes, int64_t n_rows, const int32_t * ids,
                                 const void * xq, size_t xs, int64_t n_b, float * Y, int64_t ldy);

struct dot_table {
    vec_dot_fn       dot[DOT_N_TYPES];        // nullptr: use the scalar one
    vec_dot_rows_fn  dot_rows[DOT_N_TYPES];   // nullptr: matvec calls dot per row
    vec_dot_rows_ids_fn dot_rows_ids[DOT_N_TYPES];  // nullptr: the sparse FFN calls dot per row
    vec_dot_batch_fn dot_batch[DOT_N_TYPES];  // nullptr: call dot per activation
    int              batch_max[DOT_N_TYPES];  // largest nb dot_batch takes
    vec_dot_short_fn short_rows[DOT_N_TYPES]; // nullptr: per row through dot_batch (see matmul)
    vec_dot_block_fn block_rows[DOT_N_TYPES]; // nullptr: matmul's own loop over dot_batch
    // Converts n floats into the ACT_Q8 / ACT_Q8K format (nullptr: scalar). Must give the same bytes
    // as the scalar code: tests compare them.
    void (*prepare_q8)(const float * x, int64_t n, void * out, q8_sum sum_kind);
    void (*prepare_q8k)(const float * x, int64_t n, void * out);
    float (*dot_f32)(const float * a, const float * b, int64_t n);
    float (*dot_f16_f32)(const uint16_t * a, const float * b, int64_t n);
    // weighted_rows of kernels.h for F16 and F32 rows, ld elements apart.
    void  (*weighted_rows_f16)(const uint16_t * V, int64_t ld, int64_t n_rows, int64_t n_cols, const float * p,
                               int64_t ldp, int nb, float * out, int64_t ldo);
    void  (*weighted_rows_f32)(const float * V, int64_t ld, int64_t n_rows, int64_t n_cols, const float * p,
                               int64_t ldp, int nb, float * out, int64_t ldo);
    void  (*round_f16)(float * x, int64_t n);  // x[i] = nearest f16 value (ties to even), in place
    void  (*to_f16)(const float * x, int64_t n, uint16_t * h);  // h[i] = fp32_to_fp16(x[i])
};

// Each fills the entries it has written; the dispatcher starts from the scalar table.
void dot_table_fill_scalar(dot_table & t);
void dot_table_fill_avx2(dot_table & t);    // dot_avx2.cpp, vec_f32_avx2.cpp
void dot_table_fill_avx512(dot_table & t);  // dot_avx512.cpp, vec_f32_avx512.cpp

// Parts of the above that live in their own files.
void vec_f32_fill_scalar(dot_table & t);
void vec_f32_fill_avx2(dot_table & t);
void vec_f32_fill_avx512(dot_table & t);
void dot_k_fill_avx2(dot_table & t);       // dot_k_avx2.cpp: the K-quants
void act_quant_fill_avx2(dot_table & t);   // act_quant_avx2.cpp: the activation converters

// The scalar activation converters (act_quant.cpp), the reference the SIMD ones must equal.
void act_prepare_q8_scalar(const float * x, int64_t n, void * out, q8_sum sum_kind);
void act_prepare_q8k_scalar(const float * x, int64_t n, void * out);

// The table of the ISA chosen now (dispatch.cpp). Never null.
const dot_table & dot_table_current();

}  // namespace pi
