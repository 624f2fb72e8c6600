// kv_cache.h - the keys and values of every position a context has seen.
//
// Cell p holds position p (the cache is a plain window of n_ctx positions; prefix reuse truncates
// it). Per layer and KV head, keys and values are both stored by position:
//     K[layer][kv_head][pos][head_dim],   V[layer][kv_head][pos][head_dim]
// so that attention reads each one front to back, one contiguous block per head: scores = K · q
// (one K row per position, dotted with the query), out = sum over positions of p_pos * V row
// (weighted_rows). Values stored by dimension instead (rows of n_ctx, as the product V · p would
// like) made decoding read head_dim short runs n_ctx elements apart, at a third of the rate.
// Elements are f16 (default) or f32. The memory comes from calloc, so pages never written are never
// resident.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pi {

struct kv_cache {
    int32_t type      = 0;  // PI_TYPE_F16 or PI_TYPE_F32
    int32_t n_layer   = 0;
    int32_t n_head_kv = 0;
    int32_t head_dim  = 0;
    int32_t n_ctx     = 0;
    int32_t n_pos     = 0;  // positions [0, n_pos) are valid
    size_t  elt_size  = 0;  // 2 or 4
    uint8_t * k = nullptr;
    uint8_t * v = nullptr;

    kv_cache() = default;
    ~kv_cache();
    kv_cache(const kv_cache &) = delete;
    kv_cache & operator=(const kv_cache &) = delete;

    // Allocates the cache; false when out of memory.
    bool init(int32_t type, int32_t n_layer, int32_t n_head_kv, int32_t head_dim, int32_t n_ctx);

    // Bytes of a K or V row (one position), and of one head's K or V block.
    size_t row_bytes() const { return static_cast<size_t>(head_dim) * elt_size; }
    size_t head_bytes() const { return row_bytes() * static_cast<size_t>(n_ctx); }

    uint8_t * k_head(int layer, int h) const { return k + (static_cast<size_t>(layer) * n_head_kv + h) * head_bytes(); }
    uint8_t * v_head(int layer, int h) const { return v + (static_cast<size_t>(layer) * n_head_kv + h) * head_bytes(); }

    // Writes the keys and values of one token at position pos: kt, vt are [n_head_kv][head_dim].
    void store(int layer, int32_t pos, const float * kt, const float * vt);
};

}  // namespace pi
