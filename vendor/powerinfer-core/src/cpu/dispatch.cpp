// dispatch.cpp - picks the SIMD path: one table of kernels per ISA, built once, and the choice of
// table for this process (best the CPU has, env POWERINFER_ISA=scalar|avx2|avx512 at start, or
// pi_cpu_set_isa). Each ISA's table starts as a copy of the one below it, so a type without a
// kernel of its own in that ISA falls back to the next best one.
#include "core/cpu_features.h"
#include "core/status.h"
#include "cpu/dot.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace pi {

namespace {

struct isa_tables {
    dot_table scalar{}, avx2{}, avx512{};
    bool      has_avx2 = false, has_avx512 = false;
};

const isa_tables & tables() {
    static const isa_tables t = [] {
        isa_tables r;
        dot_table_fill_scalar(r.scalar);
        const cpu_features & f = cpu_get_features();
        r.avx2 = r.scalar;
#if defined(PI_HAVE_AVX2_KERNELS)
        if (f.avx2_kernels()) {
            dot_table_fill_avx2(r.avx2);
            r.has_avx2 = true;
        }
#endif
        r.avx512 = r.avx2;
#if defined(PI_HAVE_AVX512_KERNELS)
        if (r.has_avx2 && f.avx512_kernels()) {
            dot_table_fill_avx512(r.avx512);
            r.has_avx512 = true;
        }
#endif
        (void)f;
        return r;
    }();
    return t;
}

bool isa_available(int32_t isa) {
    switch (isa) {
        case PI_ISA_SCALAR: return true;
        case PI_ISA_AVX2:   return tables().has_avx2;
        case PI_ISA_AVX512: return tables().has_avx512;
        default:            return false;
    }
}

int32_t best_isa() {
    if (tables().has_avx512) return PI_ISA_AVX512;
    if (tables().has_avx2) return PI_ISA_AVX2;
    return PI_ISA_SCALAR;
}

// The ISA at start: POWERINFER_ISA if set and usable, else the best one.
int32_t initial_isa() {
    const char * env = std::getenv("POWERINFER_ISA");
    if (env && *env) {
        int32_t want = -1;
        if (std::strcmp(env, "scalar") == 0) want = PI_ISA_SCALAR;
        else if (std::strcmp(env, "avx2") == 0) want = PI_ISA_AVX2;
        else if (std::strcmp(env, "avx512") == 0) want = PI_ISA_AVX512;
        if (want > 0 && isa_available(want)) return want;
        PI_LOG_W("POWERINFER_ISA=%s is not one this CPU and build can run (scalar, avx2, avx512); "
                 "using the best available", env);
    }
    return best_isa();
}

std::atomic<int32_t> & current_isa() {
    static std::atomic<int32_t> isa{initial_isa()};
    return isa;
}

}  // namespace

const dot_table & dot_table_current() {
    switch (current_isa().load(std::memory_order_relaxed)) {
        case PI_ISA_AVX512: return tables().avx512;
        case PI_ISA_AVX2:   return tables().avx2;
        default:            return tables().scalar;
    }
}

}  // namespace pi

extern "C" {

pi_status pi_cpu_set_isa(int32_t isa) {
    if (isa == PI_ISA_AUTO) isa = pi::best_isa();
    if (isa < PI_ISA_SCALAR || isa > PI_ISA_NEON) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_cpu_set_isa: %d is not a pi_isa value", isa);
    }
    if (!pi::isa_available(isa)) {
        return pi::fail(PI_ERR_UNSUPPORTED, "pi_cpu_set_isa: ISA %d is not supported by this CPU or build", isa);
    }
    pi::current_isa().store(isa, std::memory_order_relaxed);
    return PI_OK;
}

int32_t pi_cpu_get_isa(void) { return pi::current_isa().load(std::memory_order_relaxed); }

}  // extern "C"
