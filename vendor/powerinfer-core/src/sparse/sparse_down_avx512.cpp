// sparse_down_avx512.cpp - AVX-512 (F, BW, VL, DQ) scaled-row-accumulate kernels for F32, F16,
// Q4_0 and Q8_0: the AVX2 scheme (sparse_down_avx2.cpp) with 16 floats per vector, so a block of
// 32 is two vectors. Types without a kernel here fall back to AVX2, then to the scalar reference.
#include "sparse/sparse_down.h"
#include "sparse/down_rows_loop.h"

#include "cpu/blocks.h"
#include "powerinfer.h"

#include <immintrin.h>

// GCC 12 warns that the "undefined" source vector inside its own AVX-512 conversion intrinsics
// may be used uninitialized (a false positive of its headers, not of this code).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace pi {

namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// Q4_0 block -> values 0-15 and 16-31 as floats q - 8. Each byte is widened to a 32-bit lane;
// vpermps looks its lane up in a table of the 16 values -8..7 by the lane's low 4 bits, which are
// the low nibble as loaded and the high nibble after a shift by 4: two lookups replace the
// mask / shift / subtract / sign-extend / convert sequence.
inline void q4_0_unpack(const block_q4_0 * b, __m512 v[2]) {
    const __m512  table = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(b->qs)));
    v[0] = _mm512_permutexvar_ps(bytes, table);                        // low nibbles: values 0..15
    v[1] = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table);  // high nibbles: values 16..31
}

inline void q8_0_unpack(const block_q8_0 * b, __m512 v[2]) {
    v[0] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(b->qs))));
    v[1] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(b->qs + 16))));
}

template <int R>
void rows_f32(const char * const * r, const float * a, float * y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 acc = _mm512_loadu_ps(y + i);
        for (int j = 0; j < R; j++) {
            acc = _mm512_fmadd_ps(_mm512_set1_ps(a[j]), _mm512_loadu_ps(reinterpret_cast<const float *>(r[j]) + i), acc);
        }
        _mm512_storeu_ps(y + i, acc);
    }
    for (; i < n; i++) {
        for (int j = 0; j < R; j++) y[i] += a[j] * reinterpret_cast<const float *>(r[j])[i];
    }
}

template <int R>
void rows_f16(const char * const * r, const float * a, float * y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 acc = _mm512_loadu_ps(y + i);
        for (int j = 0; j < R; j++) {
            const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(reinterpret_cast<const uint16_t *>(r[j]) + i));
            acc = _mm512_fmadd_ps(_mm512_set1_ps(a[j]), _mm512_cvtph_ps(w), acc);
        }
        _mm512_storeu_ps(y + i, acc);
    }
    for (; i < n; i++) {
        for (int j = 0; j < R; j++) y[i] += a[j] * h2f(reinterpret_cast<const uint16_t *>(r[j])[i]);
    }
}

template <int R, class B, void (*UNPACK)(const B *, __m512 *)>
void rows_q32(const char * const * r, const float * a, float * y, int64_t n) {
    const int64_t nb = n / 32;
    for (int64_t b = 0; b < nb; b++) {
        float * yb = y + 32 * b;
        __m512 acc0 = _mm512_loadu_ps(yb), acc1 = _mm512_loadu_ps(yb + 16);
        for (int j = 0; j < R; j++) {
            const B * blk = reinterpret_cast<const B *>(r[j]) + b;
            const __m512 s = _mm512_set1_ps(a[j] * h2f(blk->d));
            __m512 q[2];
            UNPACK(blk, q);
            acc0 = _mm512_fmadd_ps(s, q[0], acc0);
            acc1 = _mm512_fmadd_ps(s, q[1], acc1);
        }
        _mm512_storeu_ps(yb, acc0);
        _mm512_storeu_ps(yb + 16, acc1);
    }
}

// Bytes of a window of n values, per type.
inline size_t win_f32(int64_t n) { return (size_t)n * 4; }
inline size_t win_f16(int64_t n) { return (size_t)n * 2; }
inline size_t win_q4_0(int64_t n) { return (size_t)(n / 32) * sizeof(block_q4_0); }
inline size_t win_q8_0(int64_t n) { return (size_t)(n / 32) * sizeof(block_q8_0); }

}  // namespace

void down_table_fill_avx512(down_table & t) {
    t.rows[PI_TYPE_F32]  = down_rows_loop<rows_f32<4>, rows_f32<1>, win_f32>;
    t.rows[PI_TYPE_F16]  = down_rows_loop<rows_f16<4>, rows_f16<1>, win_f16>;
    t.rows[PI_TYPE_Q4_0] = down_rows_loop<rows_q32<4, block_q4_0, q4_0_unpack>, rows_q32<1, block_q4_0, q4_0_unpack>, win_q4_0>;
    t.rows[PI_TYPE_Q8_0] = down_rows_loop<rows_q32<4, block_q8_0, q8_0_unpack>, rows_q32<1, block_q8_0, q8_0_unpack>, win_q8_0>;
    for (int type : {PI_TYPE_F32, PI_TYPE_F16, PI_TYPE_Q4_0, PI_TYPE_Q8_0}) t.names[type] = "avx512-float";
}

}  // namespace pi
