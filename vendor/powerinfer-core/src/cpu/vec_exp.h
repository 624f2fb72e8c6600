// vec_exp.h - row passes that need exp: the softmax of attention and SwiGLU's silu, vectorized
// (vec_exp.cpp). A library expf per element made softmax 11% of a decode step at 1536 positions
// of SmolLM2 (9 heads x 30 layers x 1536 exps per token).
#pragma once

#include <cstdint>

namespace pi {

// exp(x) for x in [-87, 88] (clamped there), relative error under 3e-6 (cpu/exp_poly.h). Scalar
// form of what the row passes compute.
float exp_approx(float x);

// x[0..n) = softmax(x[0..n)) in place (max subtracted; the sum in double).
void softmax_row(float * x, int64_t n);

// g[i] = silu(g[i]) * u[i] = g[i] / (1 + exp(-g[i])) * u[i] for i in [0, n).
void silu_mul_row(float * g, const float * u, int64_t n);

}  // namespace pi
