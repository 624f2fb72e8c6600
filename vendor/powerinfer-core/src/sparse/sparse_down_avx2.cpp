// sparse_down_avx2.cpp - AVX2 + FMA + F16C scaled-row-accumulate kernels for F32, F16, Q4_0 and
// Q8_0 (the types of PowerInfer's published files and our own) and Q4_K (the usual type of
// published GGUF files). Other types keep the scalar reference (sparse_down.cpp).
//
// Rows are taken four at a time (sixteen for Q4_0 and Q8_0): each 8-float piece of y is loaded
// once, receives the rows' terms in list order (one FMA each), and is stored once, which cuts the
// traffic on y by that factor compared with one row at a time. Each row window is read front to back, and the windows of the next group
// are prefetched while a group is computed (down_rows_loop.h); the window of y (at most n_embd floats)
// stays in L1.
#include "sparse/sparse_down.h"
#include "sparse/down_rows_loop.h"

#include "cpu/blocks.h"
#include "cpu/quant_rows.h"
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

// Blocks of 32: scale s = a * d per row and block, then y += s * q (q exact in float). With pf (the
// next R rows, or nullptr), each block of those rows is requested as the same block of these is
// read.
template <int R, class B, void (*UNPACK)(const B *, __m256 *)>
void rows_q32_pf(const char * const * r, const float * a, float * y, int64_t n, const char * const * pf) {
    const int64_t nb = n / 32;
    for (int64_t b = 0; b < nb; b++) {
        if (pf) {
            for (int j = 0; j < R; j++) _mm_prefetch(pf[j] + b * sizeof(B), _MM_HINT_T1);
        }
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

template <int R, class B, void (*UNPACK)(const B *, __m256 *)>
void rows_q32(const char * const * r, const float * a, float * y, int64_t n) {
    rows_q32_pf<R, B, UNPACK>(r, a, y, n, nullptr);
}

// Q4_K: per block of 256 and sub-block j of 32, value = (d * sc_j) * q - dmin * mn_j, as
// dequantize_row_q4_K computes it (a product, then a difference), then y += a * value. R rows at a
// time share each 8-value piece of y, as rows_q32.
template <int R>
void rows_q4_K(const char * const * r, const float * a, float * y, int64_t n) {
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++) {
        float dl[R][8], ml[R][8];  // per row and sub-block: d * sc, dmin * mn
        for (int k = 0; k < R; k++) {
            const block_q4_K * blk = reinterpret_cast<const block_q4_K *>(r[k]) + b;
            const float d = h2f(blk->d), dmin = h2f(blk->dmin);
            for (int j = 0; j < 8; j++) {
                uint8_t sc, mn;
                k4_get_scale_min(blk->scales, j, &sc, &mn);
                dl[k][j] = d * (float)sc;
                ml[k][j] = dmin * (float)mn;
            }
        }
        for (int j = 0; j < 8; j++) {  // sub-block: 32 values, bytes 32 * (j / 2) of qs, nibble j % 2
            float * yj = y + b * QK_K + 32 * j;
            __m256  acc[4];
            for (int v = 0; v < 4; v++) acc[v] = _mm256_loadu_ps(yj + 8 * v);
            for (int k = 0; k < R; k++) {
                const block_q4_K * blk = reinterpret_cast<const block_q4_K *>(r[k]) + b;
                __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(blk->qs + 32 * (j / 2)));
                q = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(q, 4) : q, m4);
                const __m256 D = _mm256_set1_ps(dl[k][j]), M = _mm256_set1_ps(ml[k][j]), A = _mm256_set1_ps(a[k]);
                const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
                const __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
                for (int v = 0; v < 4; v++) {
                    const __m256 qf    = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(part[v]));
                    const __m256 value = _mm256_sub_ps(_mm256_mul_ps(D, qf), M);
                    acc[v]             = _mm256_fmadd_ps(A, value, acc[v]);
                }
            }
            for (int v = 0; v < 4; v++) _mm256_storeu_ps(yj + 8 * v, acc[v]);
        }
    }
}

// Bytes of a window of n values, per type.
inline size_t win_f32(int64_t n) { return (size_t)n * 4; }
inline size_t win_f16(int64_t n) { return (size_t)n * 2; }
inline size_t win_q4_0(int64_t n) { return (size_t)(n / 32) * sizeof(block_q4_0); }
inline size_t win_q8_0(int64_t n) { return (size_t)(n / 32) * sizeof(block_q8_0); }
inline size_t win_q4_K(int64_t n) { return (size_t)(n / QK_K) * sizeof(block_q4_K); }

}  // namespace

void down_table_fill_avx2(down_table & t) {
    t.rows[PI_TYPE_F32]  = down_rows_loop<rows_f32<4>, rows_f32<1>, win_f32>;
    t.rows[PI_TYPE_F16]  = down_rows_loop<rows_f16<4>, rows_f16<1>, win_f16>;
    t.rows[PI_TYPE_Q4_0] = down_rows_loop<rows_q32<4, block_q4_0, q4_0_unpack>, rows_q32<1, block_q4_0, q4_0_unpack>,
                                          win_q4_0, rows_q32_pf<16, block_q4_0, q4_0_unpack>>;
    t.rows[PI_TYPE_Q8_0] = down_rows_loop<rows_q32<4, block_q8_0, q8_0_unpack>, rows_q32<1, block_q8_0, q8_0_unpack>,
                                          win_q8_0, rows_q32_pf<16, block_q8_0, q8_0_unpack>>;
    t.rows[PI_TYPE_Q4_K] = down_rows_loop<rows_q4_K<4>, rows_q4_K<1>, win_q4_K>;
    for (int type : {PI_TYPE_F32, PI_TYPE_F16, PI_TYPE_Q4_0, PI_TYPE_Q8_0, PI_TYPE_Q4_K}) t.names[type] = "avx2-float";
}

}  // namespace pi
