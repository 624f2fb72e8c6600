// model_hparams_api.cpp - the public hyper-parameter calls. A loaded model answers from its
// llm_model; a vocab-only model (no weights bound) from the <arch>.* metadata keys, 0 if absent.
#include "model/llm.h"
#include "model/model.h"
#include "powerinfer.h"

#include <string>

namespace {

int32_t meta_i32(const pi_model * m, const char * key) {
    int32_t v = 0;
    if (!m || !m->file || !m->file->get_i32(m->arch + "." + key, &v) || v < 0) return 0;
    return v;
}

}  // namespace

extern "C" {

int32_t pi_model_n_ctx_train(const pi_model * m) {
    if (m && m->llm) return m->llm->hp.n_ctx_train;
    return meta_i32(m, "context_length");
}

int32_t pi_model_n_embd(const pi_model * m) {
    if (m && m->llm) return m->llm->hp.n_embd;
    return meta_i32(m, "embedding_length");
}

int32_t pi_model_n_layer(const pi_model * m) {
    if (m && m->llm) return m->llm->hp.n_layer;
    return meta_i32(m, "block_count");
}

int32_t pi_model_n_head(const pi_model * m) {
    if (m && m->llm) return m->llm->hp.n_head;
    return meta_i32(m, "attention.head_count");
}

int32_t pi_model_n_head_kv(const pi_model * m) {
    if (m && m->llm) return m->llm->hp.n_head_kv;
    const int32_t kv = meta_i32(m, "attention.head_count_kv");
    return kv > 0 ? kv : meta_i32(m, "attention.head_count");
}

int32_t pi_model_n_ff(const pi_model * m) {
    if (m && m->llm) return m->llm->hp.n_ff;
    return meta_i32(m, "feed_forward_length");
}

// Counted from the tensor table, which a vocab-only load reads too.
uint64_t pi_model_n_params(const pi_model * m) {
    if (!m || !m->file) return 0;
    uint64_t n = 0;
    for (const pi::gguf_tensor & t : m->file->tensors) {
        n += static_cast<uint64_t>(t.ne[0]) * t.ne[1] * t.ne[2] * t.ne[3];
    }
    return n;
}

uint64_t pi_model_size_bytes(const pi_model * m) {
    if (!m || !m->file) return 0;
    uint64_t n = 0;
    for (const pi::gguf_tensor & t : m->file->tensors) n += t.n_bytes;
    return n;
}

int32_t pi_model_sparse_mode(const pi_model * m) {
    return m && m->llm ? m->llm->sparse_mode : PI_SPARSE_DENSE;
}

float pi_model_sparse_threshold(const pi_model * m) {
    return m && m->llm ? m->llm->sparse_threshold : 0.0f;
}

bool pi_model_layer_is_sparse(const pi_model * m, int32_t il) {
    if (!m || !m->llm || il < 0 || il >= static_cast<int32_t>(m->llm->layers.size())) return false;
    return m->llm->ffn_is_sparse(m->llm->layers[il]);
}

}  // extern "C"
