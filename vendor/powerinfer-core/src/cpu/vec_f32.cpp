// vec_f32.cpp - the small f32 vector helpers of the forward pass (dot products and axpy over the
// KV cache and residual stream): scalar versions, and the entry points that dispatch to the SIMD
// ones of the chosen ISA (vec_f32_avx2.cpp, vec_f32_avx512.cpp).
#include "core/types.h"
#include "powerinfer.h"
#include "cpu/dot.h"
#include "cpu/kernels.h"

namespace pi {

namespace {

float dot_f32_scalar(const float * a, const float * b, int64_t n) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

float dot_f16_f32_scalar(const uint16_t * a, const float * b, int64_t n) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++) acc += fp16_to_fp32(a[i]) * b[i];
    return acc;
}

void axpy_f16_f32_scalar(float * y, float a, const uint16_t * x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * fp16_to_fp32(x[i]);
}

void axpy_f32_scalar(float * y, float a, const float * x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void round_f16_scalar(float * x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
}

// F32 and F16 weight rows against an ACT_F32 activation are these same dot products.
float dot_f32_row(int64_t n, const void * w, const void * x) {
    return dot_f32_scalar(static_cast<const float *>(w), static_cast<const float *>(x), n);
}
float dot_f16_row(int64_t n, const void * w, const void * x) {
    return dot_f16_f32_scalar(static_cast<const uint16_t *>(w), static_cast<const float *>(x), n);
}

}  // namespace

void vec_f32_fill_scalar(dot_table & t) {
    t.dot[PI_TYPE_F32]  = dot_f32_row;
    t.dot[PI_TYPE_F16]  = dot_f16_row;
    t.dot_f32      = dot_f32_scalar;
    t.dot_f16_f32  = dot_f16_f32_scalar;
    t.axpy_f16_f32 = axpy_f16_f32_scalar;
    t.axpy_f32     = axpy_f32_scalar;
    t.round_f16    = round_f16_scalar;
}

float dot_f32(const float * a, const float * b, int64_t n) { return dot_table_current().dot_f32(a, b, n); }
float dot_f16_f32(const uint16_t * a, const float * b, int64_t n) { return dot_table_current().dot_f16_f32(a, b, n); }
void axpy_f16_f32(float * y, float a, const uint16_t * x, int64_t n) { dot_table_current().axpy_f16_f32(y, a, x, n); }
void axpy_f32(float * y, float a, const float * x, int64_t n) { dot_table_current().axpy_f32(y, a, x, n); }

}  // namespace pi
