// quant_policy.cpp - per-tensor type choice of the model quantizer (see quant_policy.h).
#include "cpu/quant_policy.h"

#include "core/status.h"
#include "core/types.h"
#include "cpu/quant_rows.h"

namespace pi {

namespace {

bool ends_with(const std::string & s, const char * suffix) {
    const std::string t(suffix);
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

bool fits(int32_t type, int64_t ne0) { return ne0 % type_get(type).block_size == 0; }

// Types under 6 bits per weight, for which the output head is raised to Q6_K.
bool is_low_bit(int32_t type) {
    switch (type) {
        case PI_TYPE_Q2_K: case PI_TYPE_Q3_K: case PI_TYPE_Q4_0: case PI_TYPE_Q4_1:
        case PI_TYPE_Q4_K: case PI_TYPE_Q5_0: case PI_TYPE_Q5_1: case PI_TYPE_Q5_K:
            return true;
        default:
            return false;
    }
}

// The block-of-32 type of about the same size, for rows that are not a multiple of 256.
int32_t small_block_equivalent(int32_t type) {
    switch (type) {
        case PI_TYPE_Q2_K: case PI_TYPE_Q3_K: return PI_TYPE_Q4_0;
        case PI_TYPE_Q4_K: return PI_TYPE_Q5_0;
        case PI_TYPE_Q5_K: return PI_TYPE_Q5_1;
        case PI_TYPE_Q6_K: return PI_TYPE_Q8_0;
        default:           return type;
    }
}

}  // namespace

bool is_model_target_type(int32_t type) { return file_type_for(type) >= 0; }

const char * model_target_type_list() {
    return "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K";
}

int32_t file_type_for(int32_t type) {
    switch (type) {
        case PI_TYPE_F32:  return 0;
        case PI_TYPE_F16:  return 1;
        case PI_TYPE_Q4_0: return 2;
        case PI_TYPE_Q4_1: return 3;
        case PI_TYPE_Q8_0: return 7;
        case PI_TYPE_Q5_0: return 8;
        case PI_TYPE_Q5_1: return 9;
        case PI_TYPE_Q2_K: return 10;
        case PI_TYPE_Q3_K: return 11;
        case PI_TYPE_Q4_K: return 14;
        case PI_TYPE_Q5_K: return 16;
        case PI_TYPE_Q6_K: return 18;
        case PI_TYPE_BF16: return 32;
        default:           return -1;
    }
}

tensor_choice choose_tensor_type(const std::string & name, int32_t src_type, int32_t n_dims,
                                 int64_t ne0, int32_t target, bool is_output_head,
                                 bool quantize_output) {
    const bool is_matrix = n_dims >= 2 && ends_with(name, ".weight") &&
                           name.find("norm") == std::string::npos &&
                           name.find("ffn_gate_inp") == std::string::npos;
    const bool is_float_data = src_type < PI_TYPE_I8 || src_type > PI_TYPE_F64;  // not I8..I64, F64
    if (!is_matrix || !is_float_data || ne0 <= 0) return {src_type, false, ""};
    if (!can_dequantize(src_type)) {
        return {src_type, false, strprintf("source type %s cannot be read, copied as-is",
                                           type_get(src_type).name ? type_get(src_type).name : "?")};
    }
    if (is_output_head && !quantize_output) return {src_type, false, "output head left as in the source"};

    int32_t     want = target;
    std::string reason;
    if (is_output_head && is_low_bit(target)) {
        want   = PI_TYPE_Q6_K;
        reason = "output head kept at Q6_K or better";
    }
    if (!fits(want, ne0)) {
        const int32_t candidates[3] = {small_block_equivalent(want), PI_TYPE_Q8_0, PI_TYPE_F16};
        for (int32_t c : candidates) {
            if (fits(c, ne0)) {
                if (!reason.empty()) reason += "; ";
                reason += strprintf("rows of %lld are not a multiple of the %s block (%lld)",
                                    (long long)ne0, type_get(want).name,
                                    (long long)type_get(want).block_size);
                want = c;
                break;
            }
        }
    }
    if (want == src_type) return {src_type, false, reason};
    return {want, true, reason};
}

}  // namespace pi
