// kv_cache.cpp - allocation and writes of the KV cache (layout in kv_cache.h).
#include "run/kv_cache.h"

#include "core/types.h"
#include "cpu/kernels.h"
#include "powerinfer.h"

#include <cstdlib>
#include <cstring>

namespace pi {

kv_cache::~kv_cache() {
    std::free(k);
    std::free(v);
}

bool kv_cache::init(int32_t type_, int32_t n_layer_, int32_t n_head_kv_, int32_t head_dim_, int32_t n_ctx_) {
    type      = type_;
    n_layer   = n_layer_;
    n_head_kv = n_head_kv_;
    head_dim  = head_dim_;
    n_ctx     = n_ctx_;
    n_pos     = 0;
    elt_size  = type == PI_TYPE_F32 ? 4 : 2;
    const size_t bytes = static_cast<size_t>(n_layer) * n_head_kv * head_bytes();
    k = static_cast<uint8_t *>(std::calloc(bytes, 1));
    v = static_cast<uint8_t *>(std::calloc(bytes, 1));
    return k && v;
}

void kv_cache::store(int layer, int32_t pos, const float * kt, const float * vt) {
    for (int h = 0; h < n_head_kv; h++) {
        const float * ks = kt + static_cast<size_t>(h) * head_dim;
        const float * vs = vt + static_cast<size_t>(h) * head_dim;
        uint8_t * kd = k_head(layer, h) + static_cast<size_t>(pos) * row_bytes();
        uint8_t * vd = v_head(layer, h) + static_cast<size_t>(pos) * row_bytes();
        if (type == PI_TYPE_F32) {
            std::memcpy(kd, ks, row_bytes());
            std::memcpy(vd, vs, row_bytes());
        } else {
            to_f16(ks, head_dim, reinterpret_cast<uint16_t *>(kd));
            to_f16(vs, head_dim, reinterpret_cast<uint16_t *>(vd));
        }
    }
}

}  // namespace pi
