// dot_scalar.cpp - the reference dot product of one weight row with a prepared activation, per
// weight type. Plain loops, one block at a time: the oracle the SIMD paths are tested against, and
// the path for CPUs without them.
//
// Every quantized product has the same shape. A weight block holds integers q_i with a scale d (and
// for some types an offset m), the activation block integers a_i with scale dx, so
//     sum_i (d * q_i + m) * (dx * a_i) = d * dx * sum_i q_i * a_i  +  m * dx * sum_i a_i
// The integer sum is exact; dx * sum_i a_i is the s (ACT_Q8) or bsums (ACT_Q8K) of the activation.
#include "core/types.h"
#include "cpu/blocks.h"
#include "cpu/dot.h"

#include <cstring>

namespace pi {

namespace {

// ---- blocks of 32 against ACT_Q8 ------------------------------------------------------------

// The 32 integers of a 4-bit block: qs[j] low nibble is value j, high nibble value j + 16.
inline void unpack_nibbles(const uint8_t * qs, int q[32]) {
    for (int j = 0; j < 16; j++) {
        q[j]      = qs[j] & 0x0f;
        q[j + 16] = qs[j] >> 4;
    }
}

// Adds the fifth bit: bit j of qh (little-endian u32) is bit 4 of value j.
inline void add_high_bits(const uint8_t * qh4, int q[32]) {
    uint32_t qh;
    std::memcpy(&qh, qh4, 4);
    for (int j = 0; j < 32; j++) q[j] |= ((qh >> j) & 1) << 4;
}

inline int dot32(const int q[32], const int8_t * a) {
    int sum = 0;
    for (int j = 0; j < 32; j++) sum += q[j] * a[j];
    return sum;
}

float dot_q4_0(int64_t n, const void * w, const void * xq) {
    const block_q4_0 * b  = static_cast<const block_q4_0 *>(w);
    const int8_t *     a  = act_q8_values(xq);
    const float *      ds = act_q8_scales(xq, n);
    float acc = 0.0f;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        int q[32];
        unpack_nibbles(b[i].qs, q);
        for (int j = 0; j < 32; j++) q[j] -= 8;
        acc += fp16_to_fp32(b[i].d) * ds[2 * i] * (float)dot32(q, a + i * 32);
    }
    return acc;
}

float dot_q4_1(int64_t n, const void * w, const void * xq) {
    const block_q4_1 * b  = static_cast<const block_q4_1 *>(w);
    const int8_t *     a  = act_q8_values(xq);
    const float *      ds = act_q8_scales(xq, n);
    float acc = 0.0f;
    for (int64_t i = 0; i < n / QK4_1; i++) {
        int q[32];
        unpack_nibbles(b[i].qs, q);
        acc += fp16_to_fp32(b[i].d) * ds[2 * i] * (float)dot32(q, a + i * 32)
             + fp16_to_fp32(b[i].m) * ds[2 * i + 1];
    }
    return acc;
}

float dot_q5_0(int64_t n, const void * w, const void * xq) {
    const block_q5_0 * b  = static_cast<const block_q5_0 *>(w);
    const int8_t *     a  = act_q8_values(xq);
    const float *      ds = act_q8_scales(xq, n);
    float acc = 0.0f;
    for (int64_t i = 0; i < n / QK5_0; i++) {
        int q[32];
        unpack_nibbles(b[i].qs, q);
        add_high_bits(b[i].qh, q);
        for (int j = 0; j < 32; j++) q[j] -= 16;
        acc += fp16_to_fp32(b[i].d) * ds[2 * i] * (float)dot32(q, a + i * 32);
    }
    return acc;
}

float dot_q5_1(int64_t n, const void * w, const void * xq) {
    const block_q5_1 * b  = static_cast<const block_q5_1 *>(w);
    const int8_t *     a  = act_q8_values(xq);
    const float *      ds = act_q8_scales(xq, n);
    float acc = 0.0f;
    for (int64_t i = 0; i < n / QK5_1; i++) {
        int q[32];
        unpack_nibbles(b[i].qs, q);
        add_high_bits(b[i].qh, q);
        acc += fp16_to_fp32(b[i].d) * ds[2 * i] * (float)dot32(q, a + i * 32)
             + fp16_to_fp32(b[i].m) * ds[2 * i + 1];
    }
    return acc;
}

float dot_q8_0(int64_t n, const void * w, const void * xq) {
    const block_q8_0 * b  = static_cast<const block_q8_0 *>(w);
    const int8_t *     a  = act_q8_values(xq);
    const float *      ds = act_q8_scales(xq, n);
    float acc = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int q[32];
        for (int j = 0; j < 32; j++) q[j] = b[i].qs[j];
        acc += fp16_to_fp32(b[i].d) * ds[2 * i] * (float)dot32(q, a + i * 32);
    }
    return acc;
}

// ---- K-quants against ACT_Q8K -----------------------------------------------------------------
//
// Each super-block of 256 is unpacked into a common form: integers q[256], and for each of the 16
// groups of 16 values an integer scale sc[g] and min mn[g], so that value i of group g is
//     d * sc[g] * q[i] - dmin * mn[g]
// (types without a min have mn = 0 and signed q). The dot with an activation block (dx, a, bsums):
//     dx * (d * sum_g sc[g] * sum_{i in g} q[i] * a[i]  -  dmin * sum_g mn[g] * bsums[g])

struct k_block {
    int   q[QK_K];
    int   sc[16];
    int   mn[16];
    float d, dmin;
};

// Q4_K / Q5_K: 8 groups of 32 with 6-bit scale and min, packed in 12 bytes.
inline void scale_min_k4(int j, const uint8_t * s, int * sc, int * mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

void unpack_q2_K(const block_q2_K & b, k_block & k) {
    k.d    = fp16_to_fp32(b.d);
    k.dmin = fp16_to_fp32(b.dmin);
    for (int g = 0; g < 16; g++) {
        k.sc[g] = b.scales[g] & 0x0f;
        k.mn[g] = b.scales[g] >> 4;
    }
    // Two halves of 128; in each, 32 bytes hold four 2-bit planes (shift 0, 2, 4, 6) of 32 values.
    for (int half = 0; half < 2; half++) {
        const uint8_t * qs = b.qs + half * 32;
        for (int plane = 0; plane < 4; plane++) {
            for (int l = 0; l < 32; l++) k.q[half * 128 + plane * 32 + l] = (qs[l] >> (2 * plane)) & 3;
        }
    }
}

void unpack_q3_K(const block_q3_K & b, k_block & k) {
    k.d    = fp16_to_fp32(b.d);
    k.dmin = 0.0f;
    // 6-bit scales: low 4 bits from bytes 0..7 (low nibble for groups 0..7, high nibble for 8..15),
    // high 2 bits from bytes 8..11; the stored value is offset by 32.
    for (int g = 0; g < 16; g++) {
        const int lo = g < 8 ? (b.scales[g] & 0x0f) : (b.scales[g - 8] >> 4);
        const int hi = (b.scales[8 + g % 4] >> (2 * (g / 4))) & 3;
        k.sc[g] = (lo | (hi << 4)) - 32;
        k.mn[g] = 0;
    }
    // As q2_K for the low two bits; a clear bit in hmask (bit plane, byte l) subtracts 4.
    for (int half = 0; half < 2; half++) {
        const uint8_t * qs = b.qs + half * 32;
        for (int plane = 0; plane < 4; plane++) {
            const int m = 1 << (half * 4 + plane);
            for (int l = 0; l < 32; l++) {
                const int low = (qs[l] >> (2 * plane)) & 3;
                k.q[half * 128 + plane * 32 + l] = low - ((b.hmask[l] & m) ? 0 : 4);
            }
        }
    }
}

void unpack_q4_K(const block_q4_K & b, k_block & k) {
    k.d    = fp16_to_fp32(b.d);
    k.dmin = fp16_to_fp32(b.dmin);
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        scale_min_k4(j, b.scales, &sc, &mn);
        k.sc[2 * j] = k.sc[2 * j + 1] = sc;
        k.mn[2 * j] = k.mn[2 * j + 1] = mn;
    }
    // Four chunks of 64 values from 32 bytes: low nibbles first, then high nibbles.
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) {
            k.q[c * 64 + l]      = b.qs[c * 32 + l] & 0x0f;
            k.q[c * 64 + 32 + l] = b.qs[c * 32 + l] >> 4;
        }
    }
}

void unpack_q5_K(const block_q5_K & b, k_block & k) {
    k.d    = fp16_to_fp32(b.d);
    k.dmin = fp16_to_fp32(b.dmin);
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        scale_min_k4(j, b.scales, &sc, &mn);
        k.sc[2 * j] = k.sc[2 * j + 1] = sc;
        k.mn[2 * j] = k.mn[2 * j + 1] = mn;
    }
    // As q4_K; bit (2c) of qh[l] is the fifth bit of the low-nibble value, bit (2c + 1) of the high.
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) {
            k.q[c * 64 + l]      = (b.qs[c * 32 + l] & 0x0f) | (((b.qh[l] >> (2 * c)) & 1) << 4);
            k.q[c * 64 + 32 + l] = (b.qs[c * 32 + l] >> 4) | (((b.qh[l] >> (2 * c + 1)) & 1) << 4);
        }
    }
}

void unpack_q6_K(const block_q6_K & b, k_block & k) {
    k.d    = fp16_to_fp32(b.d);
    k.dmin = 0.0f;
    for (int g = 0; g < 16; g++) {
        k.sc[g] = b.scales[g];
        k.mn[g] = 0;
    }
    // Two halves of 128: ql holds 64 bytes of low nibbles (values l and l + 64 in byte l, values
    // l + 32 and l + 96 in byte l + 32), qh 32 bytes of 2-bit high parts (four per byte).
    for (int half = 0; half < 2; half++) {
        const uint8_t * ql = b.ql + half * 64;
        const uint8_t * qh = b.qh + half * 32;
        int *           q  = k.q + half * 128;
        for (int l = 0; l < 32; l++) {
            q[l]      = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
            q[l + 32] = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            q[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            q[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        }
    }
}

float dot_k_block(const k_block & k, const block_q8_K & x) {
    int sum_q = 0, sum_m = 0;
    for (int g = 0; g < 16; g++) {
        int s = 0;
        for (int i = 0; i < 16; i++) s += k.q[g * 16 + i] * x.qs[g * 16 + i];
        sum_q += k.sc[g] * s;
        sum_m += k.mn[g] * x.bsums[g];
    }
    return x.d * (k.d * (float)sum_q - k.dmin * (float)sum_m);
}

template <typename Block, void (*unpack)(const Block &, k_block &)>
float dot_k(int64_t n, const void * w, const void * xq) {
    const Block *      b = static_cast<const Block *>(w);
    const block_q8_K * x = static_cast<const block_q8_K *>(xq);
    float acc = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        k_block k;
        unpack(b[i], k);
        acc += dot_k_block(k, x[i]);
    }
    return acc;
}

// ---- BF16 weights against ACT_F32 (F32 and F16 rows are in vec_f32.cpp) ------------------------------------------------------------

float dot_bf16w(int64_t n, const void * w, const void * xq) {
    const uint16_t * a = static_cast<const uint16_t *>(w);
    const float *    x = static_cast<const float *>(xq);
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++) acc += bf16_to_fp32(a[i]) * x[i];
    return acc;
}

}  // namespace

void dot_table_fill_scalar(dot_table & t) {
    t.dot[PI_TYPE_BF16] = dot_bf16w;
    t.dot[PI_TYPE_Q4_0] = dot_q4_0;
    t.dot[PI_TYPE_Q4_1] = dot_q4_1;
    t.dot[PI_TYPE_Q5_0] = dot_q5_0;
    t.dot[PI_TYPE_Q5_1] = dot_q5_1;
    t.dot[PI_TYPE_Q8_0] = dot_q8_0;
    t.dot[PI_TYPE_Q2_K] = dot_k<block_q2_K, unpack_q2_K>;
    t.dot[PI_TYPE_Q3_K] = dot_k<block_q3_K, unpack_q3_K>;
    t.dot[PI_TYPE_Q4_K] = dot_k<block_q4_K, unpack_q4_K>;
    t.dot[PI_TYPE_Q5_K] = dot_k<block_q5_K, unpack_q5_K>;
    t.dot[PI_TYPE_Q6_K] = dot_k<block_q6_K, unpack_q6_K>;
    t.prepare_q8  = act_prepare_q8_scalar;
    t.prepare_q8k = act_prepare_q8k_scalar;
    vec_f32_fill_scalar(t);  // also the F32 and F16 weight rows
}

}  // namespace pi
