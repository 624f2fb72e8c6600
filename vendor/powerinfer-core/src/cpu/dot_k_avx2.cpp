// dot_k_avx2.cpp - AVX2 kernels for the K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) against the
// ACT_Q8K activation (dx, a[256], bsums = sums of each 16 a), working on the packed bytes.
//
// Every type's super-block is first brought to one form (k_form below): 8 runs of 32 unsigned
// integers v, an integer scale per 16 values, and a coefficient per 16 values for the bsums that
// carries the mins (Q2_K, Q4_K, Q5_K: value = d sc v - dmin mn) or the offset of signed types
// (Q3_K: q = v - 4, Q6_K: q = v - 32, so sum(q a) = sum(v a) - offset * bsums). Then
//   dot = dx * (d * sum_g sc_g * sum_{i in g} v_i a_i  +  e * sum_g c_g * bsums[g])
// vpmaddubsw multiplies the unsigned v (< 64) with the signed a (pair sums fit in int16:
// 63 * 127 * 2 < 32767), vpmaddwd applies the int16 scales, and the integer sums stay exact in
// int32 until one conversion per super-block. The form is built once per weight super-block and
// used for up to DOT_MAX_BATCH activations (prompt batches).
#include "powerinfer.h"
#include "cpu/blocks.h"
#include "cpu/dot.h"
#include "cpu/prefetch.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>

namespace pi {

namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s        = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s        = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// The common form every K-quant super-block is brought to: 8 runs of 32 consecutive values as
// unsigned bytes v[r] (value 32r + l), the int16 scale of each run's two 16-value groups k[r], and
// a per-group int16 coefficient c16 of the activation's bsums, so that
//   dot = dx * (d * sum_r sum_l k * v * a  +  e * sum_g c16[g] * bsums[g])
// (the offset of the values, or the mins, go into the second term).
struct k_form {
    __m256i v[8], k[8], c16;
    float   d, e;
};

// k[r] for r < 8 from the 16 int16 group scales: scale 2r in the low 128-bit lane, 2r + 1 in the
// high one (the lanes hold values 0..15 and 16..31 of run r after vpmaddubsw). Built with byte
// shuffles in registers: scalar stores and vector reloads of the scales stall store forwarding.
inline void scale_pairs(__m256i sc16, __m256i k[8]) {
    const __m256i lo   = _mm256_permute2x128_si256(sc16, sc16, 0x00);  // groups 0..7 in both lanes
    const __m256i hi   = _mm256_permute2x128_si256(sc16, sc16, 0x11);  // groups 8..15
    const __m256i base = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                          2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    for (int r = 0; r < 4; r++) {
        const __m256i idx = _mm256_add_epi8(base, _mm256_set1_epi8((char)(4 * r)));
        k[r]              = _mm256_shuffle_epi8(lo, idx);
        k[r + 4]          = _mm256_shuffle_epi8(hi, idx);
    }
}

// Bits `shift` (0..7) of each byte of h, moved to bit `to`.
inline __m256i bit_of_bytes(__m256i h, int shift, int to) {
    const __m256i b = _mm256_and_si256(_mm256_srli_epi16(h, shift), _mm256_set1_epi8(1));
    return _mm256_slli_epi16(b, to);
}

inline __m256i load32(const uint8_t * p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)); }

// Q2_K: runs r = 4h + p are the 2-bit planes p of the 32 bytes of half h; value = d sc q - dmin mn.
inline void form(const block_q2_K & b, k_form & f) {
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
        const __m256i q = load32(b.qs + 32 * h);
        for (int p = 0; p < 4; p++) f.v[4 * h + p] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * p), m3);
    }
    const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.scales));
    scale_pairs(_mm256_cvtepu8_epi16(_mm_and_si128(sc, _mm_set1_epi8(0x0f))), f.k);
    f.c16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc, 4), _mm_set1_epi8(0x0f)));
    f.d              = _cvtsh_ss(b.d);
    f.e              = -_cvtsh_ss(b.dmin);
}

// Q3_K: as Q2_K plus bit r of hmask[l]; q = v - 4 with v = low | hbit << 2, so the -4 goes into
// the bsums term. The 16 six-bit scales (stored + 32) come from 12 bytes: low nibbles of bytes
// 0..7 (groups 0..7), high nibbles (groups 8..15), two more bits from bytes 8..11.
inline void form(const block_q3_K & b, k_form & f) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i hm = load32(b.hmask);
    for (int h = 0; h < 2; h++) {
        const __m256i q = load32(b.qs + 32 * h);
        for (int p = 0; p < 4; p++) {
            f.v[4 * h + p] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * p), m3), bit_of_bytes(hm, 4 * h + p, 2));
        }
    }
    uint32_t a, c, e;
    std::memcpy(&a, b.scales, 4);
    std::memcpy(&c, b.scales + 4, 4);
    std::memcpy(&e, b.scales + 8, 4);
    const __m128i sc8 = _mm_setr_epi32((int)((a & 0x0f0f0f0fu) | (((e >> 0) & 0x03030303u) << 4)),          // groups 0..3
                                       (int)((c & 0x0f0f0f0fu) | (((e >> 2) & 0x03030303u) << 4)),          // groups 4..7
                                       (int)(((a >> 4) & 0x0f0f0f0fu) | (((e >> 4) & 0x03030303u) << 4)),   // 8..11
                                       (int)(((c >> 4) & 0x0f0f0f0fu) | (((e >> 6) & 0x03030303u) << 4)));  // 12..15
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_sub_epi8(sc8, _mm_set1_epi8(32)));
    scale_pairs(sc16, f.k);
    f.c16              = _mm256_mullo_epi16(sc16, _mm256_set1_epi16(-4));
    f.d = f.e = _cvtsh_ss(b.d);
}

// The 8 six-bit scales and mins of a Q4_K / Q5_K super-block from its 12 bytes s:
//   j < 4:  sc = s[j] & 63,                          mn = s[j+4] & 63
//   j >= 4: sc = (s[j+4] & 15) | (s[j-4] >> 6) << 4,  mn = (s[j+4] >> 4) | (s[j] >> 6) << 4
// done four bytes at a time.
inline void k4_scales(const uint8_t * s, uint64_t * sc, uint64_t * mn) {
    uint32_t a, b, c;
    std::memcpy(&a, s, 4);
    std::memcpy(&b, s + 4, 4);
    std::memcpy(&c, s + 8, 4);
    const uint32_t sc_lo = a & 0x3f3f3f3fu;
    const uint32_t sc_hi = (c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u);
    const uint32_t mn_lo = b & 0x3f3f3f3fu;
    const uint32_t mn_hi = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 2) & 0x30303030u);
    *sc = sc_lo | (uint64_t)sc_hi << 32;  // byte j = scale j (little-endian)
    *mn = mn_lo | (uint64_t)mn_hi << 32;
}

// Q4_K / Q5_K share the scales: run r is sub-block r (one scale), its min covers bsums 2r, 2r + 1.
inline void k4_form_scales(const uint8_t * scales, uint16_t d, uint16_t dmin, k_form & f) {
    uint64_t sc, mn;
    k4_scales(scales, &sc, &mn);
    // each scale and min repeated for the two groups of 16 of its sub-block
    const __m128i s8 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc));
    const __m128i m8 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn));
    scale_pairs(_mm256_set_m128i(_mm_unpackhi_epi16(s8, s8), _mm_unpacklo_epi16(s8, s8)), f.k);
    f.c16 = _mm256_set_m128i(_mm_unpackhi_epi16(m8, m8), _mm_unpacklo_epi16(m8, m8));
    f.d              = _cvtsh_ss(d);
    f.e              = -_cvtsh_ss(dmin);
}

// Q4_K: byte l of chunk c holds values 64c + l (low nibble) and 64c + 32 + l (high nibble).
inline void form(const block_q4_K & b, k_form & f) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int c = 0; c < 4; c++) {
        const __m256i q = load32(b.qs + 32 * c);
        f.v[2 * c]      = _mm256_and_si256(q, m4);
        f.v[2 * c + 1]  = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    }
    k4_form_scales(b.scales, b.d, b.dmin, f);
}

// Q5_K: as Q4_K, bit r of qh[l] is bit 4 of value 32r + l.
inline void form(const block_q5_K & b, k_form & f) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i qh = load32(b.qh);
    for (int c = 0; c < 4; c++) {
        const __m256i q = load32(b.qs + 32 * c);
        f.v[2 * c]      = _mm256_or_si256(_mm256_and_si256(q, m4), bit_of_bytes(qh, 2 * c, 4));
        f.v[2 * c + 1]  = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), bit_of_bytes(qh, 2 * c + 1, 4));
    }
    k4_form_scales(b.scales, b.d, b.dmin, f);
}

// Q6_K: in half h, ql bytes l and 32 + l give the low nibbles of values l, 32 + l (low) and 64 + l,
// 96 + l (high); qh byte l their two high bits (bits 0-1, 2-3, 4-5, 6-7). q = v - 32.
inline void form(const block_q6_K & b, k_form & f) {
    const __m256i m4  = _mm256_set1_epi8(0x0f);
    const __m256i m30 = _mm256_set1_epi8(0x30);
    for (int h = 0; h < 2; h++) {
        const __m256i q0 = load32(b.ql + 64 * h);
        const __m256i q1 = load32(b.ql + 64 * h + 32);
        const __m256i hb = load32(b.qh + 32 * h);
        f.v[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(q0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
        f.v[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(q1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
        f.v[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q0, 4), m4), _mm256_and_si256(hb, m30));
        f.v[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
    }
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(b.scales)));
    scale_pairs(sc16, f.k);
    f.c16              = _mm256_slli_epi16(sc16, 5);  // 32 * sc, negated below
    f.c16              = _mm256_sub_epi16(_mm256_setzero_si256(), f.c16);
    f.d = f.e = _cvtsh_ss(b.d);
}

// NB activations against one row: each super-block is brought to k_form once. With PF, each
// super-block also requests the same bytes of the row at pf (a row further on), at the pace this
// row is read (see dot_avx512.cpp's rows_ids_loop for why).
template <class Block, int NB, bool PF>
__attribute__((always_inline)) inline void dot_k_pf(int64_t n, const void * w, const void * xq, size_t xs, float * out,
                                                    int64_t ldo, const void * pf) {
    const Block *      wb = static_cast<const Block *>(w);
    const block_q8_K * x[NB];
    __m256             acc[NB];
    for (int b = 0; b < NB; b++) {
        x[b]   = reinterpret_cast<const block_q8_K *>(static_cast<const char *>(xq) + b * xs);
        acc[b] = _mm256_setzero_ps();
    }
    k_form f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        if (PF) {  // the super-block's lines (its last byte may start one more)
            const char * p = static_cast<const char *>(pf) + i * sizeof(Block);
            request_row(p, sizeof(Block));
            request_line(p + sizeof(Block) - 1);
        }
        form(wb[i], f);
        for (int b = 0; b < NB; b++) {
            const block_q8_K & a    = x[b][i];
            __m256i            sumi = _mm256_setzero_si256();
            for (int r = 0; r < 8; r++) {
                const __m256i p = _mm256_maddubs_epi16(f.v[r], load32(reinterpret_cast<const uint8_t *>(a.qs + 32 * r)));
                sumi            = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, f.k[r]));
            }
            const __m256i sumc = _mm256_madd_epi16(load32(reinterpret_cast<const uint8_t *>(a.bsums)), f.c16);
            acc[b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(f.d * a.d), acc[b]);
            acc[b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumc), _mm256_set1_ps(f.e * a.d), acc[b]);
        }
    }
    for (int b = 0; b < NB; b++) out[b * ldo] = hsum(acc[b]);
}

template <class Block, int NB>
void dot_k(int64_t n, const void * w, const void * xq, size_t xs, float * out, int64_t ldo) {
    dot_k_pf<Block, NB, false>(n, w, xq, xs, out, ldo, nullptr);
}

template <void (*K)(int64_t, const void *, const void *, size_t, float *, int64_t)>
float one(int64_t n, const void * w, const void * xq) {
    float r;
    K(n, w, xq, 0, &r, 0);
    return r;
}

// Rows in order, row dense_ahead(r) requested at the pace row r is read (cpu/prefetch.h).
template <class Block>
void rows(int64_t n, const void * W, size_t row_bytes, const void * xq, float * y, int64_t n_rows) {
    const char * w = static_cast<const char *>(W);
    for (int64_t r = 0; r < n_rows; r++) {
        dot_k_pf<Block, 1, true>(n, w + (size_t)r * row_bytes, xq, 0, y + r, 0, w + (size_t)dense_ahead(r, n_rows) * row_bytes);
    }
}

// The sparse FFN's rows from a list (dot_rows_ids; cpu/prefetch.h's list_rows).
template <class Block>
void rows_ids(int64_t n, const void * W, size_t row_bytes, const void * xq, const int32_t * ids, int64_t n_ids,
              float * y, int ahead) {
    list_rows(
        W, row_bytes, ids, n_ids, ahead,
        [&](int64_t k, const char * row, const char * next) { dot_k_pf<Block, 1, true>(n, row, xq, 0, y + k, 0, next); },
        [&](int64_t k, const char * row) { dot_k<Block, 1>(n, row, xq, 0, y + k, 0); });
}

}  // namespace

#define PI_K_ENTRIES(type, Block)                                 \
    t.dot[type]       = one<dot_k<Block, 1>>;                     \
    t.batch_max[type] = 4;                                        \
    t.dot_rows[type]  = rows<Block>;                              \
    t.dot_rows_ids[type] = rows_ids<Block>;                       \
    t.dot_batch[type] = [](int64_t n, const void * w, const void * xq, size_t xs, int nb, float * out, int64_t ldo) { \
        switch (nb) {                                             \
            case 1: dot_k<Block, 1>(n, w, xq, xs, out, ldo); break; \
            case 2: dot_k<Block, 2>(n, w, xq, xs, out, ldo); break; \
            case 3: dot_k<Block, 3>(n, w, xq, xs, out, ldo); break; \
            default: dot_k<Block, 4>(n, w, xq, xs, out, ldo); break; \
        }                                                         \
    }

void dot_k_fill_avx2(dot_table & t) {
    PI_K_ENTRIES(PI_TYPE_Q2_K, block_q2_K);
    PI_K_ENTRIES(PI_TYPE_Q3_K, block_q3_K);
    PI_K_ENTRIES(PI_TYPE_Q4_K, block_q4_K);
    PI_K_ENTRIES(PI_TYPE_Q5_K, block_q5_K);
    PI_K_ENTRIES(PI_TYPE_Q6_K, block_q6_K);
}

}  // namespace pi
