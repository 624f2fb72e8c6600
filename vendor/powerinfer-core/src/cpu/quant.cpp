// quant.cpp - pi::dequantize and pi::quantize: a table from type id to the row converters of
// quant_rows.h. The public entry points (api/quantize_api.cpp) validate type and n first.
#include "cpu/kernels.h"
#include "cpu/quant_rows.h"

namespace pi {

namespace {

typedef void (*dequantize_fn)(const void * src, float * dst, int64_t n);
typedef void (*quantize_fn)(const float * src, void * dst, int64_t n);

struct converters {
    dequantize_fn to_float;
    quantize_fn   from_float;  // nullptr: no quantizer for this type
};

converters converters_for(int32_t type) {
    switch (type) {
        case PI_TYPE_F32:  return {dequantize_row_f32, quantize_row_f32};
        case PI_TYPE_F16:  return {dequantize_row_f16, quantize_row_f16};
        case PI_TYPE_BF16: return {dequantize_row_bf16, quantize_row_bf16};
        case PI_TYPE_Q4_0: return {dequantize_row_q4_0, quantize_row_q4_0};
        case PI_TYPE_Q4_1: return {dequantize_row_q4_1, quantize_row_q4_1};
        case PI_TYPE_Q5_0: return {dequantize_row_q5_0, quantize_row_q5_0};
        case PI_TYPE_Q5_1: return {dequantize_row_q5_1, quantize_row_q5_1};
        case PI_TYPE_Q8_0: return {dequantize_row_q8_0, quantize_row_q8_0};
        case PI_TYPE_Q8_1: return {dequantize_row_q8_1, quantize_row_q8_1};
        case PI_TYPE_Q2_K: return {dequantize_row_q2_K, quantize_row_q2_K};
        case PI_TYPE_Q3_K: return {dequantize_row_q3_K, quantize_row_q3_K};
        case PI_TYPE_Q4_K: return {dequantize_row_q4_K, quantize_row_q4_K};
        case PI_TYPE_Q5_K: return {dequantize_row_q5_K, quantize_row_q5_K};
        case PI_TYPE_Q6_K: return {dequantize_row_q6_K, quantize_row_q6_K};
        case PI_TYPE_Q8_K: return {dequantize_row_q8_K, quantize_row_q8_K};
        default:           return {nullptr, nullptr};
    }
}

}  // namespace

bool can_dequantize(int32_t type) { return converters_for(type).to_float != nullptr; }
bool can_quantize(int32_t type) { return converters_for(type).from_float != nullptr; }

void dequantize(int32_t type, const void * src, float * dst, int64_t n) {
    const converters c = converters_for(type);
    if (c.to_float) c.to_float(src, dst, n);
}

bool quantize(int32_t type, const float * src, void * dst, int64_t n) {
    const converters c = converters_for(type);
    if (!c.from_float) return false;
    c.from_float(src, dst, n);
    return true;
}

}  // namespace pi
