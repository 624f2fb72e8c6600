// ffn_offload.h - the GPU split of the sparse FFN: which neurons of each layer live on a device
// (hot), the device's copies of their rows, and the FFN step that computes hot rows there and cold
// rows on the CPU and adds the two down projections.
//
// Placement comes from outside (pi_model_offload_ffn: the Python layer reads PowerInfer's
// .generated.gpuidx or our placement tool's output). For each layer the hot neurons' rows of up,
// gate and ffn_down_t are gathered into compact matrices on the host and uploaded in one copy each
// (PowerInfer copies them a row at a time). Only sparse layers stored in PowerInfer's layout can
// split: a neuron's down projection must be a row (ffn_down_t), not a column of ffn_down.
//
// What is on the device in this version: the hot FFN rows and, for the layers that split, their
// predictors (PowerInfer keeps those on the GPU too: they run for every token). Attention, norms
// and the output head stay on the CPU.
#pragma once

#include "backend/device.h"
#include "model/llm.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

struct pi_context;

namespace pi {

struct ffn_offload_layer {
    std::vector<int32_t> hot_ids;    // ascending neuron ids held by the device
    std::vector<int32_t> hot_index;  // [n_ff] compact row of neuron i on the device, or -1 (empty: none)
    device_ffn_rows      rows;       // the device's compact matrices
    device_predictor     pred;       // the layer's predictor on the device (fc1 null: none)
    uint64_t             bytes = 0;  // device bytes of this layer
};

struct ffn_offload {
    std::unique_ptr<device>        dev;
    uint64_t                       capacity = 0;  // the budget given (0: none)
    std::vector<ffn_offload_layer> layers;        // n_layer
    std::mutex                     busy;          // one token's device work at a time (contexts share it)

    uint64_t bytes() const;
    bool     layer_split(int il) const { return il < (int)layers.size() && !layers[il].hot_ids.empty(); }
    ~ffn_offload();
};

// Builds the split of m on device dev_name under capacity bytes: hot_ids holds, layer after
// layer, the ascending ids of each layer's hot neurons, n_hot[il] of them. Fails (nothing built)
// on a bad id, a layer that cannot split, or a budget too small, with the reason.
pi_status ffn_offload_build(const llm_model & m, const char * dev_name, uint64_t capacity, const int32_t * hot_ids,
                            const int64_t * n_hot, std::unique_ptr<ffn_offload> * out);

// x[t] += FFN(x[t]) for the n_tok tokens of layer il with hot rows on the device: each token's
// active set as in ffn_sparse.h (predictor, oracle or every neuron), every token's hot rows to the
// device in one call, the cold rows on the CPU meanwhile, token by token, then y = y_cold + y_hot.
// Each token gets the bits of evaluating it alone. Returns the milliseconds spent in the predictor.
double ffn_offload_run(pi_context * ctx, const llm_layer & L, int il, int32_t n_tok, int nth);

}  // namespace pi
