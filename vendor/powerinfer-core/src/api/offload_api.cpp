// offload_api.cpp - the public calls of the GPU split (pi_model_offload_*): argument checks, then
// run/ffn_offload.h.
#include "core/status.h"
#include "model/llm.h"
#include "model/model.h"
#include "run/ffn_offload.h"

#include <new>

extern "C" {

pi_status pi_model_offload_ffn(pi_model * model, const char * device, uint64_t capacity, const int32_t * hot_ids,
                               const int64_t * n_hot) {
    const char * fn = "pi_model_offload_ffn";
    if (!model) return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: model is NULL", fn);
    if (!model->llm) return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: a vocab-only model has no weights to offload", fn);
    pi::llm_model & m = *model->llm;
    int64_t total = 0;
    if (device && n_hot) {
        for (size_t il = 0; il < m.layers.size(); il++) total += n_hot[il];
    }
    // Remove the old split first: its buffers count against the device's memory.
    m.offload = nullptr;
    model->offload.reset();
    if (!device || total == 0) return PI_OK;
    if (!hot_ids) return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: hot_ids is NULL", fn);
    try {
        std::unique_ptr<pi::ffn_offload> off;
        PI_TRY(pi::ffn_offload_build(m, device, capacity, hot_ids, n_hot, &off));
        model->offload = std::move(off);
        m.offload      = model->offload.get();
    } catch (const std::bad_alloc &) {
        return pi::fail(PI_ERR_OUT_OF_MEMORY, "%s: no host memory to stage the hot rows", fn);
    }
    return PI_OK;
}

const char * pi_model_offload_device(const pi_model * model) {
    return model && model->offload ? model->offload->dev->name() : nullptr;
}

uint64_t pi_model_offload_bytes(const pi_model * model) {
    return model && model->offload ? model->offload->bytes() : 0;
}

pi_status pi_model_offload_layer(const pi_model * model, int32_t layer, int64_t * n_hot, uint64_t * bytes) {
    if (!model || !model->llm) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_model_offload_layer: no model weights");
    if (layer < 0 || layer >= (int32_t)model->llm->layers.size()) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_model_offload_layer: layer %d out of range", (int)layer);
    }
    const bool split = model->offload && model->offload->layer_split(layer);
    if (n_hot) *n_hot = split ? (int64_t)model->offload->layers[(size_t)layer].hot_ids.size() : 0;
    if (bytes) *bytes = split ? model->offload->layers[(size_t)layer].bytes : 0;
    return PI_OK;
}

}  // extern "C"
