// prefetch.h - a request for one cache line (into L2) that the compiler keeps.
//
// GCC 12 deletes every call to a helper that holds only __builtin_prefetch (ipa-pure-const finds it
// has no effect), prefetches and all; an asm volatile cannot be dropped. The row kernels use this to
// request the rows they will read next (dot_avx512.cpp's rows_ids_loop says why at their pace).
#pragma once

namespace pi {

inline void request_line(const void * p) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("prefetcht1 %0" : : "m"(*static_cast<const char *>(p)));
#elif defined(__aarch64__)
    __asm__ volatile("prfm pldl2keep, %0" : : "Q"(*static_cast<const char *>(p)));
#else
    __builtin_prefetch(p, 0, 2);
#endif
}

}  // namespace pi
