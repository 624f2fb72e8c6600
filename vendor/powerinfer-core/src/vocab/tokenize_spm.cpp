// tokenize_spm.cpp - SentencePiece-style merging for "llama" vocabularies.
//
// The run starts as one symbol per UTF-8 character. Repeatedly the adjacent pair whose
// concatenation is the highest-scoring token (leftmost on ties) is merged, until no adjacent pair
// forms a token. Symbols that are not tokens are written as their bytes (<0xNN> tokens).
#include "vocab/unicode.h"
#include "vocab/vocab.h"

#include <queue>

namespace pi {
namespace {

struct spm_symbol { int32_t start, len, prev, next; };

struct spm_pair {
    float   score;
    int32_t left, right, len;  // len: bytes of both symbols when the pair was made
};

struct spm_pair_order {
    bool operator()(const spm_pair & a, const spm_pair & b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);  // max score, then leftmost
    }
};

}  // namespace

pi_token vocab::byte_token(uint8_t b) const {
    static const char hex[] = "0123456789ABCDEF";
    char buf[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
    int32_t id = by_text.find(buf, 6);
    if (id >= 0) return id;
    char c = (char)b;
    id = by_text.find(&c, 1);
    return id >= 0 ? id : unk;
}

void spm_tokenize_run(const vocab & v, const char * s, size_t n_bytes, std::vector<pi_token> * out) {
    const int32_t n = (int32_t)n_bytes;
    std::vector<spm_symbol> sym;
    sym.reserve(n);
    for (int32_t i = 0; i < n;) {
        int32_t len = (int32_t)std::min<size_t>(utf8_len((uint8_t)s[i]), (size_t)(n - i));
        int32_t idx = (int32_t)sym.size();
        sym.push_back({i, len, idx - 1, i + len < n ? idx + 1 : -1});
        i += len;
    }
    std::vector<spm_pair> storage;
    storage.reserve(sym.size());
    std::priority_queue<spm_pair, std::vector<spm_pair>, spm_pair_order> queue(spm_pair_order(), std::move(storage));
    auto try_pair = [&](int32_t l, int32_t r) {
        if (l < 0 || r < 0) return;
        int32_t len = sym[l].len + sym[r].len;
        int32_t id = v.by_text.find(s + sym[l].start, (size_t)len);
        if (id < 0) return;
        queue.push({v.scores[id], l, r, len});
    };
    for (int32_t i = 1; i < (int32_t)sym.size(); i++) try_pair(i - 1, i);
    while (!queue.empty()) {
        spm_pair p = queue.top();
        queue.pop();
        spm_symbol & l = sym[p.left];
        spm_symbol & r = sym[p.right];
        if (l.len == 0 || r.len == 0 || l.len + r.len != p.len) continue;  // outdated
        l.len += r.len;
        r.len = 0;
        l.next = r.next;
        if (r.next >= 0) sym[r.next].prev = p.left;
        try_pair(l.prev, p.left);
        try_pair(p.left, l.next);
    }
    for (int32_t i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) {
        const spm_symbol & x = sym[i];
        int32_t id = v.by_text.find(s + x.start, (size_t)x.len);
        if (id >= 0) {
            out->push_back(id);
            continue;
        }
        for (int32_t k = 0; k < x.len; k++) {
            pi_token b = v.byte_token((uint8_t)s[x.start + k]);
            if (b >= 0) out->push_back(b);
        }
    }
}

}  // namespace pi
