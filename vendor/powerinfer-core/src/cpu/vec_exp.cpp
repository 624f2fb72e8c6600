// vec_exp.cpp - softmax and silu rows with a polynomial exp that vectorizes (vec_exp.h).
//
// The library is compiled for the portable baseline; these loops are built three times on x86-64
// Linux (AVX-512, AVX2, baseline: GCC/Clang function multiversioning) and the loader picks one. The
// element-wise arithmetic is the same IEEE operations in the same order in every clone (ISO C++
// mode: no FMA contraction), and the sums run in eight fixed lanes, so every clone gives the same
// bits. CMakeLists.txt compiles this file with -fno-trapping-math, without which the clamps do not
// vectorize (no result changes).
#include "cpu/vec_exp.h"

#include "cpu/exp_poly.h"

#include <cstring>

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#define PI_ROW_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define PI_ROW_CLONES
#endif

namespace pi {

namespace {

PI_ROW_CLONES float max_row(const float * x, int64_t n) {
    float lanes[8];
    for (int j = 0; j < 8; j++) lanes[j] = -3.0e38f;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) lanes[j] = x[i + j] > lanes[j] ? x[i + j] : lanes[j];
    float mx = -3.0e38f;
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int j = 0; j < 8; j++) mx = lanes[j] > mx ? lanes[j] : mx;
    return mx;
}

// x[i] = exp(x[i] - mx); returns the sum (eight float lanes, then double).
PI_ROW_CLONES double exp_sub_sum(float * x, int64_t n, float mx) {
    float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) {
            float e;
            PI_EXP_POLY(x[i + j] - mx, e);
            x[i + j] = e;
            lanes[j] += e;
        }
    }
    double sum = 0.0;
    for (; i < n; i++) {
        float e;
        PI_EXP_POLY(x[i] - mx, e);
        x[i] = e;
        sum += e;
    }
    for (int j = 0; j < 8; j++) sum += lanes[j];
    return sum;
}

PI_ROW_CLONES void scale_row(float * x, int64_t n, float f) {
    for (int64_t i = 0; i < n; i++) x[i] *= f;
}

PI_ROW_CLONES void silu_mul_clones(float * g, const float * u, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float e;
        PI_EXP_POLY(-g[i], e);
        g[i] = g[i] / (1.0f + e) * u[i];
    }
}

}  // namespace

float exp_approx(float x) {
    float e;
    PI_EXP_POLY(x, e);
    return e;
}

void softmax_row(float * x, int64_t n) {
    if (n <= 0) return;
    const float  mx  = max_row(x, n);
    const double sum = exp_sub_sum(x, n, mx);
    scale_row(x, n, static_cast<float>(1.0 / sum));
}

void silu_mul_row(float * g, const float * u, int64_t n) { silu_mul_clones(g, u, n); }

}  // namespace pi
