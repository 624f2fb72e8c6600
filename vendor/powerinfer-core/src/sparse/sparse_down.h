// sparse_down.h - the "scaled row accumulate" kernels of the sparse down projection, per weight
// type and ISA (sparse_down.cpp: scalar reference and dispatch; sparse_down_avx2.cpp and
// sparse_down_avx512.cpp: SIMD paths for F32, F16, Q4_0 and Q8_0).
//
// A sparse file stores the down projection transposed, as ffn_down_t dims [n_embd, n_ff]: one
// contiguous row of n_embd values per neuron. The FFN output is then
//     y[c] = sum over k of h[k] * down_t[ids[k]][c],
// a sum of scaled rows, which reads only the rows of the active neurons.
//
// A kernel works on a column window [c0, c0 + n) of every row (c0 and n whole blocks of the type),
// so that threads can split the n_embd output columns: each thread owns its part of y and no two
// threads write the same float (see sparse_ffn.h for why columns and not neurons are split).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pi {

// y[0..n) += sum over k < n_ids with h[k] != 0 of h[k] * (values [c0, c0 + n) of row ids[k] of W),
// rows row_bytes apart, col_off = the byte offset of column c0 inside a row. Rows are added in the
// order of the list, one after the other, so every ISA sums each y[c] in the same order.
typedef void (*down_rows_fn)(const void * W, size_t row_bytes, size_t col_off, const int32_t * ids,
                             const float * h, int64_t n_ids, float * y, int64_t n);

constexpr int DOWN_N_TYPES = 31;  // type ids we index with (BF16 = 30)

struct down_table {
    down_rows_fn rows[DOWN_N_TYPES];   // nullptr: the scalar reference
    const char * names[DOWN_N_TYPES];  // which kernel, for benchmarks and tests ("avx2-float", ...)
};

// Fill a table with the kernels of one ISA (entries left untouched where that ISA has none).
void down_table_fill_scalar(down_table & t);
void down_table_fill_avx2(down_table & t);
void down_table_fill_avx512(down_table & t);
// Q4_0 and Q8_0 with int8 dot products (needs AVX512-VNNI and AVX512-VBMI; results differ from
// the float kernels by one int8 rounding per block of 4 rows: sparse_down_int8_avx512.cpp).
void down_table_fill_avx512_int8(down_table & t);

// True if the down kernels handle this weight type (every type pi::dequantize reads).
bool down_supports(int32_t type);

// The kernel for type under the ISA chosen now (pi_cpu_get_isa: POWERINFER_ISA=scalar forces the
// reference). type must satisfy down_supports.
down_rows_fn down_kernel(int32_t type);
// Its name ("scalar", "avx2-float", "avx512-float", "avx512-vnni-int8"), or nullptr when
// down_supports(type) is false.
const char * down_kernel_name(int32_t type);

}  // namespace pi
