// context.h - what a pi_context holds: the KV cache, the scratch buffers of one batch, the thread
// pool, and the outputs (logits, embeddings) of the last pi_decode.
#pragma once

#include "model/llm.h"
#include "model/model.h"
#include "powerinfer.h"
#include "run/kv_cache.h"
#include "run/sparse_stats.h"
#include "run/threadpool.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace pi {

// A float buffer from calloc: large ones are mapped lazily, so unused capacity costs no RSS.
struct fbuf {
    float * p = nullptr;
    size_t  n = 0;
    fbuf() = default;
    ~fbuf();
    fbuf(const fbuf &) = delete;
    fbuf & operator=(const fbuf &) = delete;
    bool alloc(size_t count);  // false when out of memory
    float * data() const { return p; }
};

// Activations prepared for the weight types of one step (a step's matrices may differ in type,
// e.g. attn_v in Q6_K beside Q4_K). Each slot holds n_batch rows, `stride` bytes apart.
struct act_set {
    static constexpr int kSlots = 3;
    int32_t   type[kSlots]   = {-1, -1, -1};
    uint8_t * buf[kSlots]    = {nullptr, nullptr, nullptr};
    size_t    stride[kSlots] = {0, 0, 0};  // act_bytes of one row in the slot's type
    int64_t   n_cols         = 0;
    int       n              = 0;          // slots in use
};

// Scratch for a batch of up to n_batch tokens (row t of each is token t).
struct forward_buffers {
    fbuf x;       // [n_batch][n_embd]   residual stream
    fbuf xn;      // [n_batch][n_embd]   normalised input of a step
    fbuf q;       // [n_batch][n_q]      queries (n_q = n_head * head_dim)
    fbuf k;       // [n_batch][n_kv]     keys of this batch
    fbuf v;       // [n_batch][n_kv]     values of this batch
    fbuf att;     // [n_batch][n_q]      attention output, heads concatenated
    fbuf tmp;     // [n_batch][n_embd]   output of Wo and Wdown before the residual add
    fbuf xf;       // [n_batch][n_embd]  falcon: the FFN's normalised input
    fbuf attn_out; // [n_batch][n_embd]  falcon: Wo's output, added to x after the FFN
    fbuf gate;    // [n_batch][n_ff]     gate, then silu(gate) * up
    fbuf up;      // [n_batch][n_ff]
    fbuf attn_scratch;  // attention_scratch_bytes(kv, n_head) per thread (run/attention.h)
    fbuf rope_cos, rope_sin;  // [n_batch][n_rot / 2]
    std::vector<uint8_t> act_mem;  // the act_set slots: kSlots * n_batch * max act row bytes
    size_t act_row_max = 0;

    // The sparse FFN of one token (run/ffn_sparse.cpp); allocated only for ReLU / sparse models.
    fbuf sp_scores;               // [n_batch][n_ff]   predictor scores, or the oracle's gate
    fbuf sp_pred;                 // [n_batch][H_max]  predictor hidden ReLU(fc1 · x)
    fbuf sp_h;                    // [n_ff]   h of the active neurons (compact)
    fbuf sp_g;                    // [n_ff]   gate of the active neurons (compact)
    fbuf sp_hfull;                // [n_ff]   h scattered to neuron order (dense-layout ffn_down)
    std::vector<int32_t> sp_ids;  // [n_ff]   active neuron ids (a batch: their union)
    std::vector<uint8_t> sp_union;  // [n_ff] a batch: whether some token keeps neuron i
    std::vector<int64_t> sp_count;  // [2 n_batch] a batch: per-token counts for the statistics
    std::vector<int32_t> sp_all;  // [n_ff]   0 .. n_ff - 1 (every neuron)
    std::vector<uint8_t> sp_act;  // 4 prepared activations (up, gate, predictor, down), sp_act_row each
    size_t sp_act_row = 0;
};

}  // namespace pi

struct pi_context {
    pi_model *                       model = nullptr;
    const pi::llm_model *            llm   = nullptr;
    pi_context_params                params{};
    uint32_t                         n_ctx   = 0;
    uint32_t                         n_batch = 0;
    int32_t                          n_threads       = 1;
    int32_t                          n_threads_batch = 1;
    pi::kv_cache                     kv;
    std::unique_ptr<pi::thread_pool> pool;
    pi::forward_buffers              buf;

    // Outputs of the last decode: n_outputs rows of n_vocab logits (and n_embd embeddings).
    std::vector<float>               logits;
    std::vector<float>               embd;
    int32_t                          n_outputs = 0;

    pi_timings                       timings{};
    pi::sparse_stats                 stats;  // reset with the context's shape in context_alloc
};

namespace pi {

// Cores this process may run on ("0 threads = all cores").
int available_cores();

// Allocates the KV cache, scratch and thread pool of a context whose model, params, n_ctx,
// n_batch and thread counts are set (run/context.cpp).
pi_status context_alloc(pi_context * ctx);
// Changes the thread counts, growing the pool and scratch if needed; nothing changes on failure.
pi_status context_resize_threads(pi_context * ctx, int32_t n_threads, int32_t n_threads_batch);

// State snapshots: KV cache positions [0, n_pos) and the last outputs (run/state.cpp).
size_t    state_size(const pi_context * ctx);
pi_status state_save(const pi_context * ctx, uint8_t * dst, size_t dst_size, size_t * n_out);
pi_status state_load(pi_context * ctx, const uint8_t * src, size_t src_size);

// Runs the llama-family forward pass for n_tok tokens at positions pos0 .. pos0 + n_tok - 1 (already
// validated), writing the KV cache and the logits (and embeddings) of the n_out rows listed in
// out_rows into ctx->logits / ctx->embd. The caller has sized those.
void forward_llama(pi_context * ctx, const pi_token * tokens, int32_t n_tok, int32_t pos0,
                   const int32_t * out_rows, int32_t n_out);

}  // namespace pi
