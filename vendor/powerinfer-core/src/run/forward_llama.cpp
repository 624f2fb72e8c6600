// forward_llama.cpp - the llama-family forward pass, top to bottom.
//
// One call evaluates a batch of n_tok tokens (a prompt chunk, or one token while generating).
// Row t of every scratch buffer belongs to token t. Per layer:
//
//   xn = rmsnorm(x) * attn_norm                       (prepared for the Wq/Wk/Wv dot format)
//   q, k, v = Wq xn, Wk xn, Wv xn                     (one threaded job over all their rows)
//   q, k = rope(q), rope(k); cache[pos] = k, v
//   att = softmax(q K^T / sqrt(d)) V                  (causal, per head, over the cache)
//   x += Wo att
//   xn = rmsnorm(x) * ffn_norm
//   h = silu(Wgate xn) * (Wup xn)                     (one job: each thread owns rows of both)
//   x += Wdown h
//   (ReLU models and PowerInfer's sparse layout: run/ffn_sparse.cpp instead of the last three)
//
// then logits = Wout (rmsnorm(x) * output_norm) for the rows the caller asked for only.
//
// Falcon takes the same steps with four changes, each marked "falcon" below: LayerNorm with bias
// instead of RMSNorm, NeoX RoPE, and attention and FFN side by side: both read the layer input x
// (the FFN through its own LayerNorm, attn_norm_2, when the model has one) and both outputs are
// added to x at the end of the layer.
#include "core/status.h"
#include "cpu/kernels.h"
#include "run/attention.h"
#include "run/context.h"
#include "run/ffn_sparse.h"
#include "run/linear.h"
#include "run/norm.h"
#include "run/rope.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace pi {
namespace {

// Parallel over the tokens of the batch: fn(t) for t in [0, n_tok).
template <class F>
void for_each_token(thread_pool & pool, int nth, int64_t n_tok, F && fn) {
    pool.parallel_for(nth, n_tok, [&](int, int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; t++) fn(t);
    });
}

}  // namespace

void forward_llama(pi_context * ctx, const pi_token * tokens, int32_t n_tok, int32_t pos0,
                   const int32_t * out_rows, int32_t n_out) {
    const llm_model &   m   = *ctx->llm;
    const llm_hparams & hp  = m.hp;
    forward_buffers &   b   = ctx->buf;
    thread_pool &       pool = *ctx->pool;
    kv_cache &          kv  = ctx->kv;
    const int nth = n_tok == 1 ? ctx->n_threads : ctx->n_threads_batch;

    const int64_t E    = hp.n_embd;
    const int64_t NQ   = hp.n_embd_q();
    const int64_t NKV  = hp.n_embd_kv();
    const int64_t FF   = hp.n_ff;
    const int64_t half = hp.n_rot / 2;
    const int64_t NB   = ctx->n_batch;

    float * x   = b.x.data();
    float * xn  = b.xn.data();
    float * q   = b.q.data();
    float * k   = b.k.data();
    float * v   = b.v.data();
    float * att = b.att.data();
    float * tmp = b.tmp.data();
    float * g   = b.gate.data();
    float * u   = b.up.data();
    const bool falcon = m.arch_kind == LLM_ARCH_FALCON;
    float * xf       = b.xf.data();        // falcon: the FFN's input
    float * attn_out = b.attn_out.data();  // falcon: Wo's output, added after the FFN
    act_set acts;
    sparse_stats & st = ctx->stats;
    stage_clock clock;  // stage times (pi_context_stage_times)

    // Token embeddings: row `token` of token_embd.
    for_each_token(pool, nth, n_tok, [&](int64_t t) {
        dequantize(m.tok_embd.type, m.tok_embd.data + static_cast<size_t>(tokens[t]) * m.tok_embd.row_bytes,
                   x + t * E, E);
    });

    // RoPE angles of this batch's positions, shared by every layer and head.
    std::vector<int32_t> pos(n_tok);
    for (int32_t t = 0; t < n_tok; t++) pos[t] = pos0 + t;
    rope_table(m, pos.data(), n_tok, b.rope_cos.data(), b.rope_sin.data());

    st.t_other_ms += clock.lap();

    for (int il = 0; il < hp.n_layer; il++) {
        const llm_layer & L = m.layers[il];

        // --- attention -----------------------------------------------------------------------
        const llm_weight * qkv_w[3] = {&L.wq, &L.wk, &L.wv};
        act_set_init(&acts, b.act_mem.data(), b.act_row_max, NB, E, qkv_w, 3);
        for_each_token(pool, nth, n_tok, [&](int64_t t) {
            if (falcon) {
                layernorm(xn + t * E, x + t * E, L.attn_norm, L.attn_norm_b, E, hp.rms_eps);
                // the FFN's input, from the same layer input
                if (L.attn_norm_2) layernorm(xf + t * E, x + t * E, L.attn_norm_2, L.attn_norm_2_b, E, hp.rms_eps);
                else std::memcpy(xf + t * E, xn + t * E, sizeof(float) * E);
            } else {
                rmsnorm(xn + t * E, x + t * E, L.attn_norm, E, hp.rms_eps);
            }
            act_prepare_row(&acts, t, xn + t * E);
        });

        proj qkv[3];
        qkv[0].w = &L.wq; qkv[0].acts = &acts; qkv[0].y = q; qkv[0].ldy = NQ;
        qkv[1].w = &L.wk; qkv[1].acts = &acts; qkv[1].y = k; qkv[1].ldy = NKV;
        qkv[2].w = &L.wv; qkv[2].acts = &acts; qkv[2].y = v; qkv[2].ldy = NKV;
        project(pool, nth, qkv, 3, n_tok);

        for_each_token(pool, nth, n_tok, [&](int64_t t) {
            const float * c = b.rope_cos.data() + t * half;
            const float * s = b.rope_sin.data() + t * half;
            if (hp.rope_neox) {  // falcon
                rope_apply_neox(q + t * NQ, hp.n_head, hp.head_dim, hp.n_rot, c, s);
                rope_apply_neox(k + t * NKV, hp.n_head_kv, hp.head_dim, hp.n_rot, c, s);
            } else {
                rope_apply(q + t * NQ, hp.n_head, hp.head_dim, hp.n_rot, c, s);
                rope_apply(k + t * NKV, hp.n_head_kv, hp.head_dim, hp.n_rot, c, s);
            }
            kv.store(il, pos0 + static_cast<int32_t>(t), k + t * NKV, v + t * NKV);
        });

        attention(pool, nth, kv, il, hp.n_head, q, n_tok, pos0, att, reinterpret_cast<uint8_t *>(b.attn_scratch.data()));

        const llm_weight * wo_w[1] = {&L.wo};
        act_set_init(&acts, b.act_mem.data(), b.act_row_max, NB, NQ, wo_w, 1);
        for_each_token(pool, nth, n_tok, [&](int64_t t) { act_prepare_row(&acts, t, att + t * NQ); });
        proj wo;
        wo.w = &L.wo; wo.acts = &acts; wo.y = tmp; wo.ldy = E; wo.residual = x;
        if (falcon) {  // kept apart: the FFN still reads the layer input
            wo.y = attn_out;
            wo.residual = nullptr;
        }
        project(pool, nth, &wo, 1, n_tok);
        st.t_attention_ms += clock.lap();

        // --- feed-forward (SwiGLU; ReLU models and sparse layouts in ffn_sparse.cpp) ------------
        if (m.ffn_is_sparse(L)) {
            const double t_pred = ffn_sparse(ctx, L, il, n_tok, nth);
            if (falcon) {
                for_each_token(pool, nth, n_tok, [&](int64_t t) {
                    for (int64_t c = 0; c < E; c++) x[t * E + c] += attn_out[t * E + c];
                });
            }
            st.t_predictor_ms += t_pred;
            st.t_ffn_ms += clock.lap() - t_pred;
            continue;
        }
        const llm_weight * gu_w[2] = {&L.w_gate, &L.w_up};
        act_set_init(&acts, b.act_mem.data(), b.act_row_max, NB, E, gu_w, 2);
        for_each_token(pool, nth, n_tok, [&](int64_t t) {
            rmsnorm(xn + t * E, x + t * E, L.ffn_norm, E, hp.rms_eps);
            act_prepare_row(&acts, t, xn + t * E);
        });
        project_swiglu(pool, nth, L.w_gate, L.w_up, acts, g, u, n_tok);

        const llm_weight * down_w[1] = {&L.w_down};
        act_set_init(&acts, b.act_mem.data(), b.act_row_max, NB, FF, down_w, 1);
        for_each_token(pool, nth, n_tok, [&](int64_t t) { act_prepare_row(&acts, t, g + t * FF); });
        proj down;
        down.w = &L.w_down; down.acts = &acts; down.y = tmp; down.ldy = E; down.residual = x;
        project(pool, nth, &down, 1, n_tok);
        st.t_ffn_ms += clock.lap();
    }

    // --- output head, only for the rows asked for ---------------------------------------------
    if (n_out == 0) return;
    const llm_weight * out_w[1] = {&m.output};
    act_set_init(&acts, b.act_mem.data(), b.act_row_max, NB, E, out_w, 1);
    for_each_token(pool, nth, n_out, [&](int64_t j) {
        const float * xj = x + static_cast<int64_t>(out_rows[j]) * E;
        if (falcon) layernorm(xn + j * E, xj, m.output_norm, m.output_norm_b, E, hp.rms_eps);
        else        rmsnorm(xn + j * E, xj, m.output_norm, E, hp.rms_eps);
        act_prepare_row(&acts, j, xn + j * E);
    });
    if (ctx->params.embeddings) std::memcpy(ctx->embd.data(), xn, sizeof(float) * E * n_out);
    proj head;
    head.w = &m.output; head.acts = &acts; head.y = ctx->logits.data(); head.ldy = hp.n_vocab;
    project(pool, nth, &head, 1, n_out);
    st.t_other_ms += clock.lap();
}

}  // namespace pi
