// sparse_down_avx2.cpp - AVX2 + FMA + F16C scaled-row-accumulate kernels for F32, F16, Q4_0 and
// Q8_0 (the types of PowerInfer's published files and our own). Other types keep the scalar
// reference (sparse_down.cpp).
//
// Rows are taken four at a time: each 8-float piece of y is loaded once, receives the four rows'
// terms in list order (one FMA each), and is stored once, which quarters the traffic on y compared
// with one row at a time. Each row window is read front to back, and the windows of the next group
// are prefetched while a group is computed (down_rows_loop.h); the window of y (at most n_embd floats)
// stays in L1.
#include "sparse/sparse_down.h"
#include "sparse/down_rows_loop.h"

#include "cpu/blocks.h"
#include "powerinfer.h"

#include <immintrin.h>

namespace pi {

namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// Q4_0 block -> 4 vectors of 8 int32-converted floats q - 8 (values 0-7, 8-15, 16-23, 24-31).
inline void q4_0_unpack(const block_q4_0 * b, __m256 v[4]) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b->qs));
    const __m128i m4  = _mm_set1_epi8(0x0F);
    const __m128i off = _mm_set1_epi8(8);
    const __m128i lo  = _mm_sub_epi8(_mm_and_si128(raw, m4), off);                     // values 0..15
    const __m128i hi  = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), off);  // values 16..31
    v[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
    v[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
    v[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
    v[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
}

inline void q8_0_unpack(const block_q8_0 * b, __m256 v[4]) {
    for (int j = 0; j < 4; j++) {
        const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(b->qs + 8 * j));
        v[j] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
    }
}

// y[0..n) += sum_j a[j] * row_j, R rows, for each type. Rows point at the window's first value.
template <int R>
void rows_f32(const char * const * r, const float * a, float * y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 acc = _mm256_loadu_ps(y + i);
        for (int j = 0; j < R; j++) {
            acc = _mm256_fmadd_ps(_mm256_set1_ps(a[j]), _mm256_loadu_ps(reinterpret_cast<const float *>(r[j]) + i), acc);
        }
        _mm256_storeu_ps(y + i, acc);
    }
    for (; i < n; i++) {
        for (int j = 0; j < R; j++) y[i] += a[j] * reinterpret_cast<const float *>(r[j])[i];
    }
}

template <int R>
void rows_f16(const char * const * r, const float * a, float * y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 acc = _mm256_loadu_ps(y + i);
        for (int j = 0; j < R; j++) {
            const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i *>(reinterpret_cast<const uint16_t *>(r[j]) + i));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(a[j]), _mm256_cvtph_ps(w), acc);
        }
        _mm256_storeu_ps(y + i, acc);
    }
    for (; i < n; i++) {
        for (int j = 0; j < R; j++) y[i] += a[j] * h2f(reinterpret_cast<const uint16_t *>(r[j])[i]);
    }
}

// Blocks of 32: scale s = a * d per row and block, then y += s * q (q exact in float).
template <int R, class B, void (*UNPACK)(const B *, __m256 *)>
void rows_q32(const char * const * r, const float * a, float * y, int64_t n) {
    const int64_t nb = n / 32;
    for (int64_t b = 0; b < nb; b++) {
        float * yb = y + 32 * b;
        __m256 acc[4];
        for (int v = 0; v < 4; v++) acc[v] = _mm256_loadu_ps(yb + 8 * v);
        for (int j = 0; j < R; j++) {
            const B * blk = reinterpret_cast<const B *>(r[j]) + b;
            const __m256 s = _mm256_set1_ps(a[j] * h2f(blk->d));
            __m256 q[4];
            UNPACK(blk, q);
            for (int v = 0; v < 4; v++) acc[v] = _mm256_fmadd_ps(s, q[v], acc[v]);
        }
        for (int v = 0; v < 4; v++) _mm256_storeu_ps(yb + 8 * v, acc[v]);
    }
}

// Sixteen rows per pass (R = 16 above: y's block loaded and stored once for all of them), the
// same terms in the same order as four passes of four, so the same bits; each block of the next
// sixteen rows (pf, or nullptr) is requested as the same block of these is read.
template <class B, void (*UNPACK)(const B *, __m256 *)>
void rows16_q32(const char * const * r, const float * a, float * y, int64_t n, const char * const * pf) {
    const int64_t nb = n / 32;
    for (int64_t b = 0; b < nb; b++) {
        if (pf) {
            for (int j = 0; j < 16; j++) _mm_prefetch(pf[j] + b * sizeof(B), _MM_HINT_T1);
        }
        float * yb = y + 32 * b;
        __m256 acc[4];
        for (int v = 0; v < 4; v++) acc[v] = _mm256_loadu_ps(yb + 8 * v);
        for (int j = 0; j < 16; j++) {
            const B * blk = reinterpret_cast<const B *>(r[j]) + b;
            const __m256 s = _mm256_set1_ps(a[j] * h2f(blk->d));
            __m256 q[4];
            UNPACK(blk, q);
            for (int v = 0; v < 4; v++) acc[v] = _mm256_fmadd_ps(s, q[v], acc[v]);
        }
        for (int v = 0; v < 4; v++) _mm256_storeu_ps(yb + 8 * v, acc[v]);
    }
}

// Bytes of a window of n values, per type.
inline size_t win_f32(int64_t n) { return (size_t)n * 4; }
inline size_t win_f16(int64_t n) { return (size_t)n * 2; }
inline size_t win_q4_0(int64_t n) { return (size_t)(n / 32) * sizeof(block_q4_0); }
inline size_t win_q8_0(int64_t n) { return (size_t)(n / 32) * sizeof(block_q8_0); }

}  // namespace

void down_table_fill_avx2(down_table & t) {
    t.rows[PI_TYPE_F32]  = down_rows_loop<rows_f32<4>, rows_f32<1>, win_f32>;
    t.rows[PI_TYPE_F16]  = down_rows_loop<rows_f16<4>, rows_f16<1>, win_f16>;
    t.rows[PI_TYPE_Q4_0] = down_rows_loop<rows_q32<4, block_q4_0, q4_0_unpack>, rows_q32<1, block_q4_0, q4_0_unpack>,
                                          win_q4_0, rows16_q32<block_q4_0, q4_0_unpack>>;
    t.rows[PI_TYPE_Q8_0] = down_rows_loop<rows_q32<4, block_q8_0, q8_0_unpack>, rows_q32<1, block_q8_0, q8_0_unpack>,
                                          win_q8_0, rows16_q32<block_q8_0, q8_0_unpack>>;
    for (int type : {PI_TYPE_F32, PI_TYPE_F16, PI_TYPE_Q4_0, PI_TYPE_Q8_0}) t.names[type] = "avx2-float";
}

}  // namespace pi
