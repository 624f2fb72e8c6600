// context_api.cpp - the public context calls: create, decode, outputs, KV truncation, state,
// timings. pi_decode checks every argument before it touches the context, so a failing call
// leaves the KV cache and the last outputs exactly as they were.
#include "core/status.h"
#include "model/llm.h"
#include "model/model.h"
#include "powerinfer.h"
#include "run/context.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>
#include <vector>

namespace {

double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

pi_status check_threads(int32_t n, const char * what) {
    if (n < 0) return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s must be >= 0 (0 = all cores), got %d", what, n);
    return PI_OK;
}

int32_t resolve_threads(int32_t n) { return n == 0 ? pi::available_cores() : n; }

pi_status new_context(pi_model * model, const pi_context_params & p, pi_context ** out) {
    if (!model) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_context_new: model is NULL");
    if (!model->llm) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_context_new: the model was loaded vocab-only; a context needs its "
                        "weights");
    }
    const pi::llm_hparams & hp = model->llm->hp;
    PI_TRY(check_threads(p.n_threads, "n_threads"));
    PI_TRY(check_threads(p.n_threads_batch, "n_threads_batch"));
    if (p.kv_type != PI_TYPE_F16 && p.kv_type != PI_TYPE_F32) {
        return pi::fail(PI_ERR_UNSUPPORTED, "pi_context_new: kv_type %d is not supported (F16 = 1 or F32 = 0)",
                        p.kv_type);
    }
    uint32_t n_ctx = p.n_ctx ? p.n_ctx : static_cast<uint32_t>(hp.n_ctx_train);
    if (n_ctx == 0) n_ctx = 512;  // a file without context_length would have failed to load; belt and braces
    if (n_ctx > (1u << 30)) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_context_new: n_ctx %u is too large", n_ctx);
    uint32_t n_batch = p.n_batch ? p.n_batch : 512;
    if (n_batch > n_ctx) n_batch = n_ctx;

    std::unique_ptr<pi_context> ctx(new pi_context());
    ctx->model           = model;
    ctx->llm             = model->llm.get();
    ctx->params          = p;
    ctx->n_ctx           = n_ctx;
    ctx->n_batch         = n_batch;
    ctx->n_threads       = resolve_threads(p.n_threads);
    ctx->n_threads_batch = resolve_threads(p.n_threads_batch);
    ctx->params.n_ctx    = n_ctx;
    ctx->params.n_batch  = n_batch;
    PI_TRY(pi::context_alloc(ctx.get()));
    ctx->logits.resize(hp.n_vocab);
    if (p.embeddings) ctx->embd.resize(hp.n_embd);
    ctx->timings.t_load_ms = ctx->llm->t_load_ms;
    *out = ctx.release();
    return PI_OK;
}

pi_status decode(pi_context * ctx, const pi_token * tokens, const pi_pos * pos, int32_t n_tokens,
                 const int8_t * want_logits) {
    if (!ctx) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_decode: context is NULL");
    if (!tokens) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_decode: tokens is NULL");
    if (n_tokens <= 0) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_decode: n_tokens must be >= 1, got %d", n_tokens);
    if (static_cast<uint32_t>(n_tokens) > ctx->n_batch) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_decode: %d tokens exceed n_batch (%u); split the batch",
                        n_tokens, ctx->n_batch);
    }
    const pi::llm_hparams & hp = ctx->llm->hp;
    const int64_t pos0 = pos ? pos[0] : ctx->kv.n_pos;
    if (pos) {
        for (int32_t i = 0; i < n_tokens; i++) {
            if (pos[i] < 0) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_decode: position %d at index %d is negative", pos[i], i);
        }
    }
    const int64_t n_needed = pos0 + n_tokens;  // positions [0, n_needed) once this batch is in
    if (n_needed > static_cast<int64_t>(ctx->n_ctx)) {
        return pi::fail(PI_ERR_CONTEXT_FULL, "Requested tokens (%lld) exceed context window of %u",
                        static_cast<long long>(n_needed), ctx->n_ctx);
    }
    if (pos) {
        for (int32_t i = 1; i < n_tokens; i++) {
            if (pos[i] != pos0 + i) {
                return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_decode: positions must be consecutive; pos[%d] = %d after "
                                "pos[%d] = %d", i, pos[i], i - 1, pos[i - 1]);
            }
        }
        if (pos0 > ctx->kv.n_pos) {
            return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_decode: position %lld would leave a gap; the cache holds "
                            "positions [0, %d)", static_cast<long long>(pos0), ctx->kv.n_pos);
        }
    }
    for (int32_t i = 0; i < n_tokens; i++) {
        if (tokens[i] < 0 || tokens[i] >= hp.n_vocab) {
            return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_decode: token id %d at index %d is out of range [0, %d)",
                            tokens[i], i, hp.n_vocab);
        }
    }

    // Which rows give outputs.
    std::vector<int32_t> rows;
    if (want_logits) {
        for (int32_t i = 0; i < n_tokens; i++) {
            if (want_logits[i]) rows.push_back(i);
        }
    } else if (ctx->params.logits_all) {
        for (int32_t i = 0; i < n_tokens; i++) rows.push_back(i);
    } else {
        rows.push_back(n_tokens - 1);
    }
    const int32_t n_out = static_cast<int32_t>(rows.size());
    if (ctx->logits.size() < static_cast<size_t>(n_out) * hp.n_vocab) ctx->logits.resize(static_cast<size_t>(n_out) * hp.n_vocab);
    if (ctx->params.embeddings && ctx->embd.size() < static_cast<size_t>(n_out) * hp.n_embd) {
        ctx->embd.resize(static_cast<size_t>(n_out) * hp.n_embd);
    }

    // Everything is valid: from here on the context changes. A batch starting before the end of
    // the cache replaces the positions from pos0 on.
    const double t0 = now_ms();
    ctx->kv.n_pos = static_cast<int32_t>(pos0);
    pi::forward_llama(ctx, tokens, n_tokens, static_cast<int32_t>(pos0), rows.data(), n_out);
    ctx->kv.n_pos     = static_cast<int32_t>(n_needed);
    ctx->n_outputs    = n_out;
    if (ctx->stats.rec_x) {  // this batch's tokens were recorded (up to the capacity)
        ctx->stats.rec_n = std::min<int64_t>(ctx->stats.rec_cap, ctx->stats.rec_n + n_tokens);
    }
    const double dt = now_ms() - t0;
    if (n_tokens > 1) {
        ctx->timings.t_prompt_ms += dt;
        ctx->timings.n_prompt_tokens += n_tokens;
    } else {
        ctx->timings.t_decode_ms += dt;
        ctx->timings.n_decode_tokens += 1;
    }
    return PI_OK;
}

// Runs an API body, turning allocation failures and other exceptions into statuses.
template <class F>
pi_status guarded(const char * what, F && body) {
    try {
        return body();
    } catch (const std::bad_alloc &) {
        return pi::fail(PI_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    } catch (const std::exception & e) {
        return pi::fail(PI_ERR_INTERNAL, "%s: %s", what, e.what());
    }
}

}  // namespace

extern "C" {

pi_context_params pi_context_default_params(void) {
    pi_context_params p;
    std::memset(&p, 0, sizeof(p));
    p.struct_size     = sizeof(pi_context_params);
    p.n_ctx           = 512;
    p.n_batch         = 512;
    p.n_threads       = 0;
    p.n_threads_batch = 0;
    p.kv_type         = PI_TYPE_F16;
    p.logits_all      = false;
    p.embeddings      = false;
    return p;
}

pi_status pi_context_new(pi_model * model, const pi_context_params * params, pi_context ** out) {
    if (!out) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_context_new: out is NULL");
    *out = nullptr;
    pi_context_params p = pi_context_default_params();
    if (params) {
        if (params->struct_size != sizeof(pi_context_params)) {
            return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_context_new: params.struct_size is %u, this library expects "
                            "%zu (header and library differ)", params->struct_size, sizeof(pi_context_params));
        }
        p = *params;
    }
    return guarded("pi_context_new", [&] { return new_context(model, p, out); });
}

void pi_context_free(pi_context * ctx) { delete ctx; }

uint32_t pi_context_n_ctx(const pi_context * ctx) { return ctx ? ctx->n_ctx : 0; }
uint32_t pi_context_n_batch(const pi_context * ctx) { return ctx ? ctx->n_batch : 0; }

pi_status pi_context_set_threads(pi_context * ctx, int32_t n_threads, int32_t n_threads_batch) {
    if (!ctx) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_context_set_threads: context is NULL");
    PI_TRY(check_threads(n_threads, "n_threads"));
    PI_TRY(check_threads(n_threads_batch, "n_threads_batch"));
    return guarded("pi_context_set_threads", [&] {
        return pi::context_resize_threads(ctx, resolve_threads(n_threads), resolve_threads(n_threads_batch));
    });
}

pi_status pi_decode(pi_context * ctx, const pi_token * tokens, const pi_pos * pos, int32_t n_tokens,
                    const int8_t * want_logits) {
    return guarded("pi_decode", [&] { return decode(ctx, tokens, pos, n_tokens, want_logits); });
}

float * pi_get_logits(pi_context * ctx, int32_t i) {
    if (!ctx || ctx->n_outputs == 0) return nullptr;
    if (i == -1) i = ctx->n_outputs - 1;
    if (i < 0 || i >= ctx->n_outputs) return nullptr;
    return ctx->logits.data() + static_cast<size_t>(i) * ctx->llm->hp.n_vocab;
}

int32_t pi_n_outputs(const pi_context * ctx) { return ctx ? ctx->n_outputs : 0; }

float * pi_get_embeddings(pi_context * ctx, int32_t i) {
    if (!ctx || !ctx->params.embeddings || ctx->n_outputs == 0) return nullptr;
    if (i == -1) i = ctx->n_outputs - 1;
    if (i < 0 || i >= ctx->n_outputs) return nullptr;
    return ctx->embd.data() + static_cast<size_t>(i) * ctx->llm->hp.n_embd;
}

pi_pos pi_kv_pos(const pi_context * ctx) { return ctx ? ctx->kv.n_pos : 0; }

pi_status pi_kv_truncate(pi_context * ctx, pi_pos pos) {
    if (!ctx) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_kv_truncate: context is NULL");
    if (pos < 0 || pos > ctx->kv.n_pos) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_kv_truncate: position %d is outside [0, %d]", pos, ctx->kv.n_pos);
    }
    ctx->kv.n_pos = pos;
    return PI_OK;
}

size_t pi_state_size(const pi_context * ctx) { return ctx ? pi::state_size(ctx) : 0; }

pi_status pi_state_save(const pi_context * ctx, uint8_t * dst, size_t dst_size, size_t * n_out) {
    if (!ctx) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_state_save: context is NULL");
    if (!dst && dst_size > 0) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_state_save: dst is NULL");
    return pi::state_save(ctx, dst, dst_size, n_out);
}

pi_status pi_state_load(pi_context * ctx, const uint8_t * src, size_t src_size) {
    if (!ctx) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_state_load: context is NULL");
    if (!src) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_state_load: src is NULL");
    return guarded("pi_state_load", [&] { return pi::state_load(ctx, src, src_size); });
}

pi_status pi_context_timings(const pi_context * ctx, pi_timings * out) {
    if (!ctx || !out) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_context_timings: NULL argument");
    *out = ctx->timings;
    return PI_OK;
}

void pi_context_reset_timings(pi_context * ctx) {
    if (!ctx) return;
    const double t_load = ctx->timings.t_load_ms;
    std::memset(&ctx->timings, 0, sizeof(ctx->timings));
    ctx->timings.t_load_ms = t_load;
}

}  // extern "C"
