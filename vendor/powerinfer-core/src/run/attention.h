// attention.h - causal multi-head attention over the KV cache, with grouped-query heads.
#pragma once

#include "run/kv_cache.h"
#include "run/threadpool.h"

#include <cstddef>
#include <cstdint>

namespace pi {

// For each token t of the batch (at position pos0 + t) and each query head h:
//     out[t][h] = sum_j softmax_j(q[t][h] . K[g][j] / sqrt(head_dim)) V[g][j],  j in [0, pos0 + t]
// where g = h / (n_head / n_head_kv) is the KV head the query head shares. q and out are
// [n_tok][n_head][head_dim]; the batch's keys and values must already be in the cache.
// scratch holds attention_scratch_bytes(kv, n_head) bytes per thread of the pool.
void attention(thread_pool & pool, int nth, const kv_cache & kv, int layer, int n_head, const float * q,
               int64_t n_tok, int32_t pos0, float * out, uint8_t * scratch);

size_t attention_scratch_bytes(const kv_cache & kv, int n_head);

}  // namespace pi
