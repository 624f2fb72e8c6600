// norm.cpp - RMSNorm, SwiGLU and softmax on f32 rows.
#include "run/norm.h"

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
    for (int64_t i = i0; i < i1; i++) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void softmax(float * x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = std::exp(x[i] - mx);
        sum += x[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

}  // namespace pi
