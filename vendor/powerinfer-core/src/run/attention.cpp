// attention.cpp - attention as two matrix products per (query head, block of tokens).
//
// For one query head h and a block of up to kBlock consecutive tokens of the batch:
//     S = K_g · Q^T          scores, [tokens][keys]: the K rows of the cache are the "weights"
//     S = softmax(S / sqrt(d)) row by row, over the keys each token sees (causal)
//     O = V_g · S^T          V is stored transposed (one row per dimension), so again rows · vector
// Both products run on the kernels' F16 (or F32) rows; the K product reads each cache row once per
// block rather than once per token. Units (head, block) are spread over the thread pool.
#include "run/attention.h"

#include "cpu/kernels.h"
#include "powerinfer.h"
#include "run/linear.h"
#include "run/norm.h"

#include <cmath>

namespace pi {
namespace {

constexpr int64_t kBlock = 32;  // tokens per unit: enough to reuse cache rows, small scratch

size_t align64(size_t n) { return (n + 63) & ~static_cast<size_t>(63); }

}  // namespace

size_t attention_scratch_bytes(const kv_cache & kv) {
    const size_t q_act = align64(kBlock * act_bytes(kv.type, kv.head_dim));
    const size_t s     = align64(kBlock * static_cast<size_t>(kv.n_ctx) * sizeof(float));
    const size_t s_act = align64(act_bytes(kv.type, kv.n_ctx));
    return q_act + s + s_act;
}

void attention(thread_pool & pool, int nth, const kv_cache & kv, int layer, int n_head, const float * q,
               int64_t n_tok, int32_t pos0, float * out, uint8_t * scratch) {
    const int     hd       = kv.head_dim;
    const int     group    = n_head / kv.n_head_kv;  // query heads per KV head
    const float   scale    = 1.0f / std::sqrt(static_cast<float>(hd));
    const int64_t n_q      = static_cast<int64_t>(n_head) * hd;
    const int64_t n_blocks = (n_tok + kBlock - 1) / kBlock;
    const size_t  per_thread = attention_scratch_bytes(kv);
    const size_t  q_stride = act_bytes(kv.type, hd);
    const int64_t lds      = kv.n_ctx;  // scores row stride

    pool.parallel_for(nth, n_blocks * n_head, [&](int ith, int64_t u0, int64_t u1) {
        uint8_t * qa = scratch + ith * per_thread;
        float *   S  = reinterpret_cast<float *>(qa + align64(kBlock * q_stride));
        uint8_t * sa = reinterpret_cast<uint8_t *>(S) + align64(kBlock * static_cast<size_t>(kv.n_ctx) * sizeof(float));
        for (int64_t u = u0; u < u1; u++) {
            const int     h  = static_cast<int>(u % n_head);
            const int64_t t0 = (u / n_head) * kBlock;
            const int64_t nb = n_tok - t0 < kBlock ? n_tok - t0 : kBlock;
            const int     g  = h / group;
            const int64_t nk = pos0 + t0 + nb;  // keys the block's last token sees

            // S = K_g · q for the block's tokens.
            for (int64_t b = 0; b < nb; b++) {
                act_prepare(kv.type, q + (t0 + b) * n_q + static_cast<int64_t>(h) * hd, hd, qa + b * q_stride);
            }
            matmul(kv.type, kv.k_head(layer, g), kv.row_bytes(), qa, q_stride, nb, hd, S, lds, 0, nk);

            // Per token: scaled softmax over the keys it sees, then O = V_g · s, one V row per
            // dimension dotted with the n_see probabilities. Done token by token (V stays in L2)
            // so that a token's result does not depend on how the batch was split: prompt and
            // one-token decoding give the same numbers.
            for (int64_t b = 0; b < nb; b++) {
                float * s = S + b * lds;
                const int64_t n_see = pos0 + t0 + b + 1;
                for (int64_t j = 0; j < n_see; j++) s[j] *= scale;
                softmax(s, n_see);
                act_prepare(kv.type, s, n_see, sa);
                matvec(kv.type, kv.v_head(layer, g), kv.v_row_bytes(), sa, n_see,
                       out + (t0 + b) * n_q + static_cast<int64_t>(h) * hd, 0, hd);
            }
        }
    });
}

}  // namespace pi
