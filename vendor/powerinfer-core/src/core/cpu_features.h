// cpu_features.h - what this CPU can run, read once with cpuid (x86) or assumed (arm64).
#pragma once

namespace pi {

struct cpu_features {
    bool sse3 = false, ssse3 = false, avx = false, f16c = false, fma = false, avx2 = false;
    bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
    bool avx512vnni = false, avx512vbmi = false, avx512bf16 = false, avx_vnni = false;
    bool neon = false, arm_dotprod = false;
    // AVX-512 usable by our kernels: F + BW + VL + DQ, with the OS saving the zmm state.
    bool avx512_kernels() const { return avx512f && avx512bw && avx512vl && avx512dq; }
    bool avx2_kernels() const { return avx2 && fma && f16c; }
};

const cpu_features & cpu_get_features();

}  // namespace pi
