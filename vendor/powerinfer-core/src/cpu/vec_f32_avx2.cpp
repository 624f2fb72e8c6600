// vec_f32_avx2.cpp - AVX2 + FMA + F16C versions of the f32 vector helpers (vec_f32.cpp has the scalar ones
// and the entry points). Tails shorter than a vector are done one value at a time.
#include "powerinfer.h"
#include "cpu/dot.h"

#include <immintrin.h>

namespace pi {

namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s        = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s        = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// f16 -> f32 with the F16C instruction (one value), local so that no inline function of another
// file is compiled with this file's ISA flags.
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
inline __m256 load_h(const uint16_t * p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p))); }

float dot_f32_v(const float * a, const float * b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 * 8 <= n; i += 2 * 8) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float r = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

float dot_f16_f32_v(const uint16_t * a, const float * b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 * 8 <= n; i += 2 * 8) {
        s0 = _mm256_fmadd_ps(load_h(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(load_h(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(load_h(a + i), _mm256_loadu_ps(b + i), s0);
    float r = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++) r += h2f(a[i]) * b[i];
    return r;
}

void axpy_f16_f32_v(float * y, float a, const uint16_t * x, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load_h(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * h2f(x[i]);
}

void axpy_f32_v(float * y, float a, const float * x, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

// F32 and F16 weight rows against an ACT_F32 activation are these same dot products.
float dot_f32_row(int64_t n, const void * w, const void * x) {
    return dot_f32_v(static_cast<const float *>(w), static_cast<const float *>(x), n);
}
float dot_f16_row(int64_t n, const void * w, const void * x) {
    return dot_f16_f32_v(static_cast<const uint16_t *>(w), static_cast<const float *>(x), n);
}

}  // namespace

void vec_f32_fill_avx2(dot_table & t) {
    t.dot[PI_TYPE_F32]  = dot_f32_row;
    t.dot[PI_TYPE_F16]  = dot_f16_row;
    t.dot_f32      = dot_f32_v;
    t.dot_f16_f32  = dot_f16_f32_v;
    t.axpy_f16_f32 = axpy_f16_f32_v;
    t.axpy_f32     = axpy_f32_v;
}

}  // namespace pi
