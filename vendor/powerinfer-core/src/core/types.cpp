// types.cpp - the table of GGUF tensor types and the scalar half-precision conversions.
#include "core/types.h"

#include <cstring>

namespace pi {

namespace {

const type_info k_unknown = {nullptr, 0, 0};

// Indexed by GGUF type id. Block layouts are those of the GGUF format (QK_K = 256 for K-quants).
const type_info k_types[] = {
    /*  0 */ {"F32", 1, 4},
    /*  1 */ {"F16", 1, 2},
    /*  2 */ {"Q4_0", 32, 18},
    /*  3 */ {"Q4_1", 32, 20},
    /*  4 */ {nullptr, 0, 0},  // Q4_2, removed from the format
    /*  5 */ {nullptr, 0, 0},  // Q4_3, removed from the format
    /*  6 */ {"Q5_0", 32, 22},
    /*  7 */ {"Q5_1", 32, 24},
    /*  8 */ {"Q8_0", 32, 34},
    /*  9 */ {"Q8_1", 32, 36},
    /* 10 */ {"Q2_K", 256, 84},
    /* 11 */ {"Q3_K", 256, 110},
    /* 12 */ {"Q4_K", 256, 144},
    /* 13 */ {"Q5_K", 256, 176},
    /* 14 */ {"Q6_K", 256, 210},
    /* 15 */ {"Q8_K", 256, 292},
    /* 16 */ {"IQ2_XXS", 256, 66},
    /* 17 */ {"IQ2_XS", 256, 74},
    /* 18 */ {"IQ3_XXS", 256, 98},
    /* 19 */ {"IQ1_S", 256, 50},
    /* 20 */ {"IQ4_NL", 32, 18},
    /* 21 */ {"IQ3_S", 256, 110},
    /* 22 */ {"IQ2_S", 256, 82},
    /* 23 */ {"IQ4_XS", 256, 136},
    /* 24 */ {"I8", 1, 1},
    /* 25 */ {"I16", 1, 2},
    /* 26 */ {"I32", 1, 4},
    /* 27 */ {"I64", 1, 8},
    /* 28 */ {"F64", 1, 8},
    /* 29 */ {"IQ1_M", 256, 56},
    /* 30 */ {"BF16", 1, 2},
};

}  // namespace

const type_info & type_get(int32_t type) {
    if (type < 0 || type >= (int32_t)(sizeof(k_types) / sizeof(k_types[0]))) return k_unknown;
    return k_types[type];
}

int64_t type_row_bytes(int32_t type, int64_t n) {
    const type_info & t = type_get(type);
    if (!t.name || n < 0 || n % t.block_size != 0) return -1;
    int64_t bytes;
    if (__builtin_mul_overflow(n / t.block_size, t.block_bytes, &bytes)) return -1;  // lengths from files
    return bytes;
}

float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    uint32_t exp  = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise it
            exp = 127 - 15 + 1;
            while ((mant & 0x400) == 0) { mant <<= 1; exp--; }
            mant &= 0x3ff;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);  // inf or nan
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t fp32_to_fp16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000;
    const uint32_t abs  = x & 0x7fffffff;
    if (abs >= 0x7f800000u) {  // inf or nan
        return static_cast<uint16_t>(sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0));
    }
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00);  // overflows to inf
    if (abs < 0x38800000u) {  // result is subnormal or zero: round to nearest even
        if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
        const uint32_t e     = abs >> 23;
        const uint32_t m     = (abs & 0x7fffff) | 0x800000;
        const uint32_t shift = 126 - e;  // 14 + (112 - e) ... bits to drop
        uint32_t       r     = m >> (shift);
        const uint32_t rem   = m & ((1u << shift) - 1);
        const uint32_t half  = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return static_cast<uint16_t>(sign | r);
    }
    // normal: rebias exponent, round mantissa to nearest even
    uint32_t r = ((abs - 0x38000000u) >> 13);
    const uint32_t rem = abs & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return static_cast<uint16_t>(sign | r);
}

uint16_t fp32_to_bf16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // quiet nan
    x += 0x7fff + ((x >> 16) & 1);  // round to nearest even
    return static_cast<uint16_t>(x >> 16);
}

}  // namespace pi

extern "C" {

const char * pi_type_name(int32_t type) { return pi::type_get(type).name; }
int64_t pi_type_block_size(int32_t type) { return pi::type_get(type).block_size; }
int64_t pi_type_block_bytes(int32_t type) { return pi::type_get(type).block_bytes; }

}  // extern "C"
