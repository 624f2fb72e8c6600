// state.cpp - saving and restoring a context: the KV cache rows of positions [0, n_pos) and the
// outputs of the last decode.
//
// Layout (little-endian, as the machine writes it; a snapshot is for the same build and model):
//   state_header
//   for each layer, each KV head: K rows of positions [0, n_pos), then for each dimension the V
//   values of positions [0, n_pos)                                        (kv element type)
//   logits      [n_outputs][n_vocab] f32
//   embeddings  [n_outputs][n_embd]  f32, only when has_embd
#include "core/status.h"
#include "run/context.h"

#include <algorithm>
#include <cstring>

namespace pi {
namespace {

constexpr uint32_t kStateMagic   = 0x54534950;  // "PIST"
constexpr uint32_t kStateVersion = 2;  // 2: V rows by position, as K (1 had them by dimension)

struct state_header {
    uint32_t magic, version;
    int32_t  n_layer, n_head_kv, head_dim, kv_type, n_embd, n_vocab;
    int32_t  n_pos, n_outputs, has_embd, reserved;
};

size_t kv_bytes(const kv_cache & kv, int32_t n_pos) {
    return static_cast<size_t>(kv.n_layer) * kv.n_head_kv * 2 * static_cast<size_t>(n_pos) * kv.row_bytes();
}

size_t outputs_bytes(const pi_context * ctx, int32_t n_outputs, bool has_embd) {
    const llm_hparams & hp = ctx->llm->hp;
    size_t n = static_cast<size_t>(n_outputs) * hp.n_vocab;
    if (has_embd) n += static_cast<size_t>(n_outputs) * hp.n_embd;
    return n * sizeof(float);
}

}  // namespace

size_t state_size(const pi_context * ctx) {
    return sizeof(state_header) + kv_bytes(ctx->kv, ctx->kv.n_pos) +
           outputs_bytes(ctx, ctx->n_outputs, ctx->params.embeddings);
}

pi_status state_save(const pi_context * ctx, uint8_t * dst, size_t dst_size, size_t * n_out) {
    const size_t need = state_size(ctx);
    if (n_out) *n_out = need;
    if (dst_size < need) {
        return fail(PI_ERR_BUFFER_TOO_SMALL, "pi_state_save: buffer of %zu bytes, the state needs %zu", dst_size, need);
    }
    const kv_cache &    kv = ctx->kv;
    const llm_hparams & hp = ctx->llm->hp;
    state_header h;
    std::memset(&h, 0, sizeof(h));
    h.magic = kStateMagic; h.version = kStateVersion;
    h.n_layer = kv.n_layer; h.n_head_kv = kv.n_head_kv; h.head_dim = kv.head_dim; h.kv_type = kv.type;
    h.n_embd = hp.n_embd; h.n_vocab = hp.n_vocab;
    h.n_pos = kv.n_pos; h.n_outputs = ctx->n_outputs; h.has_embd = ctx->params.embeddings ? 1 : 0;
    uint8_t * p = dst;
    std::memcpy(p, &h, sizeof(h));
    p += sizeof(h);
    const size_t run = static_cast<size_t>(kv.n_pos) * kv.row_bytes();  // one head's valid K (V) rows
    for (int il = 0; il < kv.n_layer; il++) {
        for (int g = 0; g < kv.n_head_kv; g++) {
            std::memcpy(p, kv.k_head(il, g), run); p += run;
            std::memcpy(p, kv.v_head(il, g), run); p += run;
        }
    }
    const size_t nl = static_cast<size_t>(ctx->n_outputs) * hp.n_vocab * sizeof(float);
    if (nl) std::memcpy(p, ctx->logits.data(), nl);
    p += nl;
    if (h.has_embd) {
        const size_t ne = static_cast<size_t>(ctx->n_outputs) * hp.n_embd * sizeof(float);
        if (ne) std::memcpy(p, ctx->embd.data(), ne);
        p += ne;
    }
    return PI_OK;
}

pi_status state_load(pi_context * ctx, const uint8_t * src, size_t src_size) {
    state_header h;
    if (src_size < sizeof(h)) return fail(PI_ERR_INVALID_ARGUMENT, "pi_state_load: %zu bytes is too short for a state", src_size);
    std::memcpy(&h, src, sizeof(h));
    kv_cache &          kv = ctx->kv;
    const llm_hparams & hp = ctx->llm->hp;
    if (h.magic != kStateMagic || h.version != kStateVersion) {
        return fail(PI_ERR_INVALID_ARGUMENT, "pi_state_load: not a state saved by this library (magic or version differ)");
    }
    if (h.n_layer != kv.n_layer || h.n_head_kv != kv.n_head_kv || h.head_dim != kv.head_dim || h.kv_type != kv.type ||
        h.n_embd != hp.n_embd || h.n_vocab != hp.n_vocab) {
        return fail(PI_ERR_INVALID_ARGUMENT, "pi_state_load: the state was saved from a different model or KV type");
    }
    if (h.n_pos < 0 || h.n_pos > kv.n_ctx) {
        return fail(PI_ERR_CONTEXT_FULL, "pi_state_load: the state holds %d positions, the context window is %d",
                    h.n_pos, kv.n_ctx);
    }
    if (h.n_outputs < 0 || h.n_outputs > static_cast<int32_t>(ctx->n_batch)) {
        return fail(PI_ERR_INVALID_ARGUMENT, "pi_state_load: %d outputs is out of range", h.n_outputs);
    }
    const size_t need = sizeof(h) + kv_bytes(kv, h.n_pos) + outputs_bytes(ctx, h.n_outputs, h.has_embd != 0);
    if (src_size != need) {
        return fail(PI_ERR_INVALID_ARGUMENT, "pi_state_load: %zu bytes given, this state has %zu", src_size, need);
    }
    // Everything checked; size the output buffers first (they may throw) and then copy.
    ctx->logits.resize(std::max(ctx->logits.size(), static_cast<size_t>(h.n_outputs) * hp.n_vocab));
    if (ctx->params.embeddings) {
        ctx->embd.resize(std::max(ctx->embd.size(), static_cast<size_t>(h.n_outputs) * hp.n_embd));
    }
    const uint8_t * p = src + sizeof(h);
    const size_t run = static_cast<size_t>(h.n_pos) * kv.row_bytes();
    for (int il = 0; il < kv.n_layer; il++) {
        for (int g = 0; g < kv.n_head_kv; g++) {
            std::memcpy(kv.k_head(il, g), p, run); p += run;
            std::memcpy(kv.v_head(il, g), p, run); p += run;
        }
    }
    kv.n_pos = h.n_pos;
    const size_t nl = static_cast<size_t>(h.n_outputs) * hp.n_vocab * sizeof(float);
    if (nl) std::memcpy(ctx->logits.data(), p, nl);
    p += nl;
    if (h.has_embd && ctx->params.embeddings) {
        const size_t ne = static_cast<size_t>(h.n_outputs) * hp.n_embd * sizeof(float);
        if (ne) std::memcpy(ctx->embd.data(), p, ne);
    }
    ctx->n_outputs = h.n_outputs;
    return PI_OK;
}

}  // namespace pi
