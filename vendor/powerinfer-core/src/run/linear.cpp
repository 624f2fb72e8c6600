// linear.cpp - prepared activations and threaded matrix products (see linear.h).
#include "run/linear.h"

#include "cpu/kernels.h"
#include "run/norm.h"

namespace pi {

void act_set_init(act_set * s, uint8_t * mem, size_t max_row, int64_t n_batch, int64_t n_cols,
                  const llm_weight * const * ws, int n_ws) {
    s->n      = 0;
    s->n_cols = n_cols;
    for (int i = 0; i < n_ws; i++) {
        const int32_t type = ws[i]->type;
        bool have = false;
        for (int j = 0; j < s->n; j++) have = have || s->type[j] == type;
        if (have) continue;
        const int j  = s->n++;
        s->type[j]   = type;
        s->stride[j] = act_bytes(type, n_cols);
        s->buf[j]    = mem + static_cast<size_t>(j) * max_row * n_batch;
    }
}

const uint8_t * act_for(const act_set & s, const llm_weight & w, size_t * stride) {
    for (int j = 0; j < s.n; j++) {
        if (s.type[j] == w.type) {
            *stride = s.stride[j];
            return s.buf[j];
        }
    }
    *stride = 0;
    return nullptr;  // not reached: act_set_init saw every weight of the step
}

void act_prepare_row(act_set * s, int64_t t, const float * x) {
    for (int j = 0; j < s->n; j++) act_prepare(s->type[j], x, s->n_cols, s->buf[j] + t * s->stride[j]);
}

void product_rows(int32_t type, const void * W, size_t row_bytes, const void * xq, size_t xq_stride, int64_t n_b,
                  int64_t n_cols, float * Y, int64_t ldy, int64_t r0, int64_t r1) {
    if (r0 >= r1) return;
    if (n_b == 1) {
        matvec(type, W, row_bytes, xq, n_cols, Y + r0, r0, r1);
    } else {
        matmul(type, W, row_bytes, xq, xq_stride, n_b, n_cols, Y, ldy, r0, r1);
    }
}

namespace {

// Rows [r0, r1) of y = W · x for every token of the batch.
void weight_rows(const llm_weight & w, const uint8_t * act, size_t stride, int64_t n_tok, float * y, int64_t ldy,
                  int64_t r0, int64_t r1) {
    pi::product_rows(w.type, w.data, w.row_bytes, act, stride, n_tok, w.n_cols, y, ldy, r0, r1);
}

}  // namespace

void project(thread_pool & pool, int nth, const proj * ps, int n_ps, int64_t n_tok) {
    int64_t total = 0;
    for (int i = 0; i < n_ps; i++) total += ps[i].w->n_rows;
    pool.parallel_for_grain(nth, total, kRowGrain, [&](int, int64_t lo, int64_t hi) {
        int64_t base = 0;  // first row of ps[i] in the concatenated row space
        for (int i = 0; i < n_ps; i++) {
            const proj & p = ps[i];
            const int64_t r0 = (lo > base ? lo : base) - base;
            const int64_t r1 = (hi < base + p.w->n_rows ? hi : base + p.w->n_rows) - base;
            base += p.w->n_rows;
            if (r0 >= r1) continue;
            size_t stride = 0;
            const uint8_t * act = act_for(*p.acts, *p.w, &stride);
            weight_rows(*p.w, act, stride, n_tok, p.y, p.ldy, r0, r1);
            if (p.residual) {
                for (int64_t t = 0; t < n_tok; t++) {
                    float * dst = p.residual + t * p.ldy;
                    const float * src = p.y + t * p.ldy;
                    for (int64_t r = r0; r < r1; r++) dst[r] += src[r];
                }
            }
        }
    });
}

void project_swiglu(thread_pool & pool, int nth, const llm_weight & w_gate, const llm_weight & w_up,
                    const act_set & acts, float * g, float * u, int64_t n_tok) {
    const int64_t n_ff = w_gate.n_rows;
    size_t sg = 0, su = 0;
    const uint8_t * ag = act_for(acts, w_gate, &sg);
    const uint8_t * au = act_for(acts, w_up, &su);
    pool.parallel_for_grain(nth, n_ff, kRowGrain, [&](int, int64_t r0, int64_t r1) {
        weight_rows(w_gate, ag, sg, n_tok, g, n_ff, r0, r1);
        weight_rows(w_up, au, su, n_tok, u, n_ff, r0, r1);
        for (int64_t t = 0; t < n_tok; t++) silu_mul(g + t * n_ff, u + t * n_ff, r0, r1);
    });
}

}  // namespace pi
