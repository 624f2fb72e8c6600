// reduce16_avx512.h - sixteen horizontal sums at once, bit for bit those of _mm512_reduce_add_ps.
// For the row kernels of the *_avx512.cpp files only (it needs their ISA flags): a row's dot
// product ends in one vector of partial sums, and reducing sixteen rows together shares the
// shuffles and takes the reduction's latency off each row's critical path.
#pragma once

#include <immintrin.h>

namespace pi {
namespace {

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

}  // namespace
}  // namespace pi
