// exp_poly.h - the polynomial exp both row-pass files inline into their per-ISA clones
// (cpu/vec_exp.cpp: softmax and silu; sample/sampler.cpp: the sampler's exps). A macro rather than
// a function: a helper would not be inlined into GCC's target_clones.
//
// out = exp(x) for x in [-87, 88] (clamped there), relative error under 3e-6: 2^t = 2^i * 2^f,
// i = trunc(t), f = t - i in (-1, 1), with a degree-7 Taylor polynomial for 2^f. Needs <cstring>
// and <cstdint>.
#pragma once

#define PI_EXP_POLY(x_in, out)                                  \
    do {                                                        \
        float x_ = (x_in);                                      \
        x_ = x_ < -87.0f ? -87.0f : x_;                         \
        x_ = x_ > 88.0f ? 88.0f : x_;                           \
        const float   t_ = x_ * 1.4426950409f;                  \
        const int32_t i_ = (int32_t)t_;                         \
        const float   f_ = t_ - (float)i_;                      \
        float p_ = 1.525273e-5f;                                \
        p_ = p_ * f_ + 1.540353e-4f;                            \
        p_ = p_ * f_ + 1.333355e-3f;                            \
        p_ = p_ * f_ + 9.618129e-3f;                            \
        p_ = p_ * f_ + 5.550411e-2f;                            \
        p_ = p_ * f_ + 2.402265e-1f;                            \
        p_ = p_ * f_ + 6.931472e-1f;                            \
        p_ = p_ * f_ + 1.0f;                                    \
        const uint32_t bits_ = (uint32_t)(i_ + 127) << 23;      \
        float s_;                                               \
        std::memcpy(&s_, &bits_, sizeof(s_));                   \
        (out) = p_ * s_;                                        \
    } while (0)
