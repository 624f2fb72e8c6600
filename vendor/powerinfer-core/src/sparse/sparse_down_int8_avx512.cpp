// sparse_down_int8_avx512.cpp - integer scaled-row-accumulate kernels for Q4_0 and Q8_0 rows,
// for CPUs with AVX512-VNNI and AVX512-VBMI (Ice Lake, Zen 4 and later).
//
// Why: the float kernels (sparse_down_avx512.cpp) widen every weight to a float and do one FMA per
// weight and row, plus a scalar fp16 scale per block and row; at 4096 x 11008 that runs at about
// 17 G weights/s on one Zen 4 core, half the rate at which the dense GEMV streams the same bytes
// with int8 dot products. Here four rows are added at once with vpdpbusd, the instruction of the
// dense kernels: for output column j of a block it sums q_kj * s'_k over the 4 rows k, where
//     s_k  = h_k * d_k          (the row's hidden value times its block scale, a float)
//     s'_k = round(s_k * 127 / m),  m = max over the 4 rows of |s_k|,
// so that the group adds  (m / 127) * sum_k s'_k * (q_kj - zero)  to y[j]: one int8 rounding of
// the 4 products per block (the dense path rounds its activations to int8 in blocks of 32 the
// same way), one float conversion and FMA per column for 4 rows instead of 4 FMAs.
//
// Layout work per block: the 4 rows' bytes are loaded side by side and one byte permute (vpermb;
// vpermt2b for Q8_0) turns them into dwords (q_0j, q_1j, q_2j, q_3j), the shape vpdpbusd wants;
// the unsigned operand must be the weights, so Q4_0 uses its stored nibbles 0..15 (zero = 8) and
// Q8_0 its bytes xor 0x80 (zero = 128); the zero point enters as the starting value
// -zero * sum_k s'_k of the int32 accumulator. The fp16 scales of 16 blocks of a row are read by
// plain loads (a vpgatherdd of them, 18 or 34 bytes apart, made the kernel 1.4x slower than the
// float one on Zen 4) and turned into s' for 16 blocks at a time.
//
// Results differ from the float kernels by that rounding (tests/test_sparse_ops.py checks them
// against a numpy model of this procedure); they do not depend on the thread count, and a prompt's
// tokens get the bits they get one by one, as with every other kernel.
#include "sparse/sparse_down.h"
#include "sparse/down_rows_loop.h"

#include "cpu/blocks.h"
#include "powerinfer.h"

#include <immintrin.h>

#include <cstring>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace pi {

namespace {

// The int8 factors of one group of 4 rows for up to 16 consecutive blocks.
struct group_scales {
    alignas(64) int32_t q[16];     // s'_0..s'_3 as the 4 bytes of a dword (vpdpbusd's signed operand)
    alignas(64) int32_t corr[16];  // -zero * (s'_0 + s'_1 + s'_2 + s'_3)
    alignas(64) float   step[16];  // m / 127
};

// Byte permutes: dword j of the result holds byte j of each 16-byte (Q4_0) or 32-byte (Q8_0)
// lane of the source(s), row 0 first.
struct byte_tables {
    alignas(64) uint8_t t16[64];      // from [r0 | r1 | r2 | r3], 16 bytes each
    alignas(64) uint8_t t32_lo[64];   // from a = [r0 | r1], b = [r2 | r3], 32 bytes each: j = 0..15
    alignas(64) uint8_t t32_hi[64];   // the same for j = 16..31
    byte_tables() {
        for (int j = 0; j < 16; j++) {
            for (int k = 0; k < 4; k++) {
                t16[4 * j + k]    = (uint8_t)(16 * k + j);
                t32_lo[4 * j + k] = (uint8_t)(32 * k + j);  // k >= 2 sets bit 6: the second source
                t32_hi[4 * j + k] = (uint8_t)(32 * k + j + 16);
            }
        }
    }
};
const byte_tables kTables;

// s' (as dwords of 4 bytes), the zero-point correction and the step, for blocks b0 .. b0 + kb of
// rows r[0..4) scaled by a[0..4). BYTES is the block size in bytes; its first 2 bytes are the fp16 d.
template <int BYTES, int ZERO>
inline void group_scales_of(const char * const * r, const float * a, int64_t b0, int kb, group_scales & g) {
    __m512 s[4];
    __m512 m = _mm512_setzero_ps();
    for (int k = 0; k < 4; k++) {
        alignas(32) uint16_t dh[16] = {0};  // blocks past kb: scale 0
        const char * p = r[k] + b0 * BYTES;
        for (int b = 0; b < kb; b++) std::memcpy(&dh[b], p + b * BYTES, 2);
        const __m512 d = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i *>(dh)));
        s[k] = _mm512_mul_ps(d, _mm512_set1_ps(a[k]));
        m    = _mm512_max_ps(m, _mm512_abs_ps(s[k]));
    }
    const __mmask16 nz  = _mm512_cmp_ps_mask(m, _mm512_setzero_ps(), _CMP_GT_OQ);
    const __m512    inv = _mm512_maskz_div_ps(nz, _mm512_set1_ps(127.0f), m);  // 0 where all four are 0
    __m512i sum = _mm512_setzero_si512();
    __m512i bytes = _mm512_setzero_si512();
    for (int k = 0; k < 4; k++) {
        const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(s[k], inv));  // round to nearest even
        sum   = _mm512_add_epi32(sum, q);
        bytes = _mm512_inserti32x4(bytes, _mm512_cvtsepi32_epi8(q), k);  // |q| <= 127
    }
    _mm512_store_si512(g.q, _mm512_permutexvar_epi8(_mm512_load_si512(kTables.t16), bytes));
    _mm512_store_si512(g.corr, _mm512_mullo_epi32(sum, _mm512_set1_epi32(-ZERO)));
    _mm512_store_ps(g.step, _mm512_div_ps(m, _mm512_set1_ps(127.0f)));
}

// Requests the next 16 blocks of the 4 rows (into L2) while these are computed. The scale pass
// of a chunk reads the block scales of 16 blocks of 4 rows before any of their quants, so a row
// not yet in cache stalls it on misses one after another; measured from DRAM (4096 x 11008,
// 10% of rows, one thread) this request took the kernel from 1.2x the float kernel's time to par.
template <int BYTES>
inline void request_next_chunk(const char * const * r, int64_t b0, int64_t nb) {
    const int64_t c0 = b0 + 16;
    if (c0 >= nb) return;
    const int64_t c1 = c0 + 16 < nb ? c0 + 16 : nb;
    for (int k = 0; k < 4; k++) {
        for (int64_t off = c0 * BYTES; off < c1 * BYTES; off += 64) _mm_prefetch(r[k] + off, _MM_HINT_T1);
    }
}

// The 4 rows' packed bytes of block b as dwords (q_0j, q_1j, q_2j, q_3j) of unsigned weights:
// lo holds columns 0..15 and hi columns 16..31 (Q4_0: the stored nibbles; Q8_0: bytes xor 0x80).
struct q4_0_layout {
    static constexpr int BYTES = sizeof(block_q4_0);
    static constexpr int ZERO  = 8;
    static inline void unpack(const char * const * r, size_t o, __m512i * lo, __m512i * hi) {
        const __m512i perm  = _mm512_load_si512(kTables.t16);
        const __m512i mask4 = _mm512_set1_epi8(0x0f);
        __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i *>(r[0] + o)));
        v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i *>(r[1] + o)), 1);
        v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i *>(r[2] + o)), 2);
        v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i *>(r[3] + o)), 3);
        *lo = _mm512_permutexvar_epi8(perm, _mm512_and_si512(v, mask4));                        // columns 0..15
        *hi = _mm512_permutexvar_epi8(perm, _mm512_and_si512(_mm512_srli_epi16(v, 4), mask4));  // 16..31
    }
};

struct q8_0_layout {
    static constexpr int BYTES = sizeof(block_q8_0);
    static constexpr int ZERO  = 128;
    static inline void unpack(const char * const * r, size_t o, __m512i * lo, __m512i * hi) {
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        auto pair = [&](int k) {  // rows k and k + 1, 32 bytes each, as unsigned (q + 128)
            __m512i v = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(r[k] + o)));
            v = _mm512_inserti64x4(v, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(r[k + 1] + o)), 1);
            return _mm512_xor_si512(v, flip);
        };
        const __m512i v01 = pair(0), v23 = pair(2);
        *lo = _mm512_permutex2var_epi8(v01, _mm512_load_si512(kTables.t32_lo), v23);
        *hi = _mm512_permutex2var_epi8(v01, _mm512_load_si512(kTables.t32_hi), v23);
    }
};

// G groups of 4 rows (r[0..4G), scaled by a[0..4G)) added into y, a block of 32 columns at a time:
// y's two vectors of the block stay in registers while the G groups add into them, in group order
// (the same FMAs in the same order as G calls with one group, so the same bits), instead of a load
// and a store of y per group. Measured at 4096 x 11008, one thread, all rows, in cache: Q4_0 8.3 ->
// 14.3 GB/s, Q8_0 10.8 -> 20.2 with G = 4 (16 rows); G = 8 was no faster. Per chunk of 16 blocks
// the next chunk of the rows is requested and, with pf (the next 4G rows, or nullptr), the same
// chunk of those: from DRAM at 5% of the rows, Q4_0 6.5 -> 10.7 GB/s, Q8_0 9.1 -> 14.3.
template <class L, int G>
void rows_int8(const char * const * r, const float * a, float * y, int64_t n, const char * const * pf) {
    const int64_t n_blocks = n / 32;
    group_scales g[G];
    for (int64_t b0 = 0; b0 < n_blocks; b0 += 16) {
        const int kb = n_blocks - b0 < 16 ? (int)(n_blocks - b0) : 16;
        for (int q = 0; q < G; q++) {
            request_next_chunk<L::BYTES>(r + 4 * q, b0, n_blocks);
            if (pf) request_next_chunk<L::BYTES>(pf + 4 * q, b0 - 16, n_blocks);
            group_scales_of<L::BYTES, L::ZERO>(r + 4 * q, a + 4 * q, b0, kb, g[q]);
        }
        for (int b = 0; b < kb; b++) {
            const size_t o  = (size_t)(b0 + b) * L::BYTES + 2;  // the block's values, after the fp16 d
            float *      yb = y + 32 * (b0 + b);
            __m512       y0 = _mm512_loadu_ps(yb), y1 = _mm512_loadu_ps(yb + 16);
#pragma GCC unroll 4
            for (int q = 0; q < G; q++) {
                __m512i lo, hi;
                L::unpack(r + 4 * q, o, &lo, &hi);
                // y[32 b + j] += step * (C + sum_k s'_k * u_kj) for the two halves of the block.
                const __m512i S  = _mm512_set1_epi32(g[q].q[b]);
                const __m512i C  = _mm512_set1_epi32(g[q].corr[b]);
                const __m512  M  = _mm512_set1_ps(g[q].step[b]);
                y0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(C, lo, S)), M, y0);
                y1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(C, hi, S)), M, y1);
            }
            _mm512_storeu_ps(yb, y0);
            _mm512_storeu_ps(yb + 16, y1);
        }
    }
}

void rows4_q4_0(const char * const * r, const float * a, float * y, int64_t n) { rows_int8<q4_0_layout, 1>(r, a, y, n, nullptr); }
void rows4_q8_0(const char * const * r, const float * a, float * y, int64_t n) { rows_int8<q8_0_layout, 1>(r, a, y, n, nullptr); }
void rows16_q4_0(const char * const * r, const float * a, float * y, int64_t n, const char * const * pf) {
    rows_int8<q4_0_layout, 4>(r, a, y, n, pf);
}
void rows16_q8_0(const char * const * r, const float * a, float * y, int64_t n, const char * const * pf) {
    rows_int8<q8_0_layout, 4>(r, a, y, n, pf);
}

inline size_t win_q4_0(int64_t n) { return (size_t)(n / 32) * sizeof(block_q4_0); }
inline size_t win_q8_0(int64_t n) { return (size_t)(n / 32) * sizeof(block_q8_0); }

}  // namespace

void down_table_fill_avx512_int8(down_table & t) {
    // No one-row kernel: the last 1-3 rows go through the 4-row kernel with zero scales.
    t.rows[PI_TYPE_Q4_0]  = down_rows_loop<rows4_q4_0, nullptr, win_q4_0, rows16_q4_0>;
    t.rows[PI_TYPE_Q8_0]  = down_rows_loop<rows4_q8_0, nullptr, win_q8_0, rows16_q8_0>;
    t.names[PI_TYPE_Q4_0] = "avx512-vnni-int8";
    t.names[PI_TYPE_Q8_0] = "avx512-vnni-int8";
}

}  // namespace pi
