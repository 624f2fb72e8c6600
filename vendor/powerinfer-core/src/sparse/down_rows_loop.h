// down_rows_loop.h - the row loop shared by the SIMD scaled-row-accumulate kernels
// (sparse_down_avx2.cpp, sparse_down_avx512.cpp, sparse_down_int8_avx512.cpp): it drops the rows
// with h == 0, hands the rest to a kernel sixteen at a time where it has a 16-row kernel (the int8
// ones, which request the next sixteen rows chunk by chunk as they read these), then four at a
// time, requesting the windows of the next group while one is computed (into L2, so as not to
// crowd y out of L1).
//
// On the prefetch, measured at 4096 x 11008 Q4_0, one thread, new random active sets per run (Zen 4
// in a VM): for the 4-row kernels, 0 to 64 rows ahead in bursts or spread gave the same time within
// noise, because those kernels were bound by their own work (a load and a store of y per group of
// 4 rows); once the 16-row kernel holds y in registers, requesting the next rows at the pace of
// the current ones took it from 9.0 to 10.0 GB/s at 5% of the rows and from 10.4 to 12.4 at 20%.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pi {

// A kernel adds rows r[0..G) scaled by a[0..G) into y[0..n) (G = 4 or 1).
typedef void (*down_rows_kernel)(const char * const * r, const float * a, float * y, int64_t n);
// The same for 16 rows, also requesting the rows pf[0..16) (the next 16, or nullptr) as it goes.
typedef void (*down_rows16_kernel)(const char * const * r, const float * a, float * y, int64_t n,
                                   const char * const * pf);

// KERNEL4 adds 4 rows, KERNEL1 one; WIN(n) is the byte size of a window of n values. With
// KERNEL1 = nullptr the last 1-3 rows go through KERNEL4 padded with copies of the last row at
// scale 0 (the int8 kernels, whose rounding is defined per group of 4 rows).
template <down_rows_kernel KERNEL4, down_rows_kernel KERNEL1, size_t (*WIN)(int64_t),
          down_rows16_kernel KERNEL16 = nullptr>
void down_rows_loop(const void * W, size_t row_bytes, size_t col_off, const int32_t * ids, const float * h,
                    int64_t n_ids, float * y, int64_t n) {
    // The rows with h != 0, in list order (so every ISA adds the terms of y[c] in the same order).
    thread_local std::vector<const char *> rows;
    thread_local std::vector<float>        scale;
    if ((int64_t)rows.size() < n_ids) {
        rows.resize((size_t)n_ids);
        scale.resize((size_t)n_ids);
    }
    const char * base = static_cast<const char *>(W) + col_off;
    int64_t      m    = 0;
    for (int64_t k = 0; k < n_ids; k++) {
        if (h[k] == 0.0f) continue;
        rows[(size_t)m]  = base + (size_t)ids[k] * row_bytes;
        scale[(size_t)m] = h[k];
        m++;
    }
    const size_t win     = WIN(n);
    auto         request = [&](int64_t j0) {
        for (int64_t j = j0; j < j0 + 4 && j < m; j++) {
            for (size_t off = 0; off < win; off += 64) _mm_prefetch(rows[(size_t)j] + off, _MM_HINT_T1);
        }
    };
    int64_t j = 0;
    if constexpr (KERNEL16 != nullptr) {
        for (int64_t q = 0; q < 16 && q < m; q += 4) request(q);
        for (; j + 16 <= m; j += 16) {
            KERNEL16(rows.data() + j, scale.data() + j, y, n, j + 32 <= m ? rows.data() + j + 16 : nullptr);
        }
    }
    request(j);
    for (; j + 4 <= m; j += 4) {
        request(j + 4);
        KERNEL4(rows.data() + j, scale.data() + j, y, n);
    }
    if (j == m) return;
    if constexpr (KERNEL1 != nullptr) {
        for (; j < m; j++) KERNEL1(rows.data() + j, scale.data() + j, y, n);
    } else {
        const char * r[4];
        float        a[4];
        for (int t = 0; t < 4; t++) {
            const bool real = j + t < m;
            r[t] = rows[(size_t)(real ? j + t : m - 1)];
            a[t] = real ? scale[(size_t)(j + t)] : 0.0f;
        }
        KERNEL4(r, a, y, n);
    }
}

}  // namespace pi
