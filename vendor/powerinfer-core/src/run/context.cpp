// context.cpp - sizing and allocating a context's KV cache, scratch and thread pool.
#include "run/context.h"

#include "core/status.h"
#include "cpu/kernels.h"
#include "run/attention.h"

#include <algorithm>
#include <cstdlib>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

namespace pi {

fbuf::~fbuf() { std::free(p); }

bool fbuf::alloc(size_t count) {
    std::free(p);
    n = count;
    p = static_cast<float *>(std::calloc(count ? count : 1, sizeof(float)));
    return p != nullptr;
}

// Cores this process may run on (its affinity mask), for "0 = all cores".
int available_cores() {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    const unsigned n = std::thread::hardware_concurrency();
    return n > 0 ? static_cast<int>(n) : 1;
}

pi_status context_alloc(pi_context * ctx) {
    const llm_model &   m  = *ctx->llm;
    const llm_hparams & hp = m.hp;
    const size_t NB = ctx->n_batch;

    if (!ctx->kv.init(ctx->params.kv_type, hp.n_layer, hp.n_head_kv, hp.head_dim, static_cast<int32_t>(ctx->n_ctx))) {
        return fail(PI_ERR_OUT_OF_MEMORY, "out of memory for a KV cache of %u positions", ctx->n_ctx);
    }
    const int pool_size = std::max(ctx->n_threads, ctx->n_threads_batch);
    forward_buffers & b = ctx->buf;
    const bool ok = b.x.alloc(NB * hp.n_embd) && b.xn.alloc(NB * hp.n_embd) && b.q.alloc(NB * hp.n_embd_q()) &&
                    b.k.alloc(NB * hp.n_embd_kv()) && b.v.alloc(NB * hp.n_embd_kv()) &&
                    b.att.alloc(NB * hp.n_embd_q()) && b.tmp.alloc(NB * hp.n_embd) && b.gate.alloc(NB * hp.n_ff) &&
                    b.up.alloc(NB * hp.n_ff) && b.attn_scratch.alloc(pool_size * attention_scratch_bytes(ctx->kv, ctx->llm->hp.n_head) / sizeof(float)) &&
                    b.rope_cos.alloc(NB * (hp.n_rot / 2)) && b.rope_sin.alloc(NB * (hp.n_rot / 2));
    if (!ok) return fail(PI_ERR_OUT_OF_MEMORY, "out of memory for the scratch of a %zu-token batch", NB);

    // The widest prepared activation row of any product the forward pass makes.
    size_t max_row = act_bytes(m.output.type, hp.n_embd);
    for (const llm_layer & L : m.layers) {
        max_row = std::max({max_row, act_bytes(L.wq.type, hp.n_embd), act_bytes(L.wk.type, hp.n_embd),
                            act_bytes(L.wv.type, hp.n_embd), act_bytes(L.wo.type, hp.n_embd_q()),
                            act_bytes(L.w_gate.type, hp.n_embd), act_bytes(L.w_up.type, hp.n_embd),
                            act_bytes(L.w_down.type, hp.n_ff)});
        if (L.fc1.data) {  // the predictor of a prompt batch runs on these slots too
            max_row = std::max({max_row, act_bytes(L.fc1.type, hp.n_embd), act_bytes(L.fc2.type, L.fc2.n_cols)});
        }
    }
    max_row = (max_row + 63) & ~static_cast<size_t>(63);
    b.act_row_max = max_row;
    b.act_mem.resize(act_set::kSlots * max_row * NB + 64);

    if (m.arch_kind == LLM_ARCH_FALCON && !(b.xf.alloc(NB * hp.n_embd) && b.attn_out.alloc(NB * hp.n_embd))) {
        return fail(PI_ERR_OUT_OF_MEMORY, "out of memory for the falcon scratch");
    }

    bool sparse = false;
    for (const llm_layer & L : m.layers) sparse = sparse || m.ffn_is_sparse(L);
    if (sparse) {
        const int64_t FF = hp.n_ff;
        size_t sp_row = 0;
        for (const llm_layer & L : m.layers) {
            sp_row = std::max({sp_row, act_bytes(L.w_gate.type, hp.n_embd), act_bytes(L.w_up.type, hp.n_embd)});
            if (L.fc1.data) sp_row = std::max({sp_row, act_bytes(L.fc1.type, hp.n_embd), act_bytes(L.fc2.type, L.fc2.n_cols)});
            if (L.w_down.data) sp_row = std::max(sp_row, act_bytes(L.w_down.type, FF));
        }
        sp_row = (sp_row + 63) & ~static_cast<size_t>(63);
        b.sp_act_row = sp_row;
        const bool sok = b.sp_scores.alloc(NB * FF) &&
                         b.sp_pred.alloc(NB * (m.pred_hidden_max > 0 ? m.pred_hidden_max : 1)) &&
                         b.sp_h.alloc(FF) && b.sp_g.alloc(FF) && b.sp_hfull.alloc(FF);
        if (!sok) return fail(PI_ERR_OUT_OF_MEMORY, "out of memory for the sparse FFN scratch");
        b.sp_ids.assign(FF, 0);
        b.sp_union.assign(FF, 0);
        b.sp_count.assign(2 * NB, 0);
        b.sp_all.resize(FF);
        for (int64_t i = 0; i < FF; i++) b.sp_all[i] = static_cast<int32_t>(i);
        b.sp_act.assign(4 * sp_row + 64, 0);
    }

    ctx->pool.reset(new thread_pool(pool_size));
    ctx->stats.reset(hp.n_layer, hp.n_ff);
    return PI_OK;
}

pi_status context_resize_threads(pi_context * ctx, int32_t n_threads, int32_t n_threads_batch) {
    const int pool_size = std::max(n_threads, n_threads_batch);
    const size_t need = pool_size * attention_scratch_bytes(ctx->kv, ctx->llm->hp.n_head) / sizeof(float);
    if (need > ctx->buf.attn_scratch.n) {
        fbuf bigger;  // allocated aside so that a failure leaves the context as it was
        if (!bigger.alloc(need)) {
            return fail(PI_ERR_OUT_OF_MEMORY, "out of memory for attention scratch of %d threads", pool_size);
        }
        std::swap(ctx->buf.attn_scratch.p, bigger.p);
        std::swap(ctx->buf.attn_scratch.n, bigger.n);
    }
    if (pool_size != ctx->pool->size()) ctx->pool.reset(new thread_pool(pool_size));
    ctx->n_threads       = n_threads;
    ctx->n_threads_batch = n_threads_batch;
    return PI_OK;
}

}  // namespace pi
