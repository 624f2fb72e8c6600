// norm.h - the element-wise steps of a block: RMS and layer normalisation, SwiGLU, softmax.
#pragma once

#include <cstdint>

namespace pi {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i], for i < n. out may equal x.
void rmsnorm(float * out, const float * x, const float * w, int64_t n, float eps);

// out[i] = (x[i] - mean(x)) / sqrt(var(x) + eps) * w[i] + b[i], for i < n (LayerNorm). out may equal x.
void layernorm(float * out, const float * x, const float * w, const float * b, int64_t n, float eps);

// g[i] = silu(g[i]) * u[i] = g[i] / (1 + exp(-g[i])) * u[i], for i in [i0, i1).
void silu_mul(float * g, const float * u, int64_t i0, int64_t i1);

// x[0..n) = softmax(x[0..n)) in place.
void softmax(float * x, int64_t n);

}  // namespace pi
