// cpu_features.cpp - cpuid and xgetbv probing (x86-64); compile-time facts elsewhere.
#include "core/cpu_features.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#include <cstdint>
#endif

namespace pi {

namespace {

cpu_features detect() {
    cpu_features f;
#if defined(__x86_64__) || defined(_M_X64)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    f.sse3  = c & (1u << 0);
    f.ssse3 = c & (1u << 9);
    f.fma   = c & (1u << 12);
    f.f16c  = c & (1u << 29);
    const bool osxsave = c & (1u << 27);
    bool       avx_os = false, avx512_os = false;
    if (osxsave) {
        uint32_t xlo, xhi;
        __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
        avx_os    = (xlo & 0x6) == 0x6;    // xmm and ymm state
        avx512_os = (xlo & 0xe6) == 0xe6;  // plus opmask and zmm state
    }
    f.avx = (c & (1u << 28)) && avx_os;
    if (!f.avx) { f.fma = f.f16c = false; }
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        f.avx2       = f.avx && (b & (1u << 5));
        f.avx512f    = avx512_os && (b & (1u << 16));
        f.avx512dq   = f.avx512f && (b & (1u << 17));
        f.avx512bw   = f.avx512f && (b & (1u << 30));
        f.avx512vl   = f.avx512f && (b & (1u << 31));
        f.avx512vnni = f.avx512f && (c & (1u << 11));
        f.avx512vbmi = f.avx512f && (c & (1u << 1));
    }
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
        f.avx_vnni   = f.avx && (a & (1u << 4));
        f.avx512bf16 = f.avx512f && (a & (1u << 5));
    }
#elif defined(__aarch64__)
    f.neon = true;
#if defined(__ARM_FEATURE_DOTPROD)
    f.arm_dotprod = true;
#endif
#endif
    return f;
}

}  // namespace

const cpu_features & cpu_get_features() {
    static const cpu_features features = detect();
    return features;
}

}  // namespace pi
