// huge_pages.cpp - 2 MB pages for the weights (why: huge_pages.h).
#include "core/huge_pages.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace pi {

namespace {
constexpr size_t kHugePage = size_t(2) << 20;
}

void * big_alloc(size_t bytes, size_t * span) {
    if (bytes == 0) bytes = 1;
    // Over-allocate by one huge page and trim, so that the block starts on a 2 MB boundary: the
    // kernel only backs aligned 2 MB ranges with a huge page.
    const size_t want = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void *       raw  = ::mmap(nullptr, want + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    char *       base  = static_cast<char *>(raw);
    char *       start = base + (kHugePage - reinterpret_cast<size_t>(base) % kHugePage) % kHugePage;
    const size_t head  = static_cast<size_t>(start - base);
    if (head > 0) ::munmap(base, head);
    if (kHugePage - head > 0) ::munmap(start + want, kHugePage - head);
    advise_huge_pages(start, want);
    *span = want;
    return start;
}

void big_free(void * addr, size_t span) {
    if (addr) ::munmap(addr, span);
}

void advise_huge_pages(void * addr, size_t bytes) {
#ifdef MADV_HUGEPAGE
    if (addr && bytes) ::madvise(addr, bytes, MADV_HUGEPAGE);  // a refusal only leaves 4 KB pages
#else
    (void)addr;
    (void)bytes;
#endif
}

void drop_written_pages(int fd, size_t bytes) {
    if (fd < 0 || bytes < (size_t(8) << 20)) return;
#if defined(POSIX_FADV_DONTNEED)
    // Dirty pages are not dropped: flush first. Either step failing only leaves the pages cached.
    if (::fsync(fd) == 0) ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
#endif
}

}  // namespace pi
