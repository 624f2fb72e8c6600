// vec_f32_avx512.cpp - AVX-512F versions of the f32 vector helpers (vec_f32.cpp has the scalar
// ones and the entry points), which also serve F32 and F16 weight rows, one activation or a batch.
// A row's last values shorter than a vector are read with a masked load.
#include "powerinfer.h"
#include "cpu/dot.h"
#include "cpu/prefetch.h"
#include "cpu/reduce16_avx512.h"

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

// 16 values of a row as floats; the _m forms read only the lanes of mask m (the others are 0 and
// their memory is not touched, so a row's tail never reads past its end).
inline __m512 load_h(const uint16_t * p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p))); }
inline __m512 load_f(const float * p) { return _mm512_loadu_ps(p); }
inline __m512 load_h_m(const uint16_t * p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
inline __m512 load_f_m(const float * p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }

// The partial sums of one row a of n values against NB activations x[b], in the same order of
// operations for every NB (two vector chains: pairs of 16 values, then a last 16 and the masked
// tail on the first chain), so that a batched product gives each activation the very bits of a
// single one. sum[b] reduces to the product (hsum, or reduce16 for sixteen rows).
// With PF, each pair of vectors also requests the same bytes of the row at pf (the sparse list
// kernel's row further on), at the pace this row is read.
template <int NB, class A, __m512 (*load)(const A *), __m512 (*load_m)(const A *, __mmask16), bool PF = false>
__attribute__((always_inline)) inline void sums_nb(const A * a, const float * const * x, int64_t n, __m512 * sum,
                                                   const A * pf = nullptr) {
    constexpr int W = 16;
    __m512 s0[NB], s1[NB];
    for (int b = 0; b < NB; b++) s0[b] = s1[b] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        if (PF) {  // 32 values: one line of f16, two of f32
            request_line(reinterpret_cast<const char *>(pf + i));
            if (sizeof(A) > 2) request_line(reinterpret_cast<const char *>(pf + i) + 64);
        }
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
    if (i < n) {
        const __mmask16 m  = (__mmask16)((1u << (n - i)) - 1);
        const __m512    w0 = load_m(a + i, m);
        for (int b = 0; b < NB; b++) s0[b] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, x[b] + i), s0[b]);
    }
    for (int b = 0; b < NB; b++) sum[b] = _mm512_add_ps(s0[b], s1[b]);
}

template <int NB, class A, __m512 (*load)(const A *), __m512 (*load_m)(const A *, __mmask16)>
inline void dot_nb(const A * a, const float * const * x, int64_t n, float * out) {
    __m512 sum[NB];
    sums_nb<NB, A, load, load_m>(a, x, n, sum);
    for (int b = 0; b < NB; b++) out[b] = hsum(sum[b]);
}

float dot_f32_v(const float * a, const float * b, int64_t n) {
    float r;
    dot_nb<1, float, load_f, load_f_m>(a, &b, n, &r);
    return r;
}

float dot_f16_f32_v(const uint16_t * a, const float * b, int64_t n) {
    float r;
    dot_nb<1, uint16_t, load_h, load_h_m>(a, &b, n, &r);
    return r;
}

// weighted_rows: up to 64 columns (NV vectors, the last masked past n_cols) at a time for up to 4
// weights p_b, each output an fma chain over r in order, as the scalar reference.
template <int NB, int NV, class A, __m512 (*load_m)(const A *, __mmask16)>
void weighted_cols(const A * V, int64_t ld, int64_t n_rows, int64_t n_cols, const float * p, int64_t ldp, float * out,
                   int64_t ldo) {
    __mmask16 m[NV];
    for (int k = 0; k < NV; k++) {
        const int64_t left = n_cols - 16 * k;
        m[k] = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
    }
    // The loops over b and k are unrolled by pragma: left to GCC 12, it kept acc in registers but
    // also stored all of it to the stack on every row (3 x 4 zmm stores per V row, which made the
    // kernel store-bound at a third of its speed).
    __m512 acc[NB][NV];
#pragma GCC unroll 4
    for (int b = 0; b < NB; b++) {
#pragma GCC unroll 4
        for (int k = 0; k < NV; k++) acc[b][k] = _mm512_setzero_ps();
    }
    for (int64_t r = 0; r < n_rows; r++) {
        const A * v = V + r * ld;
        __m512    x[NV];
#pragma GCC unroll 4
        for (int k = 0; k < NV; k++) x[k] = load_m(v + 16 * k, m[k]);
#pragma GCC unroll 4
        for (int b = 0; b < NB; b++) {
            const __m512 pb = _mm512_set1_ps(p[b * ldp + r]);
#pragma GCC unroll 4
            for (int k = 0; k < NV; k++) acc[b][k] = _mm512_fmadd_ps(pb, x[k], acc[b][k]);
        }
    }
#pragma GCC unroll 4
    for (int b = 0; b < NB; b++) {
#pragma GCC unroll 4
        for (int k = 0; k < NV; k++) _mm512_mask_storeu_ps(out + b * ldo + 16 * k, m[k], acc[b][k]);
    }
}

template <int NB, class A, __m512 (*load_m)(const A *, __mmask16)>
void weighted_nb(const A * V, int64_t ld, int64_t n_rows, int64_t n_cols, const float * p, int64_t ldp, float * out,
                 int64_t ldo) {
    for (int64_t c = 0; c < n_cols; c += 64) {
        const int64_t nc = n_cols - c < 64 ? n_cols - c : 64;
        switch ((nc + 15) / 16) {
            case 1: weighted_cols<NB, 1, A, load_m>(V + c, ld, n_rows, nc, p, ldp, out + c, ldo); break;
            case 2: weighted_cols<NB, 2, A, load_m>(V + c, ld, n_rows, nc, p, ldp, out + c, ldo); break;
            case 3: weighted_cols<NB, 3, A, load_m>(V + c, ld, n_rows, nc, p, ldp, out + c, ldo); break;
            default: weighted_cols<NB, 4, A, load_m>(V + c, ld, n_rows, nc, p, ldp, out + c, ldo); break;
        }
    }
}

template <class A, __m512 (*load_m)(const A *, __mmask16)>
void weighted_rows_v(const A * V, int64_t ld, int64_t n_rows, int64_t n_cols, const float * p, int64_t ldp, int nb,
                     float * out, int64_t ldo) {
    for (int b = 0; b < nb; b += 4) {
        const float * pb = p + b * ldp;
        float *       ob = out + b * ldo;
        switch (nb - b) {
            case 1: weighted_nb<1, A, load_m>(V, ld, n_rows, n_cols, pb, ldp, ob, ldo); break;
            case 2: weighted_nb<2, A, load_m>(V, ld, n_rows, n_cols, pb, ldp, ob, ldo); break;
            case 3: weighted_nb<3, A, load_m>(V, ld, n_rows, n_cols, pb, ldp, ob, ldo); break;
            default: weighted_nb<4, A, load_m>(V, ld, n_rows, n_cols, pb, ldp, ob, ldo); break;
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

template <class A, __m512 (*load)(const A *), __m512 (*load_m)(const A *, __mmask16)>
void row_batch(int64_t n, const void * w, const void * xq, size_t xs, int nb, float * out, int64_t ldo) {
    const A *     a = static_cast<const A *>(w);
    const float * x[4];
    float         r[4];
    for (int b = 0; b < nb; b++) x[b] = reinterpret_cast<const float *>(static_cast<const char *>(xq) + b * xs);
    switch (nb) {
        case 1: dot_nb<1, A, load, load_m>(a, x, n, r); break;
        case 2: dot_nb<2, A, load, load_m>(a, x, n, r); break;
        case 3: dot_nb<3, A, load, load_m>(a, x, n, r); break;
        default: dot_nb<4, A, load, load_m>(a, x, n, r); break;
    }
    for (int b = 0; b < nb; b++) out[b * ldo] = r[b];
}

// sums_nb for NB activations over sixteen rows, then reduce16: the same FMAs in the same order
// per (row, activation), so the same bits as dot_nb.
template <int NB, class A, __m512 (*load)(const A *), __m512 (*load_m)(const A *, __mmask16)>
void short16(int64_t n, const char * W, size_t row_bytes, const float * const * x, float * Y, int64_t ldy) {
    __m512 t[NB][16];
    for (int k = 0; k < 16; k++) {
        __m512 sum[NB];
        sums_nb<NB, A, load, load_m>(reinterpret_cast<const A *>(W + (size_t)k * row_bytes), x, n, sum);
        for (int b = 0; b < NB; b++) t[b][k] = sum[b];
    }
    for (int b = 0; b < NB; b++) _mm512_storeu_ps(Y + b * ldy, reduce16(t[b]));
}

// short16 for rows of exactly 64 values (attention's scores over heads of 64 dimensions): the
// activations' four vectors each are loaded once for the sixteen rows instead of once per row (as
// memory operands of every FMA, the loads had made the kernel load-bound). The FMAs are sums_nb's
// for n = 64, in its order (chain 0: values 0-15 then 32-47, chain 1: 16-31 then 48-63), so the
// bits are the same.
template <int NB, class A, __m512 (*load)(const A *)>
void short16_64(const char * W, size_t row_bytes, const float * const * x, float * Y, int64_t ldy) {
    __m512 xr[NB][4];
#pragma GCC unroll 4
    for (int b = 0; b < NB; b++) {
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) xr[b][j] = _mm512_loadu_ps(x[b] + 16 * j);
    }
    __m512 t[NB][16];
    for (int k = 0; k < 16; k++) {
        const A *    a  = reinterpret_cast<const A *>(W + (size_t)k * row_bytes);
        const __m512 w0 = load(a), w1 = load(a + 16), w2 = load(a + 32), w3 = load(a + 48);
#pragma GCC unroll 4
        for (int b = 0; b < NB; b++) {
            __m512 s0 = _mm512_fmadd_ps(w0, xr[b][0], _mm512_setzero_ps());
            __m512 s1 = _mm512_fmadd_ps(w1, xr[b][1], _mm512_setzero_ps());
            s0        = _mm512_fmadd_ps(w2, xr[b][2], s0);
            s1        = _mm512_fmadd_ps(w3, xr[b][3], s1);
            t[b][k]   = _mm512_add_ps(s0, s1);
        }
    }
    for (int b = 0; b < NB; b++) _mm512_storeu_ps(Y + b * ldy, reduce16(t[b]));
}

// Rows in order (matvec's dot_rows): sixteen rows' sums, then one reduce16 (the bits of sixteen
// reductions), row dense_ahead(r) requested at the pace row r is read (cpu/prefetch.h). One thread,
// 11008 rows of 4096 F16 from DRAM: see README "The sparse kernels" (the dense GEMV there).
template <class A, __m512 (*load)(const A *), __m512 (*load_m)(const A *, __mmask16)>
void rows_v(int64_t n, const void * W, size_t row_bytes, const void * xq, float * y, int64_t n_rows) {
    const char *  w = static_cast<const char *>(W);
    const float * x = static_cast<const float *>(xq);
    auto row = [&](int64_t r) { return reinterpret_cast<const A *>(w + (size_t)r * row_bytes); };
    int64_t r = 0;
    for (; r + 16 <= n_rows; r += 16) {
        __m512 t[16];
        for (int k = 0; k < 16; k++) sums_nb<1, A, load, load_m, true>(row(r + k), &x, n, &t[k], row(dense_ahead(r + k, n_rows)));
        _mm512_storeu_ps(y + r, reduce16(t));
    }
    for (; r < n_rows; r++) {
        __m512 sum;
        sums_nb<1, A, load, load_m>(row(r), &x, n, &sum);
        y[r] = hsum(sum);
    }
}

// The sparse FFN's F16 and F32 rows from a list (dot_rows_ids; cpu/prefetch.h's list_rows). One
// thread, 4096-wide F16 rows, 5% of 11008 from DRAM: see README "The sparse kernels". The bits of
// dot per row.
template <class A, __m512 (*load)(const A *), __m512 (*load_m)(const A *, __mmask16)>
void rows_ids_v(int64_t n, const void * W, size_t row_bytes, const void * xq, const int32_t * ids, int64_t n_ids,
                float * y, int ahead) {
    const float * x = static_cast<const float *>(xq);
    auto values = [](const char * row) { return reinterpret_cast<const A *>(row); };
    list_rows(
        W, row_bytes, ids, n_ids, ahead,
        [&](int64_t k, const char * row, const char * next) {
            __m512 sum;
            sums_nb<1, A, load, load_m, true>(values(row), &x, n, &sum, values(next));
            y[k] = hsum(sum);
        },
        [&](int64_t k, const char * row) {
            __m512 sum;
            sums_nb<1, A, load, load_m>(values(row), &x, n, &sum);
            y[k] = hsum(sum);
        });
}

template <class A, __m512 (*load)(const A *), __m512 (*load_m)(const A *, __mmask16)>
void short_rows(int64_t n, const void * W, size_t row_bytes, int64_t n_rows, const void * xq, size_t xs, int nb,
                float * Y, int64_t ldy) {
    const char * w = static_cast<const char *>(W);
    const float * x[4];
    for (int b = 0; b < nb; b++) x[b] = reinterpret_cast<const float *>(static_cast<const char *>(xq) + b * xs);
    int64_t r = 0;
    for (; n == 64 && r + 16 <= n_rows; r += 16) {
        const char * wr = w + (size_t)r * row_bytes;
        switch (nb) {
            case 1: short16_64<1, A, load>(wr, row_bytes, x, Y + r, ldy); break;
            case 2: short16_64<2, A, load>(wr, row_bytes, x, Y + r, ldy); break;
            case 3: short16_64<3, A, load>(wr, row_bytes, x, Y + r, ldy); break;
            default: short16_64<4, A, load>(wr, row_bytes, x, Y + r, ldy); break;
        }
    }
    for (; r + 16 <= n_rows; r += 16) {
        const char * wr = w + (size_t)r * row_bytes;
        switch (nb) {
            case 1: short16<1, A, load, load_m>(n, wr, row_bytes, x, Y + r, ldy); break;
            case 2: short16<2, A, load, load_m>(n, wr, row_bytes, x, Y + r, ldy); break;
            case 3: short16<3, A, load, load_m>(n, wr, row_bytes, x, Y + r, ldy); break;
            default: short16<4, A, load, load_m>(n, wr, row_bytes, x, Y + r, ldy); break;
        }
    }
    for (; r < n_rows; r++) row_batch<A, load, load_m>(n, w + (size_t)r * row_bytes, xq, xs, nb, Y + r, ldy);
}

}  // namespace

void vec_f32_fill_avx512(dot_table & t) {
    t.dot[PI_TYPE_F32]        = dot_f32_row;
    t.dot[PI_TYPE_F16]        = dot_f16_row;
    t.dot_batch[PI_TYPE_F32]  = row_batch<float, load_f, load_f_m>;
    t.dot_batch[PI_TYPE_F16]  = row_batch<uint16_t, load_h, load_h_m>;
    t.batch_max[PI_TYPE_F32]  = 4;
    t.batch_max[PI_TYPE_F16]  = 4;
    t.dot_rows[PI_TYPE_F32]     = rows_v<float, load_f, load_f_m>;
    t.dot_rows[PI_TYPE_F16]     = rows_v<uint16_t, load_h, load_h_m>;
    t.dot_rows_ids[PI_TYPE_F32] = rows_ids_v<float, load_f, load_f_m>;
    t.dot_rows_ids[PI_TYPE_F16] = rows_ids_v<uint16_t, load_h, load_h_m>;
    t.short_rows[PI_TYPE_F32] = short_rows<float, load_f, load_f_m>;
    t.short_rows[PI_TYPE_F16] = short_rows<uint16_t, load_h, load_h_m>;
    t.dot_f32      = dot_f32_v;
    t.dot_f16_f32  = dot_f16_f32_v;
    t.weighted_rows_f16 = weighted_rows_v<uint16_t, load_h_m>;
    t.weighted_rows_f32 = weighted_rows_v<float, load_f_m>;
}

}  // namespace pi
