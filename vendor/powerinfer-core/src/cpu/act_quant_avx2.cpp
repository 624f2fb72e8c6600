// act_quant_avx2.cpp - AVX2 versions of the activation converters of act_quant.cpp. They perform
// the same float operations (amax, d = amax / 127, x * (127 / amax) rounded half-even by
// cvtps2dq) and so write the same bytes.
#include "cpu/blocks.h"
#include "cpu/dot.h"

#include <immintrin.h>

namespace pi {

namespace {

inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m        = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m        = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s         = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s         = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

// Largest |x| of 32 floats.
inline float amax32(const float * x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256       m    = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
    for (int k = 8; k < 32; k += 8) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)), m);
    return hmax(m);
}

// 32 floats times id, rounded, stored as int8 at q; returns the four int32 vectors' sum vector.
inline __m256i quantize32(const float * x, float id, int8_t * q) {
    const __m256  vid = _mm256_set1_ps(id);
    const __m256i i0  = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), vid));
    const __m256i i1  = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), vid));
    const __m256i i2  = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), vid));
    const __m256i i3  = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), vid));
    // packs work within 128-bit lanes: the bytes come out in dword order 0 2 4 6 1 3 5 7
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    const __m256i o = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(q), o);
    return _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
}

inline float f16_round(float v) { return _cvtsh_ss(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT)); }

void prepare_q8(const float * x, int64_t n, void * out, q8_sum sum_kind) {
    int8_t * q  = static_cast<int8_t *>(out);
    float *  ds = reinterpret_cast<float *>(static_cast<char *>(out) + n);
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const float * xb   = x + b * QK8_0;
        const float   amax = amax32(xb);
        const float   d    = amax / 127.0f;
        const float   id   = amax > 0.0f ? 127.0f / amax : 0.0f;
        const int     sum  = hsum_i32(quantize32(xb, id, q + b * QK8_0));
        const float   dh   = f16_round(d);
        ds[2 * b + 0]      = dh;
        ds[2 * b + 1]      = sum_kind == Q8_SUM_F16 ? f16_round(d * (float)sum) : dh * (float)sum;
    }
}

void prepare_q8k(const float * x, int64_t n, void * out) {
    block_q8_K * y = static_cast<block_q8_K *>(out);
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float * xb   = x + b * QK_K;
        float         amax = 0.0f;
        for (int k = 0; k < QK_K; k += 32) {
            const float m = amax32(xb + k);
            amax          = m > amax ? m : amax;
        }
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        y[b].d         = amax / 127.0f;
        for (int k = 0; k < QK_K; k += 32) {
            quantize32(xb + k, id, y[b].qs + k);
            // sums of each 16 from the stored bytes
            const __m256i v = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(y[b].qs + k)));
            const __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(y[b].qs + k + 16)));
            y[b].bsums[k / 16]     = (int16_t)hsum_i32(_mm256_madd_epi16(v, _mm256_set1_epi16(1)));
            y[b].bsums[k / 16 + 1] = (int16_t)hsum_i32(_mm256_madd_epi16(w, _mm256_set1_epi16(1)));
        }
    }
}

}  // namespace

void act_quant_fill_avx2(dot_table & t) {
    t.prepare_q8  = prepare_q8;
    t.prepare_q8k = prepare_q8k;
}

}  // namespace pi
