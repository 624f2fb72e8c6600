// prefetch.h - requests for cache lines (into L2) that the compiler keeps, and the two row loops
// built on them that every ISA's row kernels share.
//
// GCC 12 deletes every call to a helper that holds only __builtin_prefetch (ipa-pure-const finds it
// has no effect), prefetches and all; an asm volatile cannot be dropped.
//
// Why the kernels request rows at their own pace: rows taken from a list (the sparse FFN's active
// neurons) are scattered, invisible to the hardware prefetcher, so the row `ahead` places further
// down the list is requested while one is computed, step by step as the kernel reads the current
// row (its _pf variant), the first `ahead` rows whole, up front. Requesting each row whole at once
// instead (36 lines of a 4096-wide Q4_0 row in a burst) ran at 8 GB/s from DRAM on one Zen 4 core,
// against 13 paced (5% of 11008 rows; 10 -> 16 at 20%): the bursts fill the outstanding-miss slots
// that the row being computed needs. Rows read in order gain too: one thread, 11008 rows of 4096
// Q4_0 from DRAM, 16.1 GB/s left to the hardware prefetcher, 22.6 with row r + kDenseAhead
// requested while row r is read (8 to 32 ahead alike); two threads on SmolLM2 (rows of 360 bytes),
// which together already reach the memory bus's rate, decode at par (0.98-1.03x).
//
// The helpers are static: each file compiled for its own ISA keeps its own copy.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pi {

static inline void request_line(const void * p) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("prefetcht1 %0" : : "m"(*static_cast<const char *>(p)));
#elif defined(__aarch64__)
    __asm__ volatile("prfm pldl2keep, %0" : : "Q"(*static_cast<const char *>(p)));
#else
    __builtin_prefetch(p, 0, 2);
#endif
}

// Every line of the `bytes` at p.
static inline void request_row(const void * p, size_t bytes) {
    const char * c = static_cast<const char *>(p);
    for (size_t off = 0; off < bytes; off += 64) request_line(c + off);
}

// Rows read in order: while row r is read, row dense_ahead(r, n_rows) is requested.
constexpr int64_t kDenseAhead = 16;
static inline int64_t dense_ahead(int64_t r, int64_t n_rows) {
    return r + kDenseAhead < n_rows ? r + kDenseAhead : r;  // past the end: the row itself, already there
}

// The loop of the list kernels (dot_rows_ids) over rows ids[k] of W, row_bytes apart: the first
// `ahead` rows requested whole, then paced(k, row, row_ahead) for the rows that have one `ahead`
// places further down the list, plain(k, row) for the last `ahead`.
template <class Paced, class Plain>
inline void list_rows(const void * W, size_t row_bytes, const int32_t * ids, int64_t n_ids, int ahead, Paced && paced,
                      Plain && plain) {
    const char * w   = static_cast<const char *>(W);
    auto         row = [&](int64_t k) { return w + (size_t)ids[k] * row_bytes; };
    for (int64_t k = 0; k < ahead && k < n_ids; k++) request_row(row(k), row_bytes);
    int64_t k = 0;
    for (; k + ahead < n_ids; k++) paced(k, row(k), row(k + ahead));
    for (; k < n_ids; k++) plain(k, row(k));
}

}  // namespace pi
