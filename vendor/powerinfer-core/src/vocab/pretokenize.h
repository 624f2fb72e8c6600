// pretokenize.h - splits a text run into the words that byte-level BPE merges within.
#pragma once

#include "vocab/vocab.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pi {

// A half-open range [start, end) of code point indices.
struct cp_span { uint32_t start, end; };

// Applies pre's expressions in turn to cps[0..n) (flags[i] = ucp_flags(cps[i])). Each expression
// splits every current piece into its matches and the unmatched stretches between them, as
// successive regex searches would. Appends the resulting words, in order, to *out.
void pretokenize(pre_kind pre, const uint32_t * cps, const uint8_t * flags, size_t n,
                 std::vector<cp_span> * out);

}  // namespace pi
