// attention.cpp - attention as two products per (KV head, block of tokens).
//
// The query heads that share a KV head (grouped-query attention: n_head / n_head_kv of them) are
// taken together, so that each K and V row of the cache is read once for all of them rather than
// once per query head. For one KV head g and a block of up to kBlock consecutive tokens of the
// batch, with Q the block's queries of g's heads (token-major: row b * group + j):
//     S = K_g · Q^T          scores, [token x head][keys]: the K rows of the cache are the "weights"
//     S = softmax(S / sqrt(d)) row by row, over the keys each token sees (causal)
//     O_b = S_b · V_g        per token b, its group's probability rows at once: the V rows (one
//                            per position) weighted by the probabilities and summed (weighted_rows)
// The scores run on the kernels' batched F16 (or F32) rows, whose result for one activation does
// not depend on how many others share the call; weighted_rows adds its terms in order of position
// whatever the call's shape. Units (KV head, block) are spread over the thread pool.
#include "run/attention.h"

#include "cpu/kernels.h"
#include "powerinfer.h"
#include "run/linear.h"
#include "run/norm.h"

#include <cmath>

namespace pi {
namespace {

constexpr int64_t kBlock = 32;  // tokens per unit: enough to reuse cache rows, small scratch
constexpr int64_t kOneTokenMinKeys = 512;  // see attention()

size_t align64(size_t n) { return (n + 63) & ~static_cast<size_t>(63); }

// Scratch of the one-token path: every head's prepared query, scores and prepared probabilities,
// shared by the threads (it lives in thread 0's share of the scratch).
size_t one_token_bytes(const kv_cache & kv, int n_head) {
    return align64(n_head * act_bytes(kv.type, kv.head_dim)) +
           align64(n_head * static_cast<size_t>(kv.n_ctx) * sizeof(float)) +
           align64(n_head * act_bytes(kv.type, kv.n_ctx));
}

// Row s of scores (a query head's, over the n_see keys its token sees) into probabilities: scaled,
// softmaxed, and prepared for weighted_rows (rounded to f16 for an f16 cache) at p. Both paths
// call it, so prompt and decoding give the same numbers.
void probabilities(const kv_cache & kv, float * s, int64_t n_see, float scale, uint8_t * p) {
    for (int64_t i = 0; i < n_see; i++) s[i] *= scale;
    softmax(s, n_see);
    act_prepare(kv.type, s, n_see, p);
}

// One token (decoding) with fewer (KV head, block) units than threads would leave threads idle
// (SmolLM2 has 3 KV heads for 2-16 threads). Instead, three passes, each split finely:
//   1. S = K_g · q for every KV head g and chunk of keys (the group's heads at once);
//   2. per query head: scale and softmax over all keys, probabilities prepared for the V product;
//   3. O = s · V_g for every KV head g and chunk of columns (dimensions).
// Every score is computed by the same kernel call shape as on the block path (a row of K against
// the group's activations), and weighted_rows' outputs do not depend on how its columns are split,
// so the numbers are those of the block path.
void attention_one_token(thread_pool & pool, int nth, const kv_cache & kv, int layer, int n_head, const float * q,
                         int32_t pos, float * out, uint8_t * scratch) {
    const int     hd       = kv.head_dim;
    const int     group    = n_head / kv.n_head_kv;
    const float   scale    = 1.0f / std::sqrt(static_cast<float>(hd));
    const size_t  q_stride = act_bytes(kv.type, hd);
    const size_t  s_stride = act_bytes(kv.type, kv.n_ctx);
    const int64_t lds      = kv.n_ctx;
    const int64_t n_see    = static_cast<int64_t>(pos) + 1;
    uint8_t * qa = scratch;
    float *   S  = reinterpret_cast<float *>(qa + align64(n_head * q_stride));
    uint8_t * sa = reinterpret_cast<uint8_t *>(S) + align64(n_head * static_cast<size_t>(kv.n_ctx) * sizeof(float));
    for (int h = 0; h < n_head; h++) act_prepare(kv.type, q + static_cast<int64_t>(h) * hd, hd, qa + h * q_stride);

    constexpr int64_t kKeys = 128;  // keys per unit of pass 1
    const int64_t     n_kc  = (n_see + kKeys - 1) / kKeys;
    pool.parallel_for(nth, kv.n_head_kv * n_kc, [&](int, int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; u++) {
            const int     g  = static_cast<int>(u / n_kc);
            const int64_t k0 = (u % n_kc) * kKeys;
            const int64_t k1 = k0 + kKeys < n_see ? k0 + kKeys : n_see;
            matmul(kv.type, kv.k_head(layer, g), kv.row_bytes(), qa + g * group * q_stride, q_stride, group, hd,
                   S + g * group * lds, lds, k0, k1);
        }
    });
    pool.parallel_for(nth, n_head, [&](int, int64_t h0, int64_t h1) {
        for (int64_t h = h0; h < h1; h++) probabilities(kv, S + h * lds, n_see, scale, sa + h * s_stride);
    });
    // Columns per unit of pass 3: a cache line of each V row (32 f16), so units share no line.
    const int64_t kCols = 64 / static_cast<int64_t>(kv.elt_size);
    const int64_t n_cc  = (hd + kCols - 1) / kCols;
    pool.parallel_for(nth, kv.n_head_kv * n_cc, [&](int, int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; u++) {
            const int     g  = static_cast<int>(u / n_cc);
            const int64_t c0 = (u % n_cc) * kCols;
            const int64_t c1 = c0 + kCols < hd ? c0 + kCols : hd;
            weighted_rows(kv.type, kv.v_head(layer, g) + c0 * kv.elt_size, kv.row_bytes(), n_see, c1 - c0,
                          reinterpret_cast<const float *>(sa + g * group * s_stride), s_stride / sizeof(float), group,
                          out + static_cast<int64_t>(g) * group * hd + c0, hd);
        }
    });
}

}  // namespace

size_t attention_scratch_bytes(const kv_cache & kv, int n_head) {
    const int64_t group = n_head / kv.n_head_kv;
    const size_t  q_act = align64(kBlock * group * act_bytes(kv.type, kv.head_dim));
    const size_t  s     = align64(kBlock * group * static_cast<size_t>(kv.n_ctx) * sizeof(float));
    const size_t  s_act = align64(group * act_bytes(kv.type, kv.n_ctx));
    const size_t  block = q_act + s + s_act;
    const size_t  one   = one_token_bytes(kv, n_head);
    return block > one ? block : one;
}

void attention(thread_pool & pool, int nth, const kv_cache & kv, int layer, int n_head, const float * q,
               int64_t n_tok, int32_t pos0, float * out, uint8_t * scratch) {
    const int     hd       = kv.head_dim;
    const int     group    = n_head / kv.n_head_kv;  // query heads per KV head
    const float   scale    = 1.0f / std::sqrt(static_cast<float>(hd));
    const int64_t n_q      = static_cast<int64_t>(n_head) * hd;
    const int64_t n_blocks = (n_tok + kBlock - 1) / kBlock;
    const size_t  per_thread = attention_scratch_bytes(kv, n_head);
    const size_t  q_stride = act_bytes(kv.type, hd);
    const size_t  s_stride = act_bytes(kv.type, kv.n_ctx);
    const int64_t lds      = kv.n_ctx;  // scores row stride
    // One token over many keys with few KV heads: the finer split (its three dispatches cost more
    // than the idle thread saves below a few hundred keys; measured on SmolLM2, 2 threads: 5% faster
    // at 1536 keys, 3-10% slower at 16; after values moved to rows by position, about even at
    // 100-200 keys, so the threshold stayed).
    if (n_tok == 1 && kv.n_head_kv < 2 * nth && pos0 + 1 >= kOneTokenMinKeys) {
        attention_one_token(pool, nth, kv, layer, n_head, q, pos0, out, scratch);
        return;
    }

    pool.parallel_for(nth, n_blocks * kv.n_head_kv, [&](int ith, int64_t u0, int64_t u1) {
        uint8_t * qa = scratch + ith * per_thread;
        float *   S  = reinterpret_cast<float *>(qa + align64(kBlock * group * q_stride));
        uint8_t * sa = reinterpret_cast<uint8_t *>(S) +
                       align64(kBlock * group * static_cast<size_t>(kv.n_ctx) * sizeof(float));
        for (int64_t u = u0; u < u1; u++) {
            const int     g  = static_cast<int>(u % kv.n_head_kv);
            const int64_t t0 = (u / kv.n_head_kv) * kBlock;
            const int64_t nb = n_tok - t0 < kBlock ? n_tok - t0 : kBlock;
            const int64_t nk = pos0 + t0 + nb;  // keys the block's last token sees

            // S = K_g · q for the block's tokens and g's query heads (heads g*group .. +group-1).
            for (int64_t b = 0; b < nb; b++) {
                const float * qt = q + (t0 + b) * n_q + static_cast<int64_t>(g) * group * hd;
                for (int j = 0; j < group; j++) act_prepare(kv.type, qt + j * hd, hd, qa + (b * group + j) * q_stride);
            }
            matmul(kv.type, kv.k_head(layer, g), kv.row_bytes(), qa, q_stride, nb * group, hd, S, lds, 0, nk);

            // Per token: each head's probabilities over the keys it sees, then the V rows weighted
            // by them, the group's heads at once. Token by token, so that a token's result does not
            // depend on how the batch was split: prompt and one-token decoding give the same numbers.
            for (int64_t b = 0; b < nb; b++) {
                const int64_t n_see = pos0 + t0 + b + 1;
                for (int j = 0; j < group; j++) {
                    probabilities(kv, S + (b * group + j) * lds, n_see, scale, sa + j * s_stride);
                }
                // out[t][g*group + j][c] = sum over positions i of s_j[i] * V_g[i][c].
                weighted_rows(kv.type, kv.v_head(layer, g), kv.row_bytes(), n_see, hd,
                              reinterpret_cast<const float *>(sa), s_stride / sizeof(float), group,
                              out + (t0 + b) * n_q + static_cast<int64_t>(g) * group * hd, hd);
            }
        }
    });
}

}  // namespace pi
