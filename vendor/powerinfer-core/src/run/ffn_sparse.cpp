// ffn_sparse.cpp - the FFN step of ReLU / sparse-layout llama-family models (see ffn_sparse.h).
#include "run/ffn_sparse.h"

#include "cpu/kernels.h"
#include "run/linear.h"
#include "run/norm.h"
#include "sparse/sparse_ffn.h"

#include <cstring>

namespace pi {
namespace {

inline float relu(float v) { return v > 0.0f ? v : 0.0f; }

// The hidden value of one neuron under the model's (ReLU) activation.
inline float hidden_act(llm_ffn_act act, float g, float u) {
    return relu(g) * (act == LLM_FFN_RELU_BOTH ? relu(u) : u);
}

// y[r] = row r of w · xq for every row, the rows split among nth threads.
void matvec_all(thread_pool & pool, int nth, const llm_weight & w, const void * xq, float * y) {
    pool.parallel_for(nth, w.n_rows, [&](int, int64_t r0, int64_t r1) {
        matvec(w.type, w.data, w.row_bytes, xq, w.n_cols, y + r0, r0, r1);
    });
}

// Per-token scratch carved from forward_buffers::sp_act (64-byte aligned slots).
struct token_acts {
    uint8_t * up, * gate, * pred, * down;
};

token_acts carve(forward_buffers & b) {
    uintptr_t p = reinterpret_cast<uintptr_t>(b.sp_act.data());
    p = (p + 63) & ~static_cast<uintptr_t>(63);
    uint8_t * base = reinterpret_cast<uint8_t *>(p);
    return {base, base + b.sp_act_row, base + 2 * b.sp_act_row, base + 3 * b.sp_act_row};
}

// y (n_embd floats) = the down projection of the compact list (ids[k], h[k]), k < n.
void down_compact(pi_context * ctx, int nth, const llm_layer & L, const token_acts & a, const int32_t * ids,
                  const float * h, int64_t n, float * y) {
    const llm_hparams & hp = ctx->llm->hp;
    forward_buffers &   b  = ctx->buf;
    if (L.w_down_t.data) {
        sparse_down(ctx->pool.get(), nth, L.w_down_t.type, L.w_down_t.data, hp.n_embd, ids, h, n, y);
        return;
    }
    // Dense-layout ffn_down ([n_ff] -> [n_embd], rows of n_ff): scatter h back to neuron order.
    float * hf = b.sp_hfull.data();
    std::memset(hf, 0, sizeof(float) * hp.n_ff);
    for (int64_t k = 0; k < n; k++) hf[ids[k]] = h[k];
    act_prepare(L.w_down.type, hf, hp.n_ff, a.down);
    matvec_all(*ctx->pool, nth, L.w_down, a.down, y);
}

// Predictor or oracle FFN of token t: x[t] += y.
void ffn_token_sparse(pi_context * ctx, const llm_layer & L, int64_t t, int nth) {
    const llm_model &   m  = *ctx->llm;
    const llm_hparams & hp = m.hp;
    forward_buffers &   b  = ctx->buf;
    thread_pool &       pool = *ctx->pool;
    const int64_t E = hp.n_embd, FF = hp.n_ff;
    float * x  = b.x.data() + t * E;
    float * xn = b.xn.data() + t * E;
    const token_acts a = carve(b);

    rmsnorm(xn, x, L.ffn_norm, E, hp.rms_eps);
    act_prepare(L.w_up.type, xn, E, a.up);
    act_prepare(L.w_gate.type, xn, E, a.gate);

    int32_t *       ids = b.sp_ids.data();
    const int32_t * act_ids = ids;
    int64_t         n = 0;
    float *         s = b.sp_scores.data();
    if (m.sparse_mode == PI_SPARSE_PREDICTOR && L.fc1.data) {
        // scores = fc2 · ReLU(fc1 · x), x the residual before the FFN norm.
        float * ph = b.sp_pred.data();
        act_prepare(L.fc1.type, x, E, a.pred);
        matvec_all(pool, nth, L.fc1, a.pred, ph);
        for (int64_t j = 0; j < L.fc1.n_rows; j++) ph[j] = relu(ph[j]);
        act_prepare(L.fc2.type, ph, L.fc2.n_cols, a.pred);
        matvec_all(pool, nth, L.fc2, a.pred, s);
        n = gather_ge(s, FF, m.sparse_threshold, ids);
    } else if (m.sparse_mode == PI_SPARSE_ORACLE) {
        matvec_all(pool, nth, L.w_gate, a.gate, s);
        n = gather_gt(s, FF, 0.0f, ids);
    } else {  // predictor mode on a layer without predictors: every neuron
        act_ids = b.sp_all.data();
        n       = FF;
    }

    sparse_ffn_weights w;
    w.act       = m.ffn_act == LLM_FFN_RELU_BOTH ? FFN_RELU_BOTH : FFN_RELU_GATE_UP;
    w.n_embd    = E;
    w.up_type   = L.w_up.type;
    w.up        = L.w_up.data;
    w.gate_type = L.w_gate.type;
    w.gate      = L.w_gate.data;
    sparse_ffn_hidden(&pool, nth, w, a.up, a.gate, act_ids, n, b.sp_h.data(), b.sp_g.data());

    float * y = b.tmp.data() + t * E;
    down_compact(ctx, nth, L, a, act_ids, b.sp_h.data(), n, y);
    for (int64_t c = 0; c < E; c++) x[c] += y[c];
}

// Dense mode for a batch: h = act(gate, up) over every neuron, then the down projection.
void ffn_dense_relu(pi_context * ctx, const llm_layer & L, int32_t n_tok, int nth) {
    const llm_model &   m  = *ctx->llm;
    const llm_hparams & hp = m.hp;
    forward_buffers &   b  = ctx->buf;
    thread_pool &       pool = *ctx->pool;
    const int64_t E = hp.n_embd, FF = hp.n_ff, NB = ctx->n_batch;
    float * x = b.x.data();
    float * xn = b.xn.data();
    float * g = b.gate.data();
    float * u = b.up.data();
    auto each_token = [&](auto && fn) {
        pool.parallel_for(nth, n_tok, [&](int, int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; t++) fn(t);
        });
    };

    act_set acts;
    const llm_weight * gu_w[2] = {&L.w_gate, &L.w_up};
    act_set_init(&acts, b.act_mem.data(), b.act_row_max, NB, E, gu_w, 2);
    each_token([&](int64_t t) {
        rmsnorm(xn + t * E, x + t * E, L.ffn_norm, E, hp.rms_eps);
        act_prepare_row(&acts, t, xn + t * E);
    });
    proj gu[2];
    gu[0].w = &L.w_gate; gu[0].acts = &acts; gu[0].y = g; gu[0].ldy = FF;
    gu[1].w = &L.w_up;   gu[1].acts = &acts; gu[1].y = u; gu[1].ldy = FF;
    project(pool, nth, gu, 2, n_tok);
    each_token([&](int64_t t) {
        for (int64_t i = 0; i < FF; i++) g[t * FF + i] = hidden_act(m.ffn_act, g[t * FF + i], u[t * FF + i]);
    });

    if (L.w_down.data) {
        const llm_weight * down_w[1] = {&L.w_down};
        act_set_init(&acts, b.act_mem.data(), b.act_row_max, NB, FF, down_w, 1);
        each_token([&](int64_t t) { act_prepare_row(&acts, t, g + t * FF); });
        proj down;
        down.w = &L.w_down; down.acts = &acts; down.y = b.tmp.data(); down.ldy = E; down.residual = x;
        project(pool, nth, &down, 1, n_tok);
        return;
    }
    // ffn_down_t: the sparse down kernel over all n_ff rows (rows with h = 0 are skipped).
    for (int64_t t = 0; t < n_tok; t++) {
        float * y = b.tmp.data() + t * E;
        sparse_down(&pool, nth, L.w_down_t.type, L.w_down_t.data, E, b.sp_all.data(), g + t * FF, FF, y);
        for (int64_t c = 0; c < E; c++) x[t * E + c] += y[c];
    }
}

}  // namespace

void ffn_sparse(pi_context * ctx, const llm_layer & L, int32_t n_tok, int nth) {
    if (ctx->llm->sparse_mode == PI_SPARSE_DENSE) {
        ffn_dense_relu(ctx, L, n_tok, nth);
        return;
    }
    for (int64_t t = 0; t < n_tok; t++) ffn_token_sparse(ctx, L, t, nth);
}

}  // namespace pi
