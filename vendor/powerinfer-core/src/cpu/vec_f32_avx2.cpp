// vec_f32_avx2.cpp - AVX2 + FMA + F16C versions of the f32 vector helpers (vec_f32.cpp has the scalar
// ones and the entry points), which also serve F32 and F16 weight rows, one activation or a batch.
// Tails shorter than a vector are done one value at a time.
#include "powerinfer.h"
#include "cpu/dot.h"
#include "cpu/prefetch.h"

#include <immintrin.h>

#include <cmath>

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
inline float f2f(float v) { return v; }
inline __m256 load_h(const uint16_t * p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p))); }
inline __m256 load_f(const float * p) { return _mm256_loadu_ps(p); }

// NB activations x[b] against one row a of n values, in the same order of operations for every NB
// (two vector chains, their sum, then the tail with explicit fma), so that a batched product gives
// each activation the very bits of a single one.
// With PF, every 32 values also request the same bytes of the row at pf (a row further on), at
// the pace this row is read.
template <int NB, class A, __m256 (*load)(const A *), float (*conv)(A), bool PF = false>
inline void dot_nb(const A * a, const float * const * x, int64_t n, float * out, const A * pf = nullptr) {
    constexpr int W = 8;
    __m256 s0[NB], s1[NB];
    for (int b = 0; b < NB; b++) s0[b] = s1[b] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        if (PF && i % 32 == 0) {  // 32 values: one line of f16, two of f32
            request_line(pf + i);
            if (sizeof(A) > 2) request_line(reinterpret_cast<const char *>(pf + i) + 64);
        }
        const __m256 w0 = load(a + i), w1 = load(a + i + W);
        for (int b = 0; b < NB; b++) {
            s0[b] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[b] + i), s0[b]);
            s1[b] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x[b] + i + W), s1[b]);
        }
    }
    for (; i + W <= n; i += W) {
        const __m256 w0 = load(a + i);
        for (int b = 0; b < NB; b++) s0[b] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[b] + i), s0[b]);
    }
    for (int b = 0; b < NB; b++) out[b] = hsum(_mm256_add_ps(s0[b], s1[b]));
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

// weighted_rows: 16 columns (two vectors) at a time for up to 4 weights p_b, each output an fma
// chain over r in order, as the scalar reference; columns past the last 8 go one at a time.
template <int NB, class A, __m256 (*load)(const A *)>
void weighted16(const A * V, int64_t ld, int64_t n_rows, const float * p, int64_t ldp, float * out, int64_t ldo) {
    __m256 acc[NB][2];
    for (int b = 0; b < NB; b++) acc[b][0] = acc[b][1] = _mm256_setzero_ps();
    for (int64_t r = 0; r < n_rows; r++) {
        const __m256 v0 = load(V + r * ld), v1 = load(V + r * ld + 8);
        for (int b = 0; b < NB; b++) {
            const __m256 pb = _mm256_set1_ps(p[b * ldp + r]);
            acc[b][0] = _mm256_fmadd_ps(pb, v0, acc[b][0]);
            acc[b][1] = _mm256_fmadd_ps(pb, v1, acc[b][1]);
        }
    }
    for (int b = 0; b < NB; b++) {
        _mm256_storeu_ps(out + b * ldo, acc[b][0]);
        _mm256_storeu_ps(out + b * ldo + 8, acc[b][1]);
    }
}

template <int NB, class A, __m256 (*load)(const A *)>
void weighted8(const A * V, int64_t ld, int64_t n_rows, const float * p, int64_t ldp, float * out, int64_t ldo) {
    __m256 acc[NB];
    for (int b = 0; b < NB; b++) acc[b] = _mm256_setzero_ps();
    for (int64_t r = 0; r < n_rows; r++) {
        const __m256 v0 = load(V + r * ld);
        for (int b = 0; b < NB; b++) acc[b] = _mm256_fmadd_ps(_mm256_set1_ps(p[b * ldp + r]), v0, acc[b]);
    }
    for (int b = 0; b < NB; b++) _mm256_storeu_ps(out + b * ldo, acc[b]);
}

template <int NB, class A, __m256 (*load)(const A *), float (*conv)(A)>
void weighted_cols(const A * V, int64_t ld, int64_t n_rows, int64_t n_cols, const float * p, int64_t ldp,
                   float * out, int64_t ldo) {
    int64_t c = 0;
    for (; c + 16 <= n_cols; c += 16) weighted16<NB, A, load>(V + c, ld, n_rows, p, ldp, out + c, ldo);
    for (; c + 8 <= n_cols; c += 8) weighted8<NB, A, load>(V + c, ld, n_rows, p, ldp, out + c, ldo);
    for (; c < n_cols; c++) {
        for (int b = 0; b < NB; b++) {
            float acc = 0.0f;
            for (int64_t r = 0; r < n_rows; r++) acc = std::fma(p[b * ldp + r], conv(V[r * ld + c]), acc);
            out[b * ldo + c] = acc;
        }
    }
}

template <class A, __m256 (*load)(const A *), float (*conv)(A)>
void weighted_rows_v(const A * V, int64_t ld, int64_t n_rows, int64_t n_cols, const float * p, int64_t ldp, int nb,
                     float * out, int64_t ldo) {
    for (int b = 0; b < nb; b += 4) {
        const float * pb = p + b * ldp;
        float *       ob = out + b * ldo;
        switch (nb - b) {
            case 1: weighted_cols<1, A, load, conv>(V, ld, n_rows, n_cols, pb, ldp, ob, ldo); break;
            case 2: weighted_cols<2, A, load, conv>(V, ld, n_rows, n_cols, pb, ldp, ob, ldo); break;
            case 3: weighted_cols<3, A, load, conv>(V, ld, n_rows, n_cols, pb, ldp, ob, ldo); break;
            default: weighted_cols<4, A, load, conv>(V, ld, n_rows, n_cols, pb, ldp, ob, ldo); break;
        }
    }
}

// F32 and F16 weight rows against ACT_F32 activations: the same dot products.
float dot_f32_row(int64_t n, const void * w, const void * x) {
    return dot_f32_v(static_cast<const float *>(w), static_cast<const float *>(x), n);
}
float dot_f16_row(int64_t n, const void * w, const void * x) {
    return dot_f16_f32_v(static_cast<const uint16_t *>(w), static_cast<const float *>(x), n);
}

template <class A, __m256 (*load)(const A *), float (*conv)(A)>
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

// Rows in order (matvec's dot_rows), row dense_ahead(r) requested at the pace row r is read
// (cpu/prefetch.h); the bits of dot per row.
template <class A, __m256 (*load)(const A *), float (*conv)(A)>
void rows_v(int64_t n, const void * W, size_t row_bytes, const void * xq, float * y, int64_t n_rows) {
    const char *  w = static_cast<const char *>(W);
    const float * x = static_cast<const float *>(xq);
    auto row = [&](int64_t r) { return reinterpret_cast<const A *>(w + (size_t)r * row_bytes); };
    for (int64_t r = 0; r < n_rows; r++) dot_nb<1, A, load, conv, true>(row(r), &x, n, y + r, row(dense_ahead(r, n_rows)));
}

// The sparse FFN's F16 and F32 rows from a list (dot_rows_ids; cpu/prefetch.h's list_rows). The
// bits of dot per row.
template <class A, __m256 (*load)(const A *), float (*conv)(A)>
void rows_ids_v(int64_t n, const void * W, size_t row_bytes, const void * xq, const int32_t * ids, int64_t n_ids,
                float * y, int ahead) {
    const float * x = static_cast<const float *>(xq);
    auto values = [](const char * row) { return reinterpret_cast<const A *>(row); };
    list_rows(
        W, row_bytes, ids, n_ids, ahead,
        [&](int64_t k, const char * row, const char * next) {
            dot_nb<1, A, load, conv, true>(values(row), &x, n, y + k, values(next));
        },
        [&](int64_t k, const char * row) { dot_nb<1, A, load, conv>(values(row), &x, n, y + k); });
}

// In place: x[i] = the nearest f16 value, ties to even (vcvtps2ph's rounding, as fp32_to_fp16's).
void round_f16_v(float * x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) x[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

// h[i] = x[i] in f16, ties to even: the bits of fp32_to_fp16 (as round_f16_v).
void to_f16_v(const float * x, int64_t n, uint16_t * h) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm_storeu_si128(reinterpret_cast<__m128i *>(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++) h[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

}  // namespace

void vec_f32_fill_avx2(dot_table & t) {
    t.dot[PI_TYPE_F32]        = dot_f32_row;
    t.dot[PI_TYPE_F16]        = dot_f16_row;
    t.dot_rows[PI_TYPE_F32]     = rows_v<float, load_f, f2f>;
    t.dot_rows[PI_TYPE_F16]     = rows_v<uint16_t, load_h, h2f>;
    t.dot_rows_ids[PI_TYPE_F32] = rows_ids_v<float, load_f, f2f>;
    t.dot_rows_ids[PI_TYPE_F16] = rows_ids_v<uint16_t, load_h, h2f>;
    t.dot_batch[PI_TYPE_F32]  = row_batch<float, load_f, f2f>;
    t.dot_batch[PI_TYPE_F16]  = row_batch<uint16_t, load_h, h2f>;
    t.batch_max[PI_TYPE_F32]  = 4;
    t.batch_max[PI_TYPE_F16]  = 4;
    t.dot_f32      = dot_f32_v;
    t.dot_f16_f32  = dot_f16_f32_v;
    t.weighted_rows_f16 = weighted_rows_v<uint16_t, load_h, h2f>;
    t.weighted_rows_f32 = weighted_rows_v<float, load_f, f2f>;
    t.round_f16    = round_f16_v;
    t.to_f16       = to_f16_v;
}

}  // namespace pi
