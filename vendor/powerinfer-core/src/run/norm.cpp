// norm.cpp - RMSNorm, SwiGLU and softmax on f32 rows (the exp passes in cpu/vec_exp.cpp).
#include "run/norm.h"

#include "cpu/vec_exp.h"

#include <cmath>

namespace pi {

void rmsnorm(float * out, const float * x, const float * w, int64_t n, float eps) {
    double ss = 0.0;  // double: 4k-wide rows of large activations lose digits in f32
    for (int64_t i = 0; i < n; i++) ss += static_cast<double>(x[i]) * x[i];
    const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

void layernorm(float * out, const float * x, const float * w, const float * b, int64_t n, float eps) {
    double sum = 0.0;  // double, as in rmsnorm
    for (int64_t i = 0; i < n; i++) sum += x[i];
    const float mean = static_cast<float>(sum / n);
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += static_cast<double>(x[i] - mean) * (x[i] - mean);
    const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
    for (int64_t i = 0; i < n; i++) out[i] = (x[i] - mean) * scale * w[i] + b[i];
}

void silu_mul(float * g, const float * u, int64_t i0, int64_t i1) {
    if (i1 > i0) silu_mul_row(g + i0, u + i0, i1 - i0);
}

void softmax(float * x, int64_t n) { softmax_row(x, n); }

}  // namespace pi
