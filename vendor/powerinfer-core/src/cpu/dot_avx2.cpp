// dot_avx2.cpp - AVX2 + FMA + F16C dot kernels (compiled with those flags; dispatch.cpp calls them
// only on CPUs that have them). Same math as dot_scalar.cpp, 32 values per instruction:
//
//   blocks of 32  the weight block becomes 32 bytes of integers; vpmaddubsw (u8 x s8 -> pairs of
//                 s16) and vpmaddwd with ones give 8 int32 partial sums, scaled by d * dx in float.
//                 Types whose integers are offset (q4_0: q - 8, q5_0: q - 16) or carry a min
//                 (q4_1, q5_1) use the unsigned integers and add (offset * d or m) * s of the
//                 activation, s = dx * sum(a): one multiply per block instead of a byte subtraction.
// The K-quants are in dot_k_avx2.cpp.
#include "powerinfer.h"
#include "cpu/blocks.h"
#include "cpu/dot.h"
#include "cpu/prefetch.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <initializer_list>

namespace pi {

namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s        = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s        = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Local conversions: the inline ones of core/types.h must not be compiled into this file, or the
// linker could keep this AVX2 copy for the whole library (one definition rule).
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
inline float bf2f(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float          f;
    std::memcpy(&f, &u, 4);
    return f;
}

// 8 int32 sums of 4 products each, u unsigned and s signed bytes. vpmaddubsw saturates its pair
// sums at int16; with u <= 128 and |s| <= 127 (all callers) they stay below 32767.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
// Signed x signed: |w| against x with w's sign moved onto it.
inline __m256i dot_s8s8(__m256i w, __m256i x) {
    return dot_u8s8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}

// 16 packed nibbles -> 32 bytes: low nibbles (values 0..15) then high nibbles (values 16..31).
inline __m256i nibbles32(const uint8_t * qs) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i *>(qs));
    const __m256i b = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
}

// The 32 bits of qh as 32 bytes, 0x10 where the bit is set (bit 4 of value j is bit j of qh).
inline __m256i high_bits32(const uint8_t * qh4) {
    uint32_t qh;
    std::memcpy(&qh, qh4, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL, 0x0101010101010101LL, 0);
    __m256i       v    = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
    const __m256i bit  = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    v                  = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

// ---- blocks of 32 against ACT_Q8 ------------------------------------------------------------
//
// Each type says how to turn a block into 32 integer bytes, its scale d, and the coefficient c of
// the activation sum s, so that dot(block, activation block) = d * dx * sum(u * a) + c * s.

struct t_q4_0 {
    static constexpr int bytes = sizeof(block_q4_0), signed_values = 0;
    static __m256i values(const uint8_t * b) { return nibbles32(b + 2); }
    static float d(const uint8_t * b) { return h2f(reinterpret_cast<const block_q4_0 *>(b)->d); }
    static float c(const uint8_t *, float d) { return -8.0f * d; }
};
struct t_q4_1 {
    static constexpr int bytes = sizeof(block_q4_1), signed_values = 0;
    static __m256i values(const uint8_t * b) { return nibbles32(b + 4); }
    static float d(const uint8_t * b) { return h2f(reinterpret_cast<const block_q4_1 *>(b)->d); }
    static float c(const uint8_t * b, float) { return h2f(reinterpret_cast<const block_q4_1 *>(b)->m); }
};
struct t_q5_0 {
    static constexpr int bytes = sizeof(block_q5_0), signed_values = 0;
    static __m256i values(const uint8_t * b) { return _mm256_or_si256(nibbles32(b + 6), high_bits32(b + 2)); }
    static float d(const uint8_t * b) { return h2f(reinterpret_cast<const block_q5_0 *>(b)->d); }
    static float c(const uint8_t *, float d) { return -16.0f * d; }
};
struct t_q5_1 {
    static constexpr int bytes = sizeof(block_q5_1), signed_values = 0;
    static __m256i values(const uint8_t * b) { return _mm256_or_si256(nibbles32(b + 8), high_bits32(b + 4)); }
    static float d(const uint8_t * b) { return h2f(reinterpret_cast<const block_q5_1 *>(b)->d); }
    static float c(const uint8_t * b, float) { return h2f(reinterpret_cast<const block_q5_1 *>(b)->m); }
};
struct t_q8_0 {
    static constexpr int bytes = sizeof(block_q8_0), signed_values = 1;
    static __m256i values(const uint8_t * b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b + 2)); }
    static float d(const uint8_t * b) { return h2f(reinterpret_cast<const block_q8_0 *>(b)->d); }
    static float c(const uint8_t *, float) { return 0.0f; }
};

// NB activations at once (the weight block is unpacked once for all). Two independent chains per
// activation (even and odd blocks) hide the FMA latency. With PF, each pair of blocks also requests
// the same bytes of the row at pf (a row further on), at the pace this row is read.
template <class T, int NB, bool PF>
__attribute__((always_inline)) inline void dot_q8act_pf(int64_t n, const void * w, const void * xq, size_t xs,
                                                        float * out, int64_t ldo, const void * pf) {
    const uint8_t * wb = static_cast<const uint8_t *>(w);
    const int64_t   nb = n / 32;
    const int8_t *  xv[NB];
    const float *   xd[NB];
    __m256          acc[NB][2];
    float           accs[NB][2];
    for (int b = 0; b < NB; b++) {
        const void * x = static_cast<const char *>(xq) + b * xs;
        xv[b]          = act_q8_values(x);
        xd[b]          = act_q8_scales(x, n);
        acc[b][0] = acc[b][1] = _mm256_setzero_ps();
        accs[b][0] = accs[b][1] = 0.0f;
    }
    int64_t i = 0;
    auto    step = [&](int64_t blk, int k) {
        const uint8_t * p = wb + blk * T::bytes;
        const __m256i   u = T::values(p);
        const float     d = T::d(p);
        const float     c = T::c(p, d);
        for (int b = 0; b < NB; b++) {
            const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(xv[b] + blk * 32));
            const __m256i s = T::signed_values ? dot_s8s8(u, a) : dot_u8s8(u, a);
            acc[b][k]       = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d * xd[b][2 * blk]), acc[b][k]);
            accs[b][k]      = std::fma(c, xd[b][2 * blk + 1], accs[b][k]);  // explicit: same rounding for every NB
        }
    };
    const char * ahead = static_cast<const char *>(pf);
    for (; i + 1 < nb; i += 2) {
        if (PF) {  // the two blocks' bytes (at most 68) span at most two lines
            request_line(ahead + i * T::bytes);
            request_line(ahead + (i + 2) * T::bytes - 1);
        }
        step(i, 0);
        step(i + 1, 1);
    }
    if (i < nb) step(i, 0);
    for (int b = 0; b < NB; b++) {
        out[b * ldo] = hsum(_mm256_add_ps(acc[b][0], acc[b][1])) + (accs[b][0] + accs[b][1]);
    }
}

template <class T, int NB>
void dot_q8act(int64_t n, const void * w, const void * xq, size_t xs, float * out, int64_t ldo) {
    dot_q8act_pf<T, NB, false>(n, w, xq, xs, out, ldo, nullptr);
}

template <class T>
float dot_q8act_one(int64_t n, const void * w, const void * xq) {
    float r;
    dot_q8act<T, 1>(n, w, xq, 0, &r, 0);
    return r;
}

// Rows in order, row dense_ahead(r) requested at the pace row r is read (cpu/prefetch.h).
template <class T>
void dot_q8act_rows(int64_t n, const void * W, size_t row_bytes, const void * xq, float * y, int64_t n_rows) {
    const char * w = static_cast<const char *>(W);
    for (int64_t r = 0; r < n_rows; r++) {
        dot_q8act_pf<T, 1, true>(n, w + (size_t)r * row_bytes, xq, 0, y + r, 0, w + (size_t)dense_ahead(r, n_rows) * row_bytes);
    }
}

// The sparse FFN's rows from a list (dot_rows_ids; cpu/prefetch.h's list_rows). The bits of dot per row.
template <class T>
void dot_q8act_rows_ids(int64_t n, const void * W, size_t row_bytes, const void * xq, const int32_t * ids,
                        int64_t n_ids, float * y, int ahead) {
    list_rows(
        W, row_bytes, ids, n_ids, ahead,
        [&](int64_t k, const char * row, const char * next) { dot_q8act_pf<T, 1, true>(n, row, xq, 0, y + k, 0, next); },
        [&](int64_t k, const char * row) { dot_q8act<T, 1>(n, row, xq, 0, y + k, 0); });
}

template <class T>
void dot_q8act_batch(int64_t n, const void * w, const void * xq, size_t xs, int nb, float * out, int64_t ldo) {
    switch (nb) {
        case 1: dot_q8act<T, 1>(n, w, xq, xs, out, ldo); break;
        case 2: dot_q8act<T, 2>(n, w, xq, xs, out, ldo); break;
        case 3: dot_q8act<T, 3>(n, w, xq, xs, out, ldo); break;
        default: dot_q8act<T, 4>(n, w, xq, xs, out, ldo); break;
    }
}

// ---- BF16 weights against ACT_F32 (F32 and F16 rows are in vec_f32_avx2.cpp) ------------------------------------------------------------

inline __m256 load_bf16x8(const uint16_t * p) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

template <__m256 (*load8)(const uint16_t *), float (*conv)(uint16_t)>
float dot_half(int64_t n, const void * w, const void * xq) {
    const uint16_t * a = static_cast<const uint16_t *>(w);
    const float *    x = static_cast<const float *>(xq);
    __m256           s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t          i  = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(load8(a + i), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(load8(a + i + 8), _mm256_loadu_ps(x + i + 8), s1);
    }
    float r = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++) r += conv(a[i]) * x[i];
    return r;
}

}  // namespace

void dot_table_fill_avx2(dot_table & t) {
    t.dot[PI_TYPE_Q4_0]       = dot_q8act_one<t_q4_0>;
    t.dot_rows[PI_TYPE_Q4_0]  = dot_q8act_rows<t_q4_0>;
    t.dot_rows_ids[PI_TYPE_Q4_0] = dot_q8act_rows_ids<t_q4_0>;
    t.dot[PI_TYPE_Q4_1]       = dot_q8act_one<t_q4_1>;
    t.dot_rows[PI_TYPE_Q4_1]  = dot_q8act_rows<t_q4_1>;
    t.dot_rows_ids[PI_TYPE_Q4_1] = dot_q8act_rows_ids<t_q4_1>;
    t.dot[PI_TYPE_Q5_0]       = dot_q8act_one<t_q5_0>;
    t.dot_rows[PI_TYPE_Q5_0]  = dot_q8act_rows<t_q5_0>;
    t.dot_rows_ids[PI_TYPE_Q5_0] = dot_q8act_rows_ids<t_q5_0>;
    t.dot[PI_TYPE_Q5_1]       = dot_q8act_one<t_q5_1>;
    t.dot_rows[PI_TYPE_Q5_1]  = dot_q8act_rows<t_q5_1>;
    t.dot_rows_ids[PI_TYPE_Q5_1] = dot_q8act_rows_ids<t_q5_1>;
    t.dot[PI_TYPE_Q8_0]       = dot_q8act_one<t_q8_0>;
    t.dot_rows[PI_TYPE_Q8_0]  = dot_q8act_rows<t_q8_0>;
    t.dot_rows_ids[PI_TYPE_Q8_0] = dot_q8act_rows_ids<t_q8_0>;
    t.dot_batch[PI_TYPE_Q4_0] = dot_q8act_batch<t_q4_0>;
    t.dot_batch[PI_TYPE_Q4_1] = dot_q8act_batch<t_q4_1>;
    t.dot_batch[PI_TYPE_Q5_0] = dot_q8act_batch<t_q5_0>;
    t.dot_batch[PI_TYPE_Q5_1] = dot_q8act_batch<t_q5_1>;
    t.dot_batch[PI_TYPE_Q8_0] = dot_q8act_batch<t_q8_0>;
    for (int type : {PI_TYPE_Q4_0, PI_TYPE_Q4_1, PI_TYPE_Q5_0, PI_TYPE_Q5_1, PI_TYPE_Q8_0}) t.batch_max[type] = 4;

    t.dot[PI_TYPE_BF16] = dot_half<load_bf16x8, bf2f>;

    dot_k_fill_avx2(t);  // the K-quants
    act_quant_fill_avx2(t);
    vec_f32_fill_avx2(t);  // also the F32 and F16 weight rows
}

}  // namespace pi
