// ffn_parts.h - the pieces of the sparse FFN step that run/ffn_sparse.cpp (CPU only) and
// run/ffn_offload.cpp (hot rows on a device) share: the activation of one neuron, the FFN input
// of a token, the predictor's scores, the per-token scratch. Internal to run/.
#pragma once

#include "model/llm.h"
#include "run/context.h"
#include "run/threadpool.h"

#include <cstdint>

namespace pi {
namespace ffn_parts {

inline float relu(float v) { return v > 0.0f ? v : 0.0f; }

// The hidden value of one neuron under the model's (ReLU) activation: g its gate, u its up, b its
// up bias (falcon, which has no gate).
inline float hidden_act(llm_ffn_act act, float g, float u, float b) {
    switch (act) {
        case LLM_FFN_RELU_UP:   return relu(u + b);
        case LLM_FFN_RELU_BOTH: return relu(g) * relu(u);
        default:                return relu(g) * u;
    }
}

// Whether the FFN has a gate (all but falcon); the oracle's selection is then the gate's sign,
// else the sign of up + bias.
inline bool gated(const llm_model & m) { return m.ffn_act != LLM_FFN_RELU_UP; }

inline float bias_of(const llm_layer & L, int64_t i) { return L.ffn_up_b ? L.ffn_up_b[i] : 0.0f; }

// Whether layer L selects neurons by its predictor (else: every neuron, or the oracle).
inline bool uses_predictor(const llm_model & m, const llm_layer & L) {
    return m.sparse_mode == PI_SPARSE_PREDICTOR && L.fc1.data != nullptr;
}

// fn(t) for the n_tok tokens, split among nth threads.
template <class F>
void each_token(thread_pool & pool, int nth, int64_t n_tok, F && fn) {
    pool.parallel_for(nth, n_tok, [&](int, int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; t++) fn(t);
    });
}

// Per-token scratch carved from forward_buffers::sp_act (64-byte aligned slots).
struct token_acts {
    uint8_t * up, * gate, * pred, * down;
};
token_acts carve(forward_buffers & b);

// Token t's FFN input: falcon's was normalised with the attention's (forward_llama.cpp, into
// buf.xf); the llama family's is rmsnorm(x) * ffn_norm, computed here into buf.xn.
const float * ffn_input(pi_context * ctx, const llm_layer & L, int64_t t);

// y[r] = row r of w · xq for every row, the rows split among nth threads.
void matvec_all(thread_pool & pool, int nth, const llm_weight & w, const void * xq, float * y);

int64_t count_nonzero(const float * h, int64_t n);

// y (n_embd floats) = the down projection of the compact list (ids[k], h[k]), k < n.
void down_compact(pi_context * ctx, int nth, const llm_layer & L, const token_acts & a, const int32_t * ids,
                  const float * h, int64_t n, float * y);

// The predictor scores of n_tok tokens: S[t * n_ff + i] = fc2 · ReLU(fc1 · x_t), x_t the residual
// before the FFN norm. One token uses the per-token scratch, a batch the batched products.
void predictor_scores(pi_context * ctx, const llm_layer & L, int64_t n_tok, int nth, float * S);

}  // namespace ffn_parts
}  // namespace pi
