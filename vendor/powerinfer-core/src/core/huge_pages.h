// huge_pages.h - the weights in 2 MB pages where the OS gives them.
//
// A decode step streams every weight once. In 4 KB pages that is a TLB miss and a page walk every
// 4 KB, and the hardware prefetchers stop at every 4 KB boundary; 2 MB pages remove both. Measured
// on SmolLM2 Q4_1 (2 threads, Zen 4): 200-225 tok/s with the weights read into 4 KB pages, 257
// mapped from a page cache of 4 KB folios, 273-283 read into 2 MB pages, 244 against 226 mapped
// from a page cache of 2 MB folios against 4 KB ones (interleaved runs).
#pragma once

#include <cstddef>

namespace pi {

// Anonymous memory of at least `bytes` (zeroed, 2 MB aligned, advised for transparent huge pages
// where the OS has them); its span for big_free goes to *span. nullptr when out of memory.
void * big_alloc(size_t bytes, size_t * span);
void   big_free(void * addr, size_t span);

// Asks for huge pages on a file mapping: the page cache then reads 2 MB folios for pages that
// are not cached yet (pages already cached keep their size). Harmless where unsupported.
void advise_huge_pages(void * addr, size_t bytes);

// After writing a model file of `bytes` through fd: for files of 8 MB or more, flushes it to disk
// and drops its pages from the page cache. Written pages are cached in small folios, which every
// later mapping of the file would keep; read back through a mapping advised as above, they come
// in 2 MB folios, for this process and all later ones.
void drop_written_pages(int fd, size_t bytes);

}  // namespace pi
