// sparse_down.cpp - the scalar reference of the scaled-row-accumulate kernels (any type that
// pi::dequantize reads) and the choice of kernel per ISA. The reference dequantizes a window of
// up to 256 values of a row into a stack buffer and adds it scaled: plain, exact per element
// (one product, one sum), the yardstick the SIMD paths are tested against.
#include "sparse/sparse_down.h"

#include "core/cpu_features.h"
#include "core/types.h"
#include "cpu/kernels.h"
#include "cpu/quant_rows.h"
#include "powerinfer.h"

#include <cstdlib>
#include <cstring>

namespace pi {

namespace {

constexpr int64_t CHUNK = 256;  // a multiple of every block size (1, 32, 256)

// Generic: any type with a dequantizer. The row loop is outside the chunk loop so that each y[c]
// receives its terms in list order, as the SIMD kernels add them.
template <int32_t TYPE>
void down_rows_ref(const void * W, size_t row_bytes, size_t col_off, const int32_t * ids, const float * h,
                   int64_t n_ids, float * y, int64_t n) {
    const int64_t chunk_bytes = type_row_bytes(TYPE, CHUNK);
    float         tmp[CHUNK];
    for (int64_t k = 0; k < n_ids; k++) {
        const float a = h[k];
        if (a == 0.0f) continue;
        const char * row = static_cast<const char *>(W) + (size_t)ids[k] * row_bytes + col_off;
        for (int64_t i = 0; i < n; i += CHUNK) {
            const int64_t m = n - i < CHUNK ? n - i : CHUNK;
            dequantize(TYPE, row + (i / CHUNK) * chunk_bytes, tmp, m);
            for (int64_t j = 0; j < m; j++) {
                const float p = a * tmp[j];  // own statement: no FMA, the reference rounds twice
                y[i + j] += p;
            }
        }
    }
}

struct isa_down_tables {
    down_table scalar{}, avx2{}, avx512{};
};

const isa_down_tables & tables() {
    static const isa_down_tables t = [] {
        isa_down_tables r;
        down_table_fill_scalar(r.scalar);
        const cpu_features & f = cpu_get_features();
        r.avx2 = r.scalar;
#if defined(PI_HAVE_AVX2_KERNELS)
        if (f.avx2_kernels()) down_table_fill_avx2(r.avx2);
#endif
        r.avx512 = r.avx2;
#if defined(PI_HAVE_AVX512_KERNELS)
        if (f.avx2_kernels() && f.avx512_kernels()) {
            down_table_fill_avx512(r.avx512);
            // POWERINFER_AVX512_VNNI=0 keeps the float kernels (as it keeps the dot kernels off VNNI).
            const char * env = std::getenv("POWERINFER_AVX512_VNNI");
            if (f.avx512vnni && f.avx512vbmi && !(env && std::strcmp(env, "0") == 0)) down_table_fill_avx512_int8(r.avx512);
        }
#endif
        (void)f;
        return r;
    }();
    return t;
}

}  // namespace

void down_table_fill_scalar(down_table & t) {
    for (auto & fn : t.rows) fn = nullptr;
    for (auto & name : t.names) name = "scalar";
    t.rows[PI_TYPE_F32]  = down_rows_ref<PI_TYPE_F32>;
    t.rows[PI_TYPE_F16]  = down_rows_ref<PI_TYPE_F16>;
    t.rows[PI_TYPE_BF16] = down_rows_ref<PI_TYPE_BF16>;
    t.rows[PI_TYPE_Q4_0] = down_rows_ref<PI_TYPE_Q4_0>;
    t.rows[PI_TYPE_Q4_1] = down_rows_ref<PI_TYPE_Q4_1>;
    t.rows[PI_TYPE_Q5_0] = down_rows_ref<PI_TYPE_Q5_0>;
    t.rows[PI_TYPE_Q5_1] = down_rows_ref<PI_TYPE_Q5_1>;
    t.rows[PI_TYPE_Q8_0] = down_rows_ref<PI_TYPE_Q8_0>;
    t.rows[PI_TYPE_Q2_K] = down_rows_ref<PI_TYPE_Q2_K>;
    t.rows[PI_TYPE_Q3_K] = down_rows_ref<PI_TYPE_Q3_K>;
    t.rows[PI_TYPE_Q4_K] = down_rows_ref<PI_TYPE_Q4_K>;
    t.rows[PI_TYPE_Q5_K] = down_rows_ref<PI_TYPE_Q5_K>;
    t.rows[PI_TYPE_Q6_K] = down_rows_ref<PI_TYPE_Q6_K>;
}

bool down_supports(int32_t type) {
    return type >= 0 && type < DOWN_N_TYPES && tables().scalar.rows[type] != nullptr && can_dequantize(type);
}

namespace {

const down_table & table_in_use() {
    switch (pi_cpu_get_isa()) {
        case PI_ISA_AVX512: return tables().avx512;
        case PI_ISA_AVX2:   return tables().avx2;
        default:            return tables().scalar;
    }
}

}  // namespace

down_rows_fn down_kernel(int32_t type) { return table_in_use().rows[type]; }

const char * down_kernel_name(int32_t type) { return down_supports(type) ? table_in_use().names[type] : nullptr; }

}  // namespace pi
