// matmul.cpp - the row loops around the per-type dot kernels: matrix-vector for decoding, a row
// subset for the sparse FFN, and the batched product for prompts (cpu/kernels.h).
#include "cpu/dot.h"
#include "cpu/kernels.h"

#include <algorithm>

namespace pi {

namespace {

// Rows this short or shorter go through dot_table::short_rows when the ISA has one: their
// per-row call and horizontal sum would otherwise cost more than the row's products.
constexpr int64_t kShortRow = 256;

// The row kernel of wtype on the chosen ISA; nullptr for a type without one (callers check
// kernel_supports first, so this only keeps a bad id from indexing past the table).
vec_dot_fn dot_for(const dot_table & t, int32_t wtype) {
    return wtype >= 0 && wtype < DOT_N_TYPES ? t.dot[wtype] : nullptr;
}

}  // namespace

void matvec(int32_t wtype, const void * W, size_t w_row_bytes, const void * xq, int64_t n_cols,
            float * y, int64_t r0, int64_t r1) {
    const dot_table & t   = dot_table_current();
    const vec_dot_fn  dot = dot_for(t, wtype);
    const char *      w   = static_cast<const char *>(W);
    if (!dot) return;  // unsupported type: callers check kernel_supports first
    if (t.dot_rows[wtype] && r1 > r0) {
        t.dot_rows[wtype](n_cols, w + (size_t)r0 * w_row_bytes, w_row_bytes, xq, y, r1 - r0);
        return;
    }
    for (int64_t r = r0; r < r1; r++) y[r - r0] = dot(n_cols, w + (size_t)r * w_row_bytes, xq);
}

void matvec_rows(int32_t wtype, const void * W, size_t w_row_bytes, const void * xq, int64_t n_cols,
                 const int32_t * rows, int64_t n_rows, float * y) {
    const vec_dot_fn dot = dot_for(dot_table_current(), wtype);
    const char *     w   = static_cast<const char *>(W);
    if (!dot) return;
    for (int64_t k = 0; k < n_rows; k++) y[k] = dot(n_cols, w + (size_t)rows[k] * w_row_bytes, xq);
}

namespace {

// The products of weight rows row(k), k in [k0, k1), with n_b activations: Y[b * ldy + k] for
// matmul (row(k) = k) and matmul_rows (row(k) = rows[k]). Activations are taken in chunks small
// enough to stay in L2 (64 x a few KB) while every weight row is read once per chunk; within a
// chunk, a row sits in L1 while the batched kernel runs it against up to batch_max (4 or 8)
// activations at a time.
template <class RowOf>
void products(int32_t wtype, const void * W, size_t w_row_bytes, const void * xq, size_t xq_stride, int64_t n_b,
              int64_t n_cols, float * Y, int64_t ldy, int64_t k0, int64_t k1, RowOf row_of) {
    const dot_table &      t     = dot_table_current();
    const vec_dot_fn       dot   = dot_for(t, wtype);
    if (!dot) return;
    const vec_dot_batch_fn batch = t.dot_batch[wtype];
    const int              bmax  = batch ? std::max(1, t.batch_max[wtype]) : 1;
    const char *           w     = static_cast<const char *>(W);
    const char *           x     = static_cast<const char *>(xq);
    const int64_t          chunk = 64;
    for (int64_t b0 = 0; b0 < n_b; b0 += chunk) {
        const int64_t b1 = std::min(n_b, b0 + chunk);
        for (int64_t k = k0; k < k1; k++) {
            const char * wr = w + (size_t)row_of(k) * w_row_bytes;
            int64_t      b  = b0;
            if (batch) {
                for (; b < b1; b += bmax) {
                    const int nb = (int)std::min<int64_t>(bmax, b1 - b);
                    batch(n_cols, wr, x + (size_t)b * xq_stride, xq_stride, nb, Y + b * ldy + k, ldy);
                }
            }
            for (; b < b1; b++) Y[b * ldy + k] = dot(n_cols, wr, x + (size_t)b * xq_stride);
        }
    }
}

}  // namespace

void matmul(int32_t wtype, const void * W, size_t w_row_bytes, const void * xq, size_t xq_stride,
            int64_t n_b, int64_t n_cols, float * Y, int64_t ldy, int64_t r0, int64_t r1) {
    // Short rows (attention's keys), or few activations (attention's values: the group's heads of
    // one token): the kernel that reduces sixteen rows at once, same bits. It reads the rows once
    // per bmax activations, so long rows against many activations stay with products().
    const dot_table & t     = dot_table_current();
    const bool        known = wtype >= 0 && wtype < DOT_N_TYPES;
    const int         bmax  = known ? std::max(1, std::min(4, t.batch_max[wtype])) : 1;
    if (known && t.short_rows[wtype] && (n_cols <= kShortRow || n_b <= bmax) && r1 > r0) {
        const char * w   = static_cast<const char *>(W) + (size_t)r0 * w_row_bytes;
        const char * x   = static_cast<const char *>(xq);
        for (int64_t b = 0; b < n_b; b += bmax) {
            const int nb = (int)std::min<int64_t>(bmax, n_b - b);
            t.short_rows[wtype](n_cols, w, w_row_bytes, r1 - r0, x + (size_t)b * xq_stride, xq_stride, nb,
                                Y + b * ldy + r0, ldy);
        }
        return;
    }
    if (known && t.block_rows[wtype] && r1 > r0) {
        t.block_rows[wtype](n_cols, static_cast<const char *>(W) + (size_t)r0 * w_row_bytes, w_row_bytes, r1 - r0,
                            nullptr, xq, xq_stride, n_b, Y + r0, ldy);
        return;
    }
    products(wtype, W, w_row_bytes, xq, xq_stride, n_b, n_cols, Y, ldy, r0, r1, [](int64_t k) { return k; });
}

void matmul_rows(int32_t wtype, const void * W, size_t w_row_bytes, const void * xq, size_t xq_stride,
                 int64_t n_b, int64_t n_cols, const int32_t * rows, int64_t k0, int64_t k1, float * Y, int64_t ldy) {
    const dot_table & t = dot_table_current();
    if (wtype >= 0 && wtype < DOT_N_TYPES && t.block_rows[wtype] && k1 > k0) {
        t.block_rows[wtype](n_cols, W, w_row_bytes, k1 - k0, rows + k0, xq, xq_stride, n_b, Y + k0, ldy);
        return;
    }
    products(wtype, W, w_row_bytes, xq, xq_stride, n_b, n_cols, Y, ldy, k0, k1,
             [rows](int64_t k) { return (int64_t)rows[k]; });
}

}  // namespace pi
