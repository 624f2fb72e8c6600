// rope.cpp - RoPE angle tables (none / linear / YaRN scaling, optional frequency factors) and the
// pairwise rotation.
#include "run/rope.h"

#include "model/llm.h"

#include <algorithm>
#include <cmath>

namespace pi {
namespace {

// YaRN: the dimension at which a rotation completes n_rot_per_ctx turns over the original context.
float yarn_corr_dim(int n_rot, int n_ctx_orig, float n_turns, float base) {
    return n_rot * std::log(n_ctx_orig / (n_turns * 2.0f * static_cast<float>(M_PI))) / (2.0f * std::log(base));
}

// 1 below `low` (extrapolate: keep the original frequency), 0 above `high` (interpolate).
float yarn_ramp(float low, float high, int i) {
    const float y = (i - low) / std::max(0.001f, high - low);
    return 1.0f - std::min(1.0f, std::max(0.0f, y));
}

}  // namespace

void rope_table(const llm_model & m, const int32_t * pos, int64_t n_tok, float * cos_out, float * sin_out) {
    const llm_hparams & hp = m.hp;
    const int   half        = hp.n_rot / 2;
    const float theta_scale = std::pow(hp.rope_base, -2.0f / hp.n_rot);
    const float freq_scale  = hp.rope_freq_scale;

    float corr_low = 0.0f, corr_high = 0.0f, mscale = 1.0f;
    const float ext_factor = hp.rope_scaling == ROPE_SCALING_YARN ? hp.yarn_ext_factor : 0.0f;
    if (hp.rope_scaling == ROPE_SCALING_YARN) {
        corr_low  = std::max(0.0f, std::floor(yarn_corr_dim(hp.n_rot, hp.rope_n_ctx_orig, hp.yarn_beta_fast, hp.rope_base)));
        corr_high = std::min(hp.n_rot - 1.0f, std::ceil(yarn_corr_dim(hp.n_rot, hp.rope_n_ctx_orig, hp.yarn_beta_slow, hp.rope_base)));
        mscale    = hp.yarn_attn_factor;
        if (ext_factor != 0.0f) mscale *= 1.0f + 0.1f * std::log(1.0f / freq_scale);
    }

    for (int64_t t = 0; t < n_tok; t++) {
        float * c = cos_out + t * half;
        float * s = sin_out + t * half;
        float theta_base = static_cast<float>(pos[t]);  // pos * theta_scale^i, built up pair by pair
        for (int i = 0; i < half; i++) {
            const float theta_extrap = m.rope_freqs ? theta_base / m.rope_freqs[i] : theta_base;
            float theta = freq_scale * theta_extrap;
            if (ext_factor != 0.0f) {
                const float mix = yarn_ramp(corr_low, corr_high, i) * ext_factor;
                theta = theta * (1.0f - mix) + theta_extrap * mix;
            }
            c[i] = std::cos(theta) * mscale;
            s[i] = std::sin(theta) * mscale;
            theta_base *= theta_scale;
        }
    }
}

void rope_apply(float * x, int n_heads, int head_dim, int n_rot, const float * cos_t, const float * sin_t) {
    const int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float * xh = x + static_cast<int64_t>(h) * head_dim;
        for (int i = 0; i < half; i++) {
            const float x0 = xh[2 * i], x1 = xh[2 * i + 1];
            xh[2 * i]     = x0 * cos_t[i] - x1 * sin_t[i];
            xh[2 * i + 1] = x0 * sin_t[i] + x1 * cos_t[i];
        }
    }
}

void rope_apply_neox(float * x, int n_heads, int head_dim, int n_rot, const float * cos_t, const float * sin_t) {
    const int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float * xh = x + static_cast<int64_t>(h) * head_dim;
        for (int i = 0; i < half; i++) {
            const float x0 = xh[i], x1 = xh[i + half];
            xh[i]        = x0 * cos_t[i] - x1 * sin_t[i];
            xh[i + half] = x0 * sin_t[i] + x1 * cos_t[i];
        }
    }
}

}  // namespace pi
