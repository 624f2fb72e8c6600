// ffn_sparse.h - the feed-forward step of ReLU models and of PowerInfer's sparse files: the
// layers for which llm_model::ffn_is_sparse is true (forward_llama.cpp calls it in place of the
// dense SwiGLU step).
//
// Modes (llm_model::sparse_mode, resolved at load from pi_model_params):
//   dense      h = act(Wgate·xn, Wup·xn) over every neuron; down by ffn_down, or by the sparse
//              down kernel over all n_ff rows of ffn_down_t.
//   predictor  scores = fc2 · ReLU(fc1 · x) (x: the residual before the FFN norm); active =
//              {i : scores_i >= threshold}; h on the active rows only (sparse_ffn_hidden); y =
//              sum over active i with h_i != 0 of h_i · down_t[i] (sparse_down). A layer without
//              predictors takes every neuron.
//   oracle     the gate Wgate·xn densely; active = {i : gate_i > 0}, exactly the neurons whose
//              ReLU fires (bamboo's ReLU(up) zeroes more, which the down kernel skips as h = 0);
//              then the same sparse path.
// Batches (ffn_sparse.cpp): the rows of the union of the tokens' active sets, read once for the
// batch, or every row, whichever the cost model prefers; each token's result is the same bits
// either way, and the same as evaluating it alone.
// Statistics (ctx->stats, run/sparse_stats.h) are counted on every path.
#pragma once

#include "model/llm.h"
#include "run/context.h"

#include <cstdint>

namespace pi {

// x[t] += FFN(x[t]) for the n_tok rows of ctx->buf.x (layer il), on nth threads of the context's
// pool. Returns the milliseconds spent in the predictor (part of the FFN's time).
double ffn_sparse(pi_context * ctx, const llm_layer & L, int il, int32_t n_tok, int nth);

}  // namespace pi
