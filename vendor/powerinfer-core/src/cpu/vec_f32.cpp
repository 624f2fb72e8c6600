// vec_f32.cpp - the small f32 vector helpers of the forward pass (dot products, and the weighted
// sum of value rows of attention): scalar versions, and the entry points that dispatch to the SIMD
// ones of the chosen ISA (vec_f32_avx2.cpp, vec_f32_avx512.cpp).
#include "core/types.h"
#include "powerinfer.h"
#include "cpu/dot.h"
#include "cpu/kernels.h"

#include <cmath>

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

float f16_value(uint16_t h) { return fp16_to_fp32(h); }
float f32_value(float v) { return v; }

// The reference the SIMD versions must equal bit for bit: per output, fma over r in order.
template <class A, float (*value)(A)>
void weighted_rows_scalar(const A * V, int64_t ld, int64_t n_rows, int64_t n_cols, const float * p, int64_t ldp,
                          int nb, float * out, int64_t ldo) {
    for (int b = 0; b < nb; b++) {
        for (int64_t c = 0; c < n_cols; c++) out[b * ldo + c] = 0.0f;
    }
    for (int64_t r = 0; r < n_rows; r++) {
        const A * v = V + r * ld;
        for (int b = 0; b < nb; b++) {
            const float pb = p[b * ldp + r];
            float *     o  = out + b * ldo;
            for (int64_t c = 0; c < n_cols; c++) o[c] = std::fma(pb, value(v[c]), o[c]);
        }
    }
}

void round_f16_scalar(float * x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
}

void to_f16_scalar(const float * x, int64_t n, uint16_t * h) {
    for (int64_t i = 0; i < n; i++) h[i] = fp32_to_fp16(x[i]);
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
    t.weighted_rows_f16 = weighted_rows_scalar<uint16_t, f16_value>;
    t.weighted_rows_f32 = weighted_rows_scalar<float, f32_value>;
    t.round_f16    = round_f16_scalar;
    t.to_f16       = to_f16_scalar;
}

float dot_f32(const float * a, const float * b, int64_t n) { return dot_table_current().dot_f32(a, b, n); }
float dot_f16_f32(const uint16_t * a, const float * b, int64_t n) { return dot_table_current().dot_f16_f32(a, b, n); }
void to_f16(const float * x, int64_t n, uint16_t * h) { dot_table_current().to_f16(x, n, h); }
void weighted_rows(int32_t vtype, const void * V, size_t row_bytes, int64_t n_rows, int64_t n_cols, const float * p,
                   int64_t ldp, int nb, float * out, int64_t ldo) {
    const dot_table & t = dot_table_current();
    if (vtype == PI_TYPE_F16) {
        t.weighted_rows_f16(static_cast<const uint16_t *>(V), static_cast<int64_t>(row_bytes / 2), n_rows, n_cols, p,
                            ldp, nb, out, ldo);
    } else {
        t.weighted_rows_f32(static_cast<const float *>(V), static_cast<int64_t>(row_bytes / 4), n_rows, n_cols, p, ldp,
                            nb, out, ldo);
    }
}

}  // namespace pi
