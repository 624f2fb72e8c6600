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

// y[32 b + j] += step * (C + sum_k s'_k * u_kj) for the two halves of one block: lo holds columns
// 0..15 and hi columns 16..31 as dwords of 4 unsigned bytes.
inline void block_add(float * yb, __m512i lo, __m512i hi, const group_scales & g, int b) {
    const __m512i S = _mm512_set1_epi32(g.q[b]);
    const __m512i C = _mm512_set1_epi32(g.corr[b]);
    const __m512  M = _mm512_set1_ps(g.step[b]);
    const __m512i a0 = _mm512_dpbusd_epi32(C, lo, S);
    const __m512i a1 = _mm512_dpbusd_epi32(C, hi, S);
    _mm512_storeu_ps(yb, _mm512_fmadd_ps(_mm512_cvtepi32_ps(a0), M, _mm512_loadu_ps(yb)));
    _mm512_storeu_ps(yb + 16, _mm512_fmadd_ps(_mm512_cvtepi32_ps(a1), M, _mm512_loadu_ps(yb + 16)));
}

void rows4_q4_0(const char * const * r, const float * a, float * y, int64_t n) {
    constexpr int BYTES = sizeof(block_q4_0);
    const int64_t nb = n / 32;
    const __m512i perm  = _mm512_load_si512(kTables.t16);
    const __m512i mask4 = _mm512_set1_epi8(0x0f);
    group_scales  g;
    for (int64_t b0 = 0; b0 < nb; b0 += 16) {
        const int kb = nb - b0 < 16 ? (int)(nb - b0) : 16;
        request_next_chunk<BYTES>(r, b0, nb);
        group_scales_of<BYTES, 8>(r, a, b0, kb, g);
        for (int b = 0; b < kb; b++) {
            const size_t o = (size_t)(b0 + b) * BYTES + 2;  // the 16 packed bytes of the block
            __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i *>(r[0] + o)));
            v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i *>(r[1] + o)), 1);
            v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i *>(r[2] + o)), 2);
            v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i *>(r[3] + o)), 3);
            const __m512i lo = _mm512_and_si512(v, mask4);                        // columns 0..15
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), mask4);  // columns 16..31
            block_add(y + 32 * (b0 + b), _mm512_permutexvar_epi8(perm, lo), _mm512_permutexvar_epi8(perm, hi), g, b);
        }
    }
}

void rows4_q8_0(const char * const * r, const float * a, float * y, int64_t n) {
    constexpr int BYTES = sizeof(block_q8_0);
    const int64_t nb = n / 32;
    const __m512i perm_lo = _mm512_load_si512(kTables.t32_lo);
    const __m512i perm_hi = _mm512_load_si512(kTables.t32_hi);
    const __m512i flip    = _mm512_set1_epi8((char)0x80);
    group_scales  g;
    for (int64_t b0 = 0; b0 < nb; b0 += 16) {
        const int kb = nb - b0 < 16 ? (int)(nb - b0) : 16;
        request_next_chunk<BYTES>(r, b0, nb);
        group_scales_of<BYTES, 128>(r, a, b0, kb, g);
        for (int b = 0; b < kb; b++) {
            const size_t o = (size_t)(b0 + b) * BYTES + 2;  // the 32 int8 of the block
            auto pair = [&](int k) {  // rows k and k + 1, 32 bytes each, as unsigned (q + 128)
                __m512i v = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(r[k] + o)));
                v = _mm512_inserti64x4(v, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(r[k + 1] + o)), 1);
                return _mm512_xor_si512(v, flip);
            };
            const __m512i v01 = pair(0), v23 = pair(2);
            block_add(y + 32 * (b0 + b), _mm512_permutex2var_epi8(v01, perm_lo, v23),
                      _mm512_permutex2var_epi8(v01, perm_hi, v23), g, b);
        }
    }
}

inline size_t win_q4_0(int64_t n) { return (size_t)(n / 32) * sizeof(block_q4_0); }
inline size_t win_q8_0(int64_t n) { return (size_t)(n / 32) * sizeof(block_q8_0); }

}  // namespace

void down_table_fill_avx512_int8(down_table & t) {
    // No one-row kernel: the last 1-3 rows go through the 4-row kernel with zero scales.
    t.rows[PI_TYPE_Q4_0]  = down_rows_loop<rows4_q4_0, nullptr, win_q4_0>;
    t.rows[PI_TYPE_Q8_0]  = down_rows_loop<rows4_q8_0, nullptr, win_q8_0>;
    t.names[PI_TYPE_Q4_0] = "avx512-vnni-int8";
    t.names[PI_TYPE_Q8_0] = "avx512-vnni-int8";
}

}  // namespace pi
