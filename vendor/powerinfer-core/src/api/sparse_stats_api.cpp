// sparse_stats_api.cpp - the public calls that read a context's sparse FFN statistics and stage
// times (definitions in powerinfer.h; what is counted where: run/ffn_sparse.cpp).
#include "core/status.h"
#include "powerinfer.h"
#include "run/context.h"

#include <new>

namespace {

pi_status check_layer(const pi_context * ctx, int32_t layer, const char * fn) {
    if (!ctx) return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: context is NULL", fn);
    const int32_t n_layer = static_cast<int32_t>(ctx->stats.layers.size());
    if (layer < 0 || layer >= n_layer)
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: layer %d out of range [0, %d)", fn, layer, n_layer);
    return PI_OK;
}

}  // namespace

extern "C" {

pi_status pi_context_sparse_stats_config(pi_context * ctx, bool measure_truth, bool count_neurons) {
    if (!ctx) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_context_sparse_stats_config: context is NULL");
    pi::sparse_stats & st = ctx->stats;
    const int32_t n_layer = static_cast<int32_t>(st.layers.size());
    st.measure_truth = measure_truth;
    st.count_neurons = count_neurons;
    try {
        st.reset(n_layer, st.n_ff);
    } catch (const std::bad_alloc &) {
        st.count_neurons = false;
        st.reset(n_layer, st.n_ff);
        return pi::fail(PI_ERR_OUT_OF_MEMORY, "pi_context_sparse_stats_config: out of memory for %d x %lld neuron counts",
                        n_layer, (long long)st.n_ff);
    }
    return PI_OK;
}

pi_status pi_context_sparse_stats(const pi_context * ctx, int32_t layer, pi_sparse_layer_stats * out) {
    PI_TRY(check_layer(ctx, layer, "pi_context_sparse_stats"));
    if (!out) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_context_sparse_stats: out is NULL");
    const pi::sparse_layer_counts & c = ctx->stats.layers[layer];
    out->n_tokens   = c.n_tokens;
    out->n_ff       = ctx->stats.n_ff;
    out->n_computed = c.n_computed;
    out->n_fired    = c.n_fired;
    out->n_true     = c.truth_known ? c.n_true : -1;
    return PI_OK;
}

pi_status pi_context_neuron_counts(const pi_context * ctx, int32_t layer, int64_t * counts, int64_t n_ff) {
    PI_TRY(check_layer(ctx, layer, "pi_context_neuron_counts"));
    const pi::sparse_stats & st = ctx->stats;
    if (!st.count_neurons)
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_context_neuron_counts: neuron counting is off "
                        "(pi_context_sparse_stats_config with count_neurons = true)");
    if (!counts || n_ff != st.n_ff)
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_context_neuron_counts: need a buffer of n_ff = %lld counts",
                        (long long)st.n_ff);
    const int64_t * src = st.neurons.data() + static_cast<size_t>(layer) * st.n_ff;
    for (int64_t i = 0; i < n_ff; i++) counts[i] = src[i];
    return PI_OK;
}

pi_status pi_context_stage_times(const pi_context * ctx, pi_stage_times * out) {
    if (!ctx || !out) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_context_stage_times: NULL argument");
    out->t_attention_ms = ctx->stats.t_attention_ms;
    out->t_predictor_ms = ctx->stats.t_predictor_ms;
    out->t_ffn_ms       = ctx->stats.t_ffn_ms;
    out->t_other_ms     = ctx->stats.t_other_ms;
    return PI_OK;
}

pi_status pi_context_record_ffn(pi_context * ctx, float * x, uint8_t * fired, int64_t capacity) {
    if (!ctx) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_context_record_ffn: context is NULL");
    pi::sparse_stats & st = ctx->stats;
    if (!x || !fired) {
        st.rec_x = nullptr;
        st.rec_fired = nullptr;
        st.rec_cap = 0;
        return PI_OK;
    }
    if (capacity <= 0) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_context_record_ffn: capacity must be > 0");
    st.rec_x     = x;
    st.rec_fired = fired;
    st.rec_cap   = capacity;
    st.rec_n     = 0;
    st.n_embd    = ctx->llm->hp.n_embd;
    return PI_OK;
}

int64_t pi_context_n_recorded(const pi_context * ctx) { return ctx ? ctx->stats.rec_n : 0; }

void pi_context_reset_sparse_stats(pi_context * ctx) {
    if (ctx) ctx->stats.reset(static_cast<int32_t>(ctx->stats.layers.size()), ctx->stats.n_ff);
}

}  // extern "C"
