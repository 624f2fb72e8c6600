// bpe_cache.h - scratch space of one tokenize call for the BPE path: decoded code points, word
// spans, merge work areas, and the ids already found for each distinct word.
#pragma once

#include "vocab/pretokenize.h"
#include "vocab/vocab.h"

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pi {

struct bpe_symbol { int32_t start, len, prev, next, id; };  // id: token of the symbol's text or -1

struct bpe_pair {
    int32_t rank, left, right;
    int32_t left_len, right_len;  // symbol lengths when the pair was made (staleness check)
    int32_t merged;               // token id of the merged text or -1
};

struct bpe_cache {
    static constexpr size_t MAX_CACHED_WORD = 256;  // bytes; longer words are rare and not repeated
    std::vector<uint32_t>    cps;
    std::vector<uint8_t>     flags;
    std::vector<cp_span>     words;
    std::string              word;
    std::vector<bpe_symbol>  symbols;
    std::vector<bpe_pair>    heap;
    std::vector<pi_token>    ids;   // cached ids of all memoized words, back to back
    std::unordered_map<std::string, std::pair<uint32_t, uint32_t>> memo;  // word -> (start, count) in ids
};

}  // namespace pi
