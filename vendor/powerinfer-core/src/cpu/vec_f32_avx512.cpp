// vec_f32_avx512.cpp - AVX-512F versions of the f32 vector helpers (vec_f32.cpp has the scalar
// ones and the entry points), which also serve F32 and F16 weight rows, one activation or a batch.
// Tails shorter than a vector are done one value at a time.
#include "powerinfer.h"
#include "cpu/dot.h"

// GCC 12's avx512fintrin.h starts some results from _mm512_undefined_*() and then flags its own
// code with -W(maybe-)uninitialized in every caller; no undefined lane is ever read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cmath>

namespace pi {

namespace {

inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

// f16 -> f32 with the F16C instruction (one value), local so that no inline function of another
// file is compiled with this file's ISA flags.
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
inline float f2f(float v) { return v; }
inline __m512 load_h(const uint16_t * p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p))); }
inline __m512 load_f(const float * p) { return _mm512_loadu_ps(p); }

// NB activations x[b] against one row a of n values, in the same order of operations for every NB
// (two vector chains, their sum, then the tail with explicit fma), so that a batched product gives
// each activation the very bits of a single one.
template <int NB, class A, __m512 (*load)(const A *), float (*conv)(A)>
inline void dot_nb(const A * a, const float * const * x, int64_t n, float * out) {
    constexpr int W = 16;
    __m512 s0[NB], s1[NB];
    for (int b = 0; b < NB; b++) s0[b] = s1[b] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        const __m512 w0 = load(a + i), w1 = load(a + i + W);
        for (int b = 0; b < NB; b++) {
            s0[b] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[b] + i), s0[b]);
            s1[b] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x[b] + i + W), s1[b]);
        }
    }
    for (; i + W <= n; i += W) {
        const __m512 w0 = load(a + i);
        for (int b = 0; b < NB; b++) s0[b] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[b] + i), s0[b]);
    }
    for (int b = 0; b < NB; b++) out[b] = hsum(_mm512_add_ps(s0[b], s1[b]));
    for (; i < n; i++) {
        const float w = conv(a[i]);
        for (int b = 0; b < NB; b++) out[b] = std::fma(w, x[b][i], out[b]);
    }
}

float dot_f32_v(const float * a, const float * b, int64_t n) {
    float r;
    dot_nb<1, float, load_f, f2f>(a, &b, n, &r);
    return r;
}

float dot_f16_f32_v(const uint16_t * a, const float * b, int64_t n) {
    float r;
    dot_nb<1, uint16_t, load_h, h2f>(a, &b, n, &r);
    return r;
}

void axpy_f16_f32_v(float * y, float a, const uint16_t * x, int64_t n) {
    const __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, load_h(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * h2f(x[i]);
}

void axpy_f32_v(float * y, float a, const float * x, int64_t n) {
    const __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

// F32 and F16 weight rows against ACT_F32 activations: the same dot products.
float dot_f32_row(int64_t n, const void * w, const void * x) {
    return dot_f32_v(static_cast<const float *>(w), static_cast<const float *>(x), n);
}
float dot_f16_row(int64_t n, const void * w, const void * x) {
    return dot_f16_f32_v(static_cast<const uint16_t *>(w), static_cast<const float *>(x), n);
}

template <class A, __m512 (*load)(const A *), float (*conv)(A)>
void row_batch(int64_t n, const void * w, const void * xq, size_t xs, int nb, float * out, int64_t ldo) {
    const A *     a = static_cast<const A *>(w);
    const float * x[4];
    float         r[4];
    for (int b = 0; b < nb; b++) x[b] = reinterpret_cast<const float *>(static_cast<const char *>(xq) + b * xs);
    switch (nb) {
        case 1: dot_nb<1, A, load, conv>(a, x, n, r); break;
        case 2: dot_nb<2, A, load, conv>(a, x, n, r); break;
        case 3: dot_nb<3, A, load, conv>(a, x, n, r); break;
        default: dot_nb<4, A, load, conv>(a, x, n, r); break;
    }
    for (int b = 0; b < nb; b++) out[b * ldo] = r[b];
}

// out[r] = _mm512_reduce_add_ps(t[r]) for r < 16, bit for bit: GCC's reduction adds the upper
// and lower 256-bit halves, then the 128-bit halves, then lanes (0, 2) and (1, 3), then the two
// results. The same pairs are added here, sixteen rows at a time: two rows share each shuffle.
inline __m512 reduce16(const __m512 * t) {
    __m512 a[8], b[4], c[2];
    for (int p = 0; p < 8; p++) {  // lane i + lane i + 8: row 2p in lanes 0-7, row 2p + 1 in 8-15
        const __m512 lo = _mm512_shuffle_f32x4(t[2 * p], t[2 * p + 1], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512 hi = _mm512_shuffle_f32x4(t[2 * p], t[2 * p + 1], _MM_SHUFFLE(3, 2, 3, 2));
        a[p] = _mm512_add_ps(hi, lo);
    }
    for (int p = 0; p < 4; p++) {  // i + i + 4 of those 8: quarter j holds row 4p + j
        const __m512 lo = _mm512_shuffle_f32x4(a[2 * p], a[2 * p + 1], _MM_SHUFFLE(2, 0, 2, 0));
        const __m512 hi = _mm512_shuffle_f32x4(a[2 * p], a[2 * p + 1], _MM_SHUFFLE(3, 1, 3, 1));
        b[p] = _mm512_add_ps(hi, lo);
    }
    for (int p = 0; p < 2; p++) {  // (0 + 2, 1 + 3): quarter j holds rows 8p + j and 8p + 4 + j
        const __m512 lo = _mm512_shuffle_ps(b[2 * p], b[2 * p + 1], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512 hi = _mm512_shuffle_ps(b[2 * p], b[2 * p + 1], _MM_SHUFFLE(3, 2, 3, 2));
        c[p] = _mm512_add_ps(lo, hi);
    }
    const __m512 lo = _mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512 hi = _mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1));
    const __m512 d  = _mm512_add_ps(lo, hi);  // lane 4j + m holds row j + 4m
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(order, d);
}

// dot_nb's two chains for NB activations over sixteen rows, then reduce16: the same FMAs in the
// same order per (row, activation), so the same bits. n a multiple of 16 (checked by the caller).
template <int NB, class A, __m512 (*load)(const A *)>
void short16(int64_t n, const char * W, size_t row_bytes, const float * const * x, float * Y, int64_t ldy) {
    __m512 t[NB][16];
    for (int k = 0; k < 16; k++) {
        const A * a = reinterpret_cast<const A *>(W + (size_t)k * row_bytes);
        __m512 s0[NB], s1[NB];
        for (int b = 0; b < NB; b++) s0[b] = s1[b] = _mm512_setzero_ps();
        int64_t i = 0;
        for (; i + 32 <= n; i += 32) {
            const __m512 w0 = load(a + i), w1 = load(a + i + 16);
            for (int b = 0; b < NB; b++) {
                s0[b] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[b] + i), s0[b]);
                s1[b] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x[b] + i + 16), s1[b]);
            }
        }
        if (i < n) {
            const __m512 w0 = load(a + i);
            for (int b = 0; b < NB; b++) s0[b] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[b] + i), s0[b]);
        }
        for (int b = 0; b < NB; b++) t[b][k] = _mm512_add_ps(s0[b], s1[b]);
    }
    for (int b = 0; b < NB; b++) _mm512_storeu_ps(Y + b * ldy, reduce16(t[b]));
}

template <class A, __m512 (*load)(const A *), float (*conv)(A)>
void short_rows(int64_t n, const void * W, size_t row_bytes, int64_t n_rows, const void * xq, size_t xs, int nb,
                float * Y, int64_t ldy) {
    const char * w = static_cast<const char *>(W);
    const float * x[4];
    for (int b = 0; b < nb; b++) x[b] = reinterpret_cast<const float *>(static_cast<const char *>(xq) + b * xs);
    int64_t r = 0;
    if (n % 16 == 0) {
        for (; r + 16 <= n_rows; r += 16) {
            const char * wr = w + (size_t)r * row_bytes;
            switch (nb) {
                case 1: short16<1, A, load>(n, wr, row_bytes, x, Y + r, ldy); break;
                case 2: short16<2, A, load>(n, wr, row_bytes, x, Y + r, ldy); break;
                case 3: short16<3, A, load>(n, wr, row_bytes, x, Y + r, ldy); break;
                default: short16<4, A, load>(n, wr, row_bytes, x, Y + r, ldy); break;
            }
        }
    }
    for (; r < n_rows; r++) row_batch<A, load, conv>(n, w + (size_t)r * row_bytes, xq, xs, nb, Y + r, ldy);
}

}  // namespace

void vec_f32_fill_avx512(dot_table & t) {
    t.dot[PI_TYPE_F32]        = dot_f32_row;
    t.dot[PI_TYPE_F16]        = dot_f16_row;
    t.dot_batch[PI_TYPE_F32]  = row_batch<float, load_f, f2f>;
    t.dot_batch[PI_TYPE_F16]  = row_batch<uint16_t, load_h, h2f>;
    t.batch_max[PI_TYPE_F32]  = 4;
    t.batch_max[PI_TYPE_F16]  = 4;
    t.short_rows[PI_TYPE_F32] = short_rows<float, load_f, f2f>;
    t.short_rows[PI_TYPE_F16] = short_rows<uint16_t, load_h, h2f>;
    t.dot_f32      = dot_f32_v;
    t.dot_f16_f32  = dot_f16_f32_v;
    t.axpy_f16_f32 = axpy_f16_f32_v;
    t.axpy_f32     = axpy_f32_v;
}

}  // namespace pi
