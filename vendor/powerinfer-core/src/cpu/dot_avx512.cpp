// dot_avx512.cpp - AVX-512 (F, BW, VL, DQ) dot kernels for the 32-value block types: Q4_0, Q4_1
// (SmolLM2's matrices), Q5_0, Q5_1 and Q8_0 (its output head). Types not written here keep their
// AVX2 kernels (dispatch.cpp copies the AVX2 table first).
//
// Four weight blocks per step. For the 4-bit types the 4 x 16 packed bytes fill one zmm; its low
// nibbles are values 0..15 and its high nibbles values 16..31 of each block, and two permutes put
// the contiguous activation values (ACT_Q8) in the same order. vpdpbusd (AVX512-VNNI, used when
// the CPU has it: cpu_get_features().avx512vnni) or vpmaddubsw + vpmaddwd then gives 16 int32 sums,
// four per block. The 5-bit types add 16 to the bytes whose bit is set in qh (a byte-masked add,
// the qh words being the masks). The scales come as 8 floats per step: (d * dx, c * s) for each
// of the 4 blocks, c being the min (q4_1, q5_1), -8 * d (q4_0) or -16 * d (q5_0), as in dot_avx2.cpp.
// Q8_0 goes two blocks per zmm with |w| and the sign of w moved onto the activation.
#include "powerinfer.h"
#include "core/cpu_features.h"
#include "cpu/blocks.h"
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

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <vector>

namespace pi {

namespace {

template <bool VNNI>
inline __m512i dpbusd(__m512i acc, __m512i u, __m512i s) {
    if constexpr (VNNI) {
        return _mm512_dpbusd_epi32(acc, u, s);
    } else {
        const __m512i p = _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
        return _mm512_add_epi32(acc, p);
    }
}

inline uint32_t load_u32(const uint8_t * p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
inline uint32_t load_u16(const uint8_t * p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

// ---- the 4- and 5-bit types ----------------------------------------------------------------------------

// Where a block's fields start (bytes: its size; qs: its 16 packed bytes; qh: the 32 fifth bits of
// the 5-bit types, -1 for the 4-bit ones) and how its offset term c is formed: offset * d for the
// _0 types, the stored min m when offset is 0 (the _1 types). The f16 d (and m) are the block's
// first bytes.
struct z_q4_0 {
    static constexpr int   bytes = sizeof(block_q4_0), qs = 2, qh = -1;
    static constexpr float offset = -8.0f;
};

struct z_q4_1 {
    static constexpr int   bytes = sizeof(block_q4_1), qs = 4, qh = -1;
    static constexpr float offset = 0.0f;
};

struct z_q5_0 {
    static constexpr int   bytes = sizeof(block_q5_0), qs = 6, qh = 2;
    static constexpr float offset = -16.0f;
};

struct z_q5_1 {
    static constexpr int   bytes = sizeof(block_q5_1), qs = 8, qh = 4;
    static constexpr float offset = 0.0f;
};

// Masks for the activation bytes of k blocks (32 each) in two 64-byte loads, and for their k
// (d, s) float pairs.
inline __mmask64 bytes_mask(int64_t nbytes) {
    return nbytes >= 64 ? ~(__mmask64)0 : nbytes <= 0 ? (__mmask64)0 : (((__mmask64)1 << nbytes) - 1);
}
inline __mmask8 pairs_mask(int k) { return (__mmask8)((1u << (2 * k)) - 1); }

// A full step's 4 blocks (4 * T::bytes, 72 to 96 bytes) come in two 64-byte loads, A at the first
// byte and B ending at the last, and 16-bit permutes pick out of them the 4 x 16 packed bytes and
// the f16 scale words, instead of 4 loads and 3 inserts for the packed bytes and 4 scalar loads
// plus 3 inserts for the scales (alone, 1.04x the rows per second of SmolLM2's Q4_1 matrices in
// cache; the sixteen-row reduction and the activation order below did the rest). The block sizes
// are all even, so every field starts on a 16-bit word.
template <class T>
struct gather4 {
    static constexpr int words   = T::bytes / 2;          // 16-bit words per block
    static constexpr int b_first = (4 * T::bytes - 64) / 2;  // word of the group at which B starts
    // Index into (A, B) for permutex2var_epi16 of the group's word g (g < 32 from A, else from B).
    static constexpr short ab(int g) { return (short)(g < 32 ? g : 32 + g - b_first); }
    // Word o of the packed bytes (block o / 8, word o % 8 of its 16 bytes).
    static constexpr short qs(int o) { return ab(words * (o / 8) + T::qs / 2 + o % 8); }
    // Word o of the scales: (d, m) of each block for the _1 types, (d, d) for the _0 types (dc
    // multiplies the second by -8 or -16); words 8..31 unused.
    static constexpr short sc(int o) {
        return o >= 8 ? 0 : ab(words * (o / 2) + (T::offset == 0.0f ? o % 2 : 0));
    }
};

// The packed bytes (v) and the scales (dc) of the 4 blocks from the loads a and b.
template <class T>
__attribute__((always_inline)) inline void pick4(__m512i a, __m512i b, __m512i * v, __m256 * dc) {
    using G = gather4<T>;
    const __m512i qs_idx = _mm512_set_epi16(
        G::qs(31), G::qs(30), G::qs(29), G::qs(28), G::qs(27), G::qs(26), G::qs(25), G::qs(24),
        G::qs(23), G::qs(22), G::qs(21), G::qs(20), G::qs(19), G::qs(18), G::qs(17), G::qs(16),
        G::qs(15), G::qs(14), G::qs(13), G::qs(12), G::qs(11), G::qs(10), G::qs(9), G::qs(8),
        G::qs(7), G::qs(6), G::qs(5), G::qs(4), G::qs(3), G::qs(2), G::qs(1), G::qs(0));
    const __m512i sc_idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                            G::sc(7), G::sc(6), G::sc(5), G::sc(4), G::sc(3), G::sc(2),
                                            G::sc(1), G::sc(0));
    *v             = _mm512_permutex2var_epi16(a, qs_idx, b);
    const __m256 s = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(a, sc_idx, b)));
    if constexpr (T::offset == 0.0f) {
        *dc = s;  // (d, m) x 4
    } else {
        constexpr float c = T::offset;
        *dc = _mm256_mul_ps(s, _mm256_setr_ps(1, c, 1, c, 1, c, 1, c));
    }
}

template <class T>
__attribute__((always_inline)) inline void load4(const uint8_t * p, __m512i * v, __m256 * dc) {
    pick4<T>(_mm512_loadu_si512(p), _mm512_loadu_si512(p + 4 * T::bytes - 64), v, dc);
}

// The last k < 4 blocks of a row: the same gather from loads masked to the k blocks' bytes (a
// masked-off byte is never read, so nothing past the row is touched); the missing blocks read as 0.
template <class T>
__attribute__((always_inline)) inline void load_part(const uint8_t * p, int k, __m512i * v, __m256 * dc) {
    const int64_t nbytes = (int64_t)k * T::bytes, b_start = 4 * T::bytes - 64;
    pick4<T>(_mm512_maskz_loadu_epi8(bytes_mask(nbytes), p),
             _mm512_maskz_loadu_epi8(bytes_mask(nbytes - b_start), p + b_start), v, dc);
}

// The activation values of a group of 4 blocks (x0: blocks 0-1, x1: blocks 2-3) in the order of
// the packed bytes: values 0..15 of each block (xl), then values 16..31 of each block (xh).
inline void act_nibble_order(__m512i x0, __m512i x1, __m512i * xl, __m512i * xh) {
    *xl = _mm512_permutex2var_epi64(x0, _mm512_setr_epi64(0, 1, 4, 5, 8, 9, 12, 13), x1);
    *xh = _mm512_permutex2var_epi64(x0, _mm512_setr_epi64(2, 3, 6, 7, 10, 11, 14, 15), x1);
}

// The ACT_Q8 values of nb blocks rearranged once for a whole matrix-vector product: group g of 4
// blocks becomes 128 bytes at out + 128 g, xl then xh (the last group zero-padded, as the masked
// loads of a row's last step read it). Each row's steps then load xl and xh directly instead of
// permuting the same activation again for every row (two of the step's five shuffles).
inline void act_to_nibble_order(const int8_t * x, int64_t nb, int8_t * out) {
    for (int64_t i = 0; i < nb; i += 4) {
        const int64_t k  = nb - i < 4 ? nb - i : 4;
        const __m512i x0 = _mm512_maskz_loadu_epi8(bytes_mask(32 * k), x + i * 32);
        const __m512i x1 = _mm512_maskz_loadu_epi8(bytes_mask(32 * k - 64), x + i * 32 + 64);
        __m512i       xl, xh;
        act_nibble_order(x0, x1, &xl, &xh);
        _mm512_storeu_si512(out + i * 32, xl);
        _mm512_storeu_si512(out + i * 32 + 64, xh);
    }
}

// One step of 4 blocks (FULL) or of the last k < 4, for NB activations, their values as given
// (ORDERED false) or already in nibble order (act_to_nibble_order).
template <class T, bool VNNI, int NB, bool FULL, bool ORDERED>
__attribute__((always_inline)) inline void nibble_step(const uint8_t * p, int64_t i, int k, const int8_t * const * xv,
                                                       const float * const * xd, __m512 * acc, __m512 * accc) {
    const __m512i mask4  = _mm512_set1_epi8(0x0f);
    const __m512i bcast  = _mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6);
    __m512i       v;
    __m256        dc;
    if (FULL) {
        load4<T>(p, &v, &dc);
    } else {
        load_part<T>(p, k, &v, &dc);
    }
    __m512i lo = _mm512_and_si512(v, mask4);                        // values 0..15 of each block
    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), mask4);  // values 16..31
    if (T::qh >= 0) {
        // Fifth bits: bit j of block j's qh goes to byte 16 k + j of lo (j < 16) or of hi (j >= 16),
        // so the low and high halves of the 4 qh words, side by side, are byte masks for them.
        uint64_t mlo = 0, mhi = 0;
        for (int j = 0; j < (FULL ? 4 : k); j++) {
            const uint64_t h = load_u32(p + j * T::bytes + T::qh);
            mlo |= (h & 0xffff) << (16 * j);
            mhi |= (h >> 16) << (16 * j);
        }
        const __m512i b4 = _mm512_set1_epi8(0x10);
        lo               = _mm512_mask_add_epi8(lo, (__mmask64)mlo, lo, b4);
        hi               = _mm512_mask_add_epi8(hi, (__mmask64)mhi, hi, b4);
    }
    for (int b = 0; b < NB; b++) {
        const int8_t * x = xv[b] + i * 32;
        __m512i        xl, xh;
        __m256         ds;
        if (ORDERED) {
            xl = _mm512_loadu_si512(x);
            xh = _mm512_loadu_si512(x + 64);
        } else if (FULL) {
            act_nibble_order(_mm512_loadu_si512(x), _mm512_loadu_si512(x + 64), &xl, &xh);
        } else {
            act_nibble_order(_mm512_maskz_loadu_epi8(bytes_mask(32 * k), x),
                             _mm512_maskz_loadu_epi8(bytes_mask(32 * k - 64), x + 64), &xl, &xh);
        }
        if (FULL) ds = _mm256_loadu_ps(xd[b] + 2 * i);
        else      ds = _mm256_maskz_loadu_ps(pairs_mask(k), xd[b] + 2 * i);
        const __m512i s  = dpbusd<VNNI>(dpbusd<VNNI>(_mm512_setzero_si512(), lo, xl), hi, xh);
        const __m512  pr = _mm512_zextps256_ps512(_mm256_mul_ps(dc, ds));  // (d dx, c s) x 4
        acc[b]           = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_permutexvar_ps(bcast, pr), acc[b]);
        accc[b]          = _mm512_mask_add_ps(accc[b], 0xaa, accc[b], pr);  // the c s terms, lanes 1 3 5 7
    }
}

// Requests every line of the `len` bytes (len <= 192) at p.
template <int len>
__attribute__((always_inline)) inline void request_span(const uint8_t * p) {
    static_assert(len > 0 && len <= 192, "a step's bytes");
    const char * c = reinterpret_cast<const char *>(p);
    request_line(c);
    if (len > 64) request_line(c + 64);
    if (len > 128) request_line(c + 128);
    request_line(c + len - 1);
}

// One row against NB activations, up to the last vector of partial sums: sum[b] is what gets
// reduced to the product with activation b (one row at a time, or sixteen rows together).
// With PF, each step of 4 blocks also requests the same bytes of the row at pf (the sparse list
// kernel's row a few places ahead), so that requests go out at the pace the row is consumed.
template <class T, bool VNNI, int NB, bool ORDERED, bool PF>
__attribute__((always_inline)) inline void nibble_sums_pf(int64_t n, const uint8_t * wb, const int8_t * const * xv,
                                                          const float * const * xd, __m512 * sum, const uint8_t * pf) {
    const int64_t nb = n / 32;
    // Three accumulators per activation (even steps, odd steps, c s terms) so that no chain of
    // dependent float additions limits the loop.
    __m512 acc0[NB], acc1[NB], accc[NB];
    for (int b = 0; b < NB; b++) acc0[b] = acc1[b] = accc[b] = _mm512_setzero_ps();
    // The same two chains for any NB, so that a batch gives each activation the very bits a single
    // product gives it (prompt and generation agree exactly).
    __m512 * acc_odd = acc1;
    auto     ahead   = [&](int64_t i) {  // step i's 4 blocks of row pf
        if (PF) request_span<4 * T::bytes>(pf + i * T::bytes);
    };
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        ahead(i);
        nibble_step<T, VNNI, NB, true, ORDERED>(wb + i * T::bytes, i, 4, xv, xd, acc0, accc);
        ahead(i + 4);
        nibble_step<T, VNNI, NB, true, ORDERED>(wb + (i + 4) * T::bytes, i + 4, 4, xv, xd, acc_odd, accc);
    }
    if (i + 4 <= nb) {
        ahead(i);
        nibble_step<T, VNNI, NB, true, ORDERED>(wb + i * T::bytes, i, 4, xv, xd, acc0, accc);
        i += 4;
    }
    if (i < nb) {
        if (PF) request_line(reinterpret_cast<const char *>(pf) + nb * T::bytes - 1);
        nibble_step<T, VNNI, NB, false, ORDERED>(wb + i * T::bytes, i, (int)(nb - i), xv, xd, acc_odd, accc);
    }
    for (int b = 0; b < NB; b++) sum[b] = _mm512_add_ps(_mm512_add_ps(acc0[b], acc1[b]), accc[b]);
}

template <class T, bool VNNI, int NB, bool ORDERED = false>
__attribute__((always_inline)) inline void nibble_sums(int64_t n, const uint8_t * wb, const int8_t * const * xv,
                                                       const float * const * xd, __m512 * sum) {
    nibble_sums_pf<T, VNNI, NB, ORDERED, false>(n, wb, xv, xd, sum, nullptr);
}

// The activations' value and scale pointers (ACT_Q8), NB of them xs bytes apart.
template <int NB>
inline void act_q8_pointers(int64_t n, const void * xq, size_t xs, const int8_t ** xv, const float ** xd) {
    for (int b = 0; b < NB; b++) {
        const void * x = static_cast<const char *>(xq) + b * xs;
        xv[b]          = act_q8_values(x);
        xd[b]          = act_q8_scales(x, n);
    }
}

template <class T, bool VNNI, int NB>
void dot_nibbles(int64_t n, const void * w, const void * xq, size_t xs, float * out, int64_t ldo) {
    const int8_t * xv[NB];
    const float *  xd[NB];
    act_q8_pointers<NB>(n, xq, xs, xv, xd);
    __m512 sum[NB];
    nibble_sums<T, VNNI, NB>(n, static_cast<const uint8_t *>(w), xv, xd, sum);
    for (int b = 0; b < NB; b++) out[b * ldo] = _mm512_reduce_add_ps(sum[b]);
}

// ---- q8_0 ----------------------------------------------------------------------------------------
//
// Signed weights: |w| goes in the unsigned operand and w's sign onto the activation (a masked
// negation; activations are never -128, so it cannot overflow). Two blocks per zmm, four per step.

template <bool VNNI, int NB, bool FULL>
__attribute__((always_inline)) inline void q8_step(const uint8_t * p, int64_t i, int k, const int8_t * const * xv,
                                                   const float * const * xd, __m512 * acc, __m512 * acc2) {
    constexpr int B   = sizeof(block_q8_0);
    const __m512i bc0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
    const __m512i bc1 = _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6);
    __m256i       q[4];
    uint32_t      h[4] = {0, 0, 0, 0};
    for (int j = 0; j < 4; j++) {
        if (FULL || j < k) {
            q[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p + j * B + 2));
            h[j] = load_u16(p + j * B);
        } else {
            q[j] = _mm256_setzero_si256();
        }
    }
    const __m512i   w0 = _mm512_inserti64x4(_mm512_zextsi256_si512(q[0]), q[1], 1);
    const __m512i   w1 = _mm512_inserti64x4(_mm512_zextsi256_si512(q[2]), q[3], 1);
    const __m512i   u0 = _mm512_abs_epi8(w0), u1 = _mm512_abs_epi8(w1);
    const __mmask64 n0 = _mm512_movepi8_mask(w0), n1 = _mm512_movepi8_mask(w1);
    const __m256    d  = _mm256_cvtph_ps(_mm_setr_epi32((int)h[0], (int)h[1], (int)h[2], (int)h[3]));  // (d, 0) x 4
    for (int b = 0; b < NB; b++) {
        const int8_t * x = xv[b] + i * 32;
        __m512i        x0, x1;
        __m256         ds;
        if (FULL) {
            x0 = _mm512_loadu_si512(x);
            x1 = _mm512_loadu_si512(x + 64);
            ds = _mm256_loadu_ps(xd[b] + 2 * i);
        } else {
            x0 = _mm512_maskz_loadu_epi8(bytes_mask(32 * k), x);
            x1 = _mm512_maskz_loadu_epi8(bytes_mask(32 * k - 64), x + 64);
            ds = _mm256_maskz_loadu_ps(pairs_mask(k), xd[b] + 2 * i);
        }
        const __m512i a0 = _mm512_mask_sub_epi8(x0, n0, _mm512_setzero_si512(), x0);
        const __m512i a1 = _mm512_mask_sub_epi8(x1, n1, _mm512_setzero_si512(), x1);
        const __m512i s0 = dpbusd<VNNI>(_mm512_setzero_si512(), u0, a0);
        const __m512i s1 = dpbusd<VNNI>(_mm512_setzero_si512(), u1, a1);
        const __m512  pr = _mm512_zextps256_ps512(_mm256_mul_ps(d, ds));
        acc[b]           = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_permutexvar_ps(bc0, pr), acc[b]);
        acc2[b]          = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), _mm512_permutexvar_ps(bc1, pr), acc2[b]);
    }
}

// With PF, each step also requests the same bytes of the row at pf (as nibble_sums_pf).
template <bool VNNI, int NB, bool PF>
__attribute__((always_inline)) inline void q8_sums_pf(int64_t n, const uint8_t * wb, const int8_t * const * xv,
                                                      const float * const * xd, __m512 * sum, const uint8_t * pf) {
    constexpr int B  = sizeof(block_q8_0);
    const int64_t nb = n / 32;
    __m512        acc[NB], acc2[NB];  // two chains of additions
    for (int b = 0; b < NB; b++) acc[b] = acc2[b] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        if (PF) request_span<4 * B>(pf + i * B);
        q8_step<VNNI, NB, true>(wb + i * B, i, 4, xv, xd, acc, acc2);
    }
    if (i < nb) {
        if (PF) request_line(reinterpret_cast<const char *>(pf) + nb * B - 1);
        q8_step<VNNI, NB, false>(wb + i * B, i, (int)(nb - i), xv, xd, acc, acc2);
    }
    for (int b = 0; b < NB; b++) sum[b] = _mm512_add_ps(acc[b], acc2[b]);
}

template <bool VNNI, int NB>
__attribute__((always_inline)) inline void q8_sums(int64_t n, const uint8_t * wb, const int8_t * const * xv,
                                                   const float * const * xd, __m512 * sum) {
    q8_sums_pf<VNNI, NB, false>(n, wb, xv, xd, sum, nullptr);
}

template <bool VNNI, int NB>
void dot_q8_0(int64_t n, const void * w, const void * xq, size_t xs, float * out, int64_t ldo) {
    const int8_t * xv[NB];
    const float *  xd[NB];
    act_q8_pointers<NB>(n, xq, xs, xv, xd);
    __m512 sum[NB];
    q8_sums<VNNI, NB>(n, static_cast<const uint8_t *>(w), xv, xd, sum);
    for (int b = 0; b < NB; b++) out[b * ldo] = _mm512_reduce_add_ps(sum[b]);
}

// ---- entry points: one activation, or a batch of up to 4 ----------------------------

template <void (*K1)(int64_t, const void *, const void *, size_t, float *, int64_t)>
float one(int64_t n, const void * w, const void * xq) {
    float r;
    K1(n, w, xq, 0, &r, 0);
    return r;
}

// The row loop of matvec: sixteen rows' sum vectors, then one reduce16 for them (the bits of
// sixteen _mm512_reduce_add_ps); the last n_rows % 16 rows one at a time.
typedef void (*row_sums_fn)(int64_t n, const uint8_t * w, const int8_t * const * xv, const float * const * xd,
                            __m512 * sum);
// The same with the bytes of row pf requested step by step as row w is read (nibble_sums_pf).
typedef void (*row_sums_pf_fn)(int64_t n, const uint8_t * w, const int8_t * const * xv, const float * const * xd,
                               __m512 * sum, const uint8_t * pf);

template <row_sums_fn SUMS, row_sums_pf_fn SUMS_PF>
void rows_loop(int64_t n, const uint8_t * w, size_t row_bytes, const int8_t * const * xv, const float * const * xd,
               float * y, int64_t n_rows) {
    int64_t r = 0;
    for (; r + 16 <= n_rows; r += 16) {
        __m512 t[16];
        for (int k = 0; k < 16; k++) {  // row dense_ahead(r + k) requested meanwhile (cpu/prefetch.h)
            SUMS_PF(n, w + (size_t)(r + k) * row_bytes, xv, xd, &t[k], w + (size_t)dense_ahead(r + k, n_rows) * row_bytes);
        }
        _mm512_storeu_ps(y + r, reduce16(t));
    }
    for (; r < n_rows; r++) {
        __m512 t;
        SUMS(n, w + (size_t)r * row_bytes, xv, xd, &t);
        y[r] = _mm512_reduce_add_ps(t);
    }
}

template <row_sums_fn SUMS, row_sums_pf_fn SUMS_PF>
void rows(int64_t n, const void * W, size_t row_bytes, const void * xq, float * y, int64_t n_rows) {
    const int8_t * xv[1];
    const float *  xd[1];
    act_q8_pointers<1>(n, xq, 0, xv, xd);
    rows_loop<SUMS, SUMS_PF>(n, static_cast<const uint8_t *>(W), row_bytes, xv, xd, y, n_rows);
}

// The 4- and 5-bit types: the activation put in nibble order once (into `ordered`, kOrderedMax
// bytes on the caller's stack), then every row's steps without the activation shuffles. Same bits.
// Longer rows keep the activation as given. Fills xv and xd; returns whether it reordered.
constexpr int64_t kOrderedMax = 32768;

inline bool nibble_activation(int64_t n, const void * xq, int8_t * ordered, const int8_t ** xv, const float ** xd) {
    *xd = act_q8_scales(xq, n);
    if (n > kOrderedMax) {
        *xv = act_q8_values(xq);
        return false;
    }
    act_to_nibble_order(act_q8_values(xq), n / 32, ordered);
    *xv = ordered;
    return true;
}

template <class T, bool VNNI>
void rows_nibbles(int64_t n, const void * W, size_t row_bytes, const void * xq, float * y, int64_t n_rows) {
    alignas(64) int8_t ordered[kOrderedMax];
    const int8_t *     xv[1];
    const float *      xd[1];
    const uint8_t *    w = static_cast<const uint8_t *>(W);
    if (nibble_activation(n, xq, ordered, xv, xd)) {
        rows_loop<nibble_sums<T, VNNI, 1, true>, nibble_sums_pf<T, VNNI, 1, true, true>>(n, w, row_bytes, xv, xd, y, n_rows);
    } else {
        rows_loop<nibble_sums<T, VNNI, 1>, nibble_sums_pf<T, VNNI, 1, false, true>>(n, w, row_bytes, xv, xd, y, n_rows);
    }
}

// The batched product (prompts; the sparse FFN's union of active rows when ids is given): per
// sixteen rows and four activations the sums (SUMS4: four activations, SUMS1: one) and one reduce16
// per activation, each row's bytes staying in L1 while
// the groups of four activations pass over them. For the 4- and 5-bit types (ORDERED) the chunk's
// activations (up to 64) are first put in nibble order, in a per-thread buffer. Same bits as dot
// for every (row, activation). Measured on SmolLM2 (576-wide rows), 2 threads, a 512-token prompt:
// 1.5x the tokens/s of the loop of matmul.cpp over dot_batch.
template <row_sums_fn SUMS4, row_sums_fn SUMS1, bool ORDERED>
void block_rows(int64_t n, const void * W, size_t row_bytes, int64_t n_rows, const int32_t * ids, const void * xq,
                size_t xs, int64_t n_b, float * Y, int64_t ldy) {
    constexpr int64_t kChunk  = 64;
    const int64_t     nb      = n / 32;
    const size_t      ostride = (size_t)((nb + 3) / 4) * 128;  // ordered values of one activation
    static thread_local std::vector<int8_t> buf;
    int8_t * ordered = nullptr;
    if (ORDERED) {
        if (buf.size() < ostride * kChunk + 64) buf.resize(ostride * kChunk + 64);
        ordered = reinterpret_cast<int8_t *>(((uintptr_t)buf.data() + 63) & ~(uintptr_t)63);
    }
    const uint8_t * w = static_cast<const uint8_t *>(W);
    const char *    x = static_cast<const char *>(xq);
    auto row = [&](int64_t r) { return w + (size_t)(ids ? ids[r] : r) * row_bytes; };
    for (int64_t b0 = 0; b0 < n_b; b0 += kChunk) {
        const int64_t nc = n_b - b0 < kChunk ? n_b - b0 : kChunk;
        auto values = [&](int64_t b) {  // activation b0 + b's values, as SUMS expects them
            return ORDERED ? ordered + (size_t)b * ostride : act_q8_values(x + (size_t)(b0 + b) * xs);
        };
        if (ORDERED) {
            for (int64_t b = 0; b < nc; b++) {
                act_to_nibble_order(act_q8_values(x + (size_t)(b0 + b) * xs), nb, ordered + (size_t)b * ostride);
            }
        }
        int64_t r = 0;
        for (; r + 16 <= n_rows; r += 16) {
            for (int64_t b = 0; b < nc; b += 4) {
                const int      k = nc - b < 4 ? (int)(nc - b) : 4;
                const int8_t * xv[4];
                const float *  xd[4];
                for (int j = 0; j < 4; j++) {
                    const int64_t bj = b + (j < k ? j : 0);  // a short group repeats its first activation
                    xv[j] = values(bj);
                    xd[j] = act_q8_scales(x + (size_t)(b0 + bj) * xs, n);
                }
                __m512 t[4][16];
                for (int i = 0; i < 16; i++) {
                    __m512 sum[4];
                    SUMS4(n, row(r + i), xv, xd, sum);
                    for (int j = 0; j < 4; j++) t[j][i] = sum[j];
                }
                for (int j = 0; j < k; j++) _mm512_storeu_ps(Y + (b0 + b + j) * ldy + r, reduce16(t[j]));
            }
        }
        for (; r < n_rows; r++) {
            for (int64_t b = 0; b < nc; b++) {
                const int8_t * xv[1] = {values(b)};
                const float *  xd[1] = {act_q8_scales(x + (size_t)(b0 + b) * xs, n)};
                __m512         sum;
                SUMS1(n, row(r), xv, xd, &sum);
                Y[(b0 + b) * ldy + r] = _mm512_reduce_add_ps(sum);
            }
        }
    }
}

// The sparse FFN's rows: rows taken from a list, the row `ahead` places further down requested
// at the pace this one is read (SUMS_PF; why: cpu/prefetch.h). The bits of dot per row.
template <row_sums_fn SUMS, row_sums_pf_fn SUMS_PF>
void rows_ids_loop(int64_t n, const uint8_t * w, size_t row_bytes, const int8_t * const * xv, const float * const * xd,
                   const int32_t * ids, int64_t n_ids, float * y, int ahead) {
    list_rows(
        w, row_bytes, ids, n_ids, ahead,
        [&](int64_t k, const char * row, const char * next) {
            __m512 t;
            SUMS_PF(n, reinterpret_cast<const uint8_t *>(row), xv, xd, &t, reinterpret_cast<const uint8_t *>(next));
            y[k] = _mm512_reduce_add_ps(t);
        },
        [&](int64_t k, const char * row) {
            __m512 t;
            SUMS(n, reinterpret_cast<const uint8_t *>(row), xv, xd, &t);
            y[k] = _mm512_reduce_add_ps(t);
        });
}

// With the activation in nibble order, as rows_nibbles (for a list of all rows in order, 0.82x the
// time of calling the row kernel per row).
template <class T, bool VNNI>
void rows_ids_nibbles(int64_t n, const void * W, size_t row_bytes, const void * xq, const int32_t * ids,
                      int64_t n_ids, float * y, int ahead) {
    alignas(64) int8_t ordered[kOrderedMax];
    const int8_t *     xv[1];
    const float *      xd[1];
    const uint8_t *    w = static_cast<const uint8_t *>(W);
    if (nibble_activation(n, xq, ordered, xv, xd)) {
        rows_ids_loop<nibble_sums<T, VNNI, 1, true>, nibble_sums_pf<T, VNNI, 1, true, true>>(n, w, row_bytes, xv, xd, ids, n_ids, y, ahead);
    } else {
        rows_ids_loop<nibble_sums<T, VNNI, 1>, nibble_sums_pf<T, VNNI, 1, false, true>>(n, w, row_bytes, xv, xd, ids, n_ids, y, ahead);
    }
}

template <bool VNNI>
void rows_ids_q8(int64_t n, const void * W, size_t row_bytes, const void * xq, const int32_t * ids, int64_t n_ids,
                 float * y, int ahead) {
    const int8_t * xv[1];
    const float *  xd[1];
    act_q8_pointers<1>(n, xq, 0, xv, xd);
    rows_ids_loop<q8_sums<VNNI, 1>, q8_sums_pf<VNNI, 1, true>>(n, static_cast<const uint8_t *>(W), row_bytes, xv, xd,
                                                                ids, n_ids, y, ahead);
}

// Up to batch_max (4) activations; K<n> is the kernel instantiated for n of them.
template <template <int> class K>
void batch(int64_t n, const void * w, const void * xq, size_t xs, int nb, float * out, int64_t ldo) {
    switch (nb) {
        case 1: K<1>::run(n, w, xq, xs, out, ldo); break;
        case 2: K<2>::run(n, w, xq, xs, out, ldo); break;
        case 3: K<3>::run(n, w, xq, xs, out, ldo); break;
        default: K<4>::run(n, w, xq, xs, out, ldo); break;
    }
}

template <class T, bool VNNI>
struct nib {
    template <int NB>
    struct k {
        static void run(int64_t n, const void * w, const void * xq, size_t xs, float * out, int64_t ldo) {
            dot_nibbles<T, VNNI, NB>(n, w, xq, xs, out, ldo);
        }
    };
};

template <bool VNNI>
struct q8 {
    template <int NB>
    struct k {
        static void run(int64_t n, const void * w, const void * xq, size_t xs, float * out, int64_t ldo) {
            dot_q8_0<VNNI, NB>(n, w, xq, xs, out, ldo);
        }
    };
};

template <bool VNNI>
void fill(dot_table & t) {
    t.dot[PI_TYPE_Q4_0]       = one<dot_nibbles<z_q4_0, VNNI, 1>>;
    t.dot_rows[PI_TYPE_Q4_0]  = rows_nibbles<z_q4_0, VNNI>;
    t.dot_rows_ids[PI_TYPE_Q4_0] = rows_ids_nibbles<z_q4_0, VNNI>;
    t.block_rows[PI_TYPE_Q4_0] = block_rows<nibble_sums<z_q4_0, VNNI, 4, true>, nibble_sums<z_q4_0, VNNI, 1, true>, true>;
    t.dot_batch[PI_TYPE_Q4_0] = batch<nib<z_q4_0, VNNI>::template k>;
    t.dot[PI_TYPE_Q4_1]       = one<dot_nibbles<z_q4_1, VNNI, 1>>;
    t.dot_rows[PI_TYPE_Q4_1]  = rows_nibbles<z_q4_1, VNNI>;
    t.dot_rows_ids[PI_TYPE_Q4_1] = rows_ids_nibbles<z_q4_1, VNNI>;
    t.block_rows[PI_TYPE_Q4_1] = block_rows<nibble_sums<z_q4_1, VNNI, 4, true>, nibble_sums<z_q4_1, VNNI, 1, true>, true>;
    t.dot_batch[PI_TYPE_Q4_1] = batch<nib<z_q4_1, VNNI>::template k>;
    t.dot[PI_TYPE_Q5_0]       = one<dot_nibbles<z_q5_0, VNNI, 1>>;
    t.dot_rows[PI_TYPE_Q5_0]  = rows_nibbles<z_q5_0, VNNI>;
    t.dot_rows_ids[PI_TYPE_Q5_0] = rows_ids_nibbles<z_q5_0, VNNI>;
    t.block_rows[PI_TYPE_Q5_0] = block_rows<nibble_sums<z_q5_0, VNNI, 4, true>, nibble_sums<z_q5_0, VNNI, 1, true>, true>;
    t.dot_batch[PI_TYPE_Q5_0] = batch<nib<z_q5_0, VNNI>::template k>;
    t.dot[PI_TYPE_Q5_1]       = one<dot_nibbles<z_q5_1, VNNI, 1>>;
    t.dot_rows[PI_TYPE_Q5_1]  = rows_nibbles<z_q5_1, VNNI>;
    t.dot_rows_ids[PI_TYPE_Q5_1] = rows_ids_nibbles<z_q5_1, VNNI>;
    t.block_rows[PI_TYPE_Q5_1] = block_rows<nibble_sums<z_q5_1, VNNI, 4, true>, nibble_sums<z_q5_1, VNNI, 1, true>, true>;
    t.dot_batch[PI_TYPE_Q5_1] = batch<nib<z_q5_1, VNNI>::template k>;
    t.dot[PI_TYPE_Q8_0]       = one<dot_q8_0<VNNI, 1>>;
    t.dot_rows[PI_TYPE_Q8_0]  = rows<q8_sums<VNNI, 1>, q8_sums_pf<VNNI, 1, true>>;
    t.dot_rows_ids[PI_TYPE_Q8_0] = rows_ids_q8<VNNI>;
    t.block_rows[PI_TYPE_Q8_0] = block_rows<q8_sums<VNNI, 4>, q8_sums<VNNI, 1>, false>;
    t.dot_batch[PI_TYPE_Q8_0] = batch<q8<VNNI>::template k>;
    // 4 at a time: 8 (three accumulators each) would spill registers, and measured no faster.
    for (int type : {PI_TYPE_Q4_0, PI_TYPE_Q4_1, PI_TYPE_Q5_0, PI_TYPE_Q5_1, PI_TYPE_Q8_0}) t.batch_max[type] = 4;
}

}  // namespace

// POWERINFER_AVX512_VNNI=0 makes CPUs with VNNI take the path of those without (for tests).
void dot_table_fill_avx512(dot_table & t) {
    const char * env = std::getenv("POWERINFER_AVX512_VNNI");
    if (cpu_get_features().avx512vnni && !(env && std::strcmp(env, "0") == 0)) {
        fill<true>(t);
    } else {
        fill<false>(t);
    }
    vec_f32_fill_avx512(t);  // also the F32 and F16 weight rows
}

}  // namespace pi
