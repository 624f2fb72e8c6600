// sparse_ffn.cpp - active-set gathers, the thread split of the sparse down projection (kernels in
// sparse_down*.cpp) and the hidden values of the active neurons (pi::matvec_rows on up and gate).
#include "sparse/sparse_ffn.h"

#include "core/types.h"
#include "cpu/dot.h"
#include "cpu/kernels.h"
#include "cpu/prefetch.h"
#include "sparse/sparse_down.h"

#include <cstring>
#include <utility>

namespace pi {

int64_t gather_ge(const float * scores, int64_t n, float threshold, int32_t * ids) {
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (scores[i] >= threshold) ids[m++] = (int32_t)i;
    }
    return m;
}

int64_t gather_gt(const float * values, int64_t n, float threshold, int32_t * ids) {
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (values[i] > threshold) ids[m++] = (int32_t)i;
    }
    return m;
}

bool sparse_down_supports(int32_t type) { return down_supports(type); }

int64_t sparse_down_col_unit(int32_t type, int64_t n_embd) {
    int64_t unit = type_get(type).block_size;
    while (unit < 64 && n_embd % (2 * unit) == 0) unit *= 2;
    return unit;
}

void sparse_down_cols(int32_t type, const void * down_t, size_t row_bytes, const int32_t * active, const float * h,
                      int64_t n_active, float * y, int64_t c0, int64_t c1) {
    if (c1 <= c0 || n_active <= 0) return;
    const size_t col_off = (size_t)type_row_bytes(type, c0);
    down_kernel(type)(down_t, row_bytes, col_off, active, h, n_active, y + c0, c1 - c0);
}

void sparse_down(thread_pool * pool, int nth, int32_t type, const void * down_t, int64_t n_embd,
                 const int32_t * active, const float * h, int64_t n_active, float * y) {
    const size_t  row_bytes = (size_t)type_row_bytes(type, n_embd);
    const int64_t unit      = sparse_down_col_unit(type, n_embd);
    const int64_t n_units   = (n_embd + unit - 1) / unit;
    auto job = [&](int, int64_t u0, int64_t u1) {
        const int64_t c0 = u0 * unit;
        const int64_t c1 = u1 * unit < n_embd ? u1 * unit : n_embd;
        std::memset(y + c0, 0, (size_t)(c1 - c0) * sizeof(float));
        sparse_down_cols(type, down_t, row_bytes, active, h, n_active, y, c0, c1);
    };
    if (pool && nth > 1) pool->parallel_for(nth, n_units, std::move(job));
    else job(0, 0, n_units);
}

namespace {

inline float relu(float v) { return v > 0.0f ? v : 0.0f; }

// The active rows are scattered over the matrix, and each would begin a new stream that the
// hardware prefetcher must first detect. So each row's dot product is preceded by a request for
// the whole row HIDDEN_PREFETCH_ROWS positions further down the list (into L2), one row at a time
// so that the requests spread over the computation instead of stalling in bursts on the few
// outstanding-miss slots. Up is done over the whole slice before gate: two streams of requests,
// not four interleaved. Measured at 4096 x 11008 Q4_0 / Q8_0, one thread, a new random set per
// run: 4 rows ahead is at or near the best of 2-16 at every density from 5% to 100%, and this
// order took the sparse time from 1.6-1.8x to 1.0-1.1x of the dense time at 100% (where the
// bursts of the former groups-of-two scheme fought the hardware prefetcher).
constexpr int64_t HIDDEN_PREFETCH_ROWS = 4;

// The list kernels (dot_rows_ids; cpu/prefetch.h) request the row this many places ahead step by
// step as they read the current one. Measured as above: 6 to 16 ahead all 12-13 GB/s at 5%
// and 16 at 20% (whole-row bursts, 4 ahead: 8 and 10); 1 ahead is too late (9 and 10).
constexpr int LIST_PREFETCH_ROWS = 8;

// y[k] = dot(row ids[k] of W, x) for k < n, with the rows requested ahead.
void rows_prefetched(int32_t type, const void * W, size_t row_bytes, const void * xq, int64_t n_cols,
                     const int32_t * ids, int64_t n, float * y) {
    // The row kernels, looked up once (matvec_rows would look them up per call: rows of narrow
    // models are short enough for that to show). A list kernel, where the ISA has one for the
    // type, does the same products with the same requests ahead.
    const dot_table &         t     = dot_table_current();
    const bool                known = type >= 0 && type < DOT_N_TYPES;
    const vec_dot_rows_ids_fn list  = known ? t.dot_rows_ids[type] : nullptr;
    if (list) {
        list(n_cols, W, row_bytes, xq, ids, n, y, LIST_PREFETCH_ROWS);
        return;
    }
    const vec_dot_fn dot = known ? t.dot[type] : nullptr;
    const char *     w   = static_cast<const char *>(W);
    for (int64_t k = 0; k < HIDDEN_PREFETCH_ROWS && k < n; k++) request_row(w + (size_t)ids[k] * row_bytes, row_bytes);
    for (int64_t k = 0; k < n; k++) {
        if (k + HIDDEN_PREFETCH_ROWS < n) request_row(w + (size_t)ids[k + HIDDEN_PREFETCH_ROWS] * row_bytes, row_bytes);
        if (dot) y[k] = dot(n_cols, w + (size_t)ids[k] * row_bytes, xq);
        else matvec_rows(type, W, row_bytes, xq, n_cols, ids + k, 1, y + k);
    }
}

}  // namespace

void sparse_ffn_hidden(thread_pool * pool, int nth, const sparse_ffn_weights & w, const void * xq_up,
                       const void * xq_gate, const int32_t * active, int64_t n_active, float * h, float * g_scratch) {
    const size_t up_rb   = (size_t)type_row_bytes(w.up_type, w.n_embd);
    const size_t gate_rb = w.gate ? (size_t)type_row_bytes(w.gate_type, w.n_embd) : 0;
    const bool   gated   = w.act != FFN_RELU_UP;
    auto job = [&](int, int64_t k0, int64_t k1) {
        rows_prefetched(w.up_type, w.up, up_rb, xq_up, w.n_embd, active + k0, k1 - k0, h + k0);
        if (gated) rows_prefetched(w.gate_type, w.gate, gate_rb, xq_gate, w.n_embd, active + k0, k1 - k0, g_scratch + k0);
        for (int64_t k = k0; k < k1; k++) {
            if (!gated) {
                const float b = w.up_bias ? w.up_bias[active[k]] : 0.0f;
                h[k] = relu(h[k] + b);
            } else {
                const float u = w.act == FFN_RELU_BOTH ? relu(h[k]) : h[k];
                h[k] = relu(g_scratch[k]) * u;
            }
        }
    };
    if (n_active <= 0) return;
    if (pool && nth > 1) pool->parallel_for(nth, n_active, std::move(job));
    else job(0, 0, n_active);
}

}  // namespace pi
