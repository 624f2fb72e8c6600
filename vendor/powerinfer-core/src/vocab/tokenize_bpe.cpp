// tokenize_bpe.cpp - byte-level BPE for "gpt2" vocabularies.
//
// The run is split into words by the pre-tokenizer. Each word's bytes are written with GPT-2's
// printable characters, and the adjacent pair with the lowest merge rank (leftmost on ties) is
// merged until no ranked pair is left. Results are cached per call: real text repeats its words.
#include "vocab/bpe_cache.h"
#include "vocab/pretokenize.h"
#include "vocab/unicode.h"
#include "vocab/vocab.h"

#include <algorithm>

namespace pi {
namespace {

struct bpe_pair_order {
    bool operator()(const bpe_pair & a, const bpe_pair & b) const {
        return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);  // min rank, then leftmost
    }
};

// Rank and merged id of two adjacent symbols, or false if they do not merge.
bool find_merge(const vocab & v, const std::string & w, const bpe_symbol & a, const bpe_symbol & b,
                pair_index::value * out) {
    if (a.id >= 0 && b.id >= 0) {
        const pair_index::value * p = v.merges.find(a.id, b.id);
        if (!p) return false;
        *out = *p;
        return true;
    }
    if (v.merges_by_text.empty()) return false;
    std::string key = w.substr(a.start, a.len) + " " + w.substr(b.start, b.len);
    auto it = v.merges_by_text.find(key);
    if (it == v.merges_by_text.end()) return false;
    out->rank = it->second;
    out->merged = v.by_text.find(w.data() + a.start, (size_t)(a.len + b.len));
    return true;
}

void merge_word(const vocab & v, const std::string & w, bpe_cache & c, std::vector<pi_token> * out) {
    if (v.ignore_merges || (v.pre == PRE_GEMMA4 && w.find_first_not_of('\n') == std::string::npos)) {
        int32_t id = v.by_text.find(w);  // (Gemma 4: a run of newlines that is a token stays whole)
        if (id >= 0) { out->push_back(id); return; }
    }
    std::vector<bpe_symbol> & sym = c.symbols;
    sym.clear();
    const int32_t n = (int32_t)w.size();
    for (int32_t i = 0; i < n;) {
        int32_t len = (int32_t)std::min<size_t>(utf8_len((uint8_t)w[i]), (size_t)(n - i));
        int32_t idx = (int32_t)sym.size();
        sym.push_back({i, len, idx - 1, i + len < n ? idx + 1 : -1, v.by_text.find(w.data() + i, (size_t)len)});
        i += len;
    }
    std::vector<bpe_pair> & heap = c.heap;
    heap.clear();
    bpe_pair_order order;
    auto try_pair = [&](int32_t l, int32_t r) {
        if (l < 0 || r < 0) return;
        pair_index::value m;
        if (!find_merge(v, w, sym[l], sym[r], &m)) return;
        heap.push_back({m.rank, l, r, sym[l].len, sym[r].len, m.merged});
        std::push_heap(heap.begin(), heap.end(), order);
    };
    for (int32_t i = 1; i < (int32_t)sym.size(); i++) try_pair(i - 1, i);
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), order);
        bpe_pair p = heap.back();
        heap.pop_back();
        bpe_symbol & l = sym[p.left];
        bpe_symbol & r = sym[p.right];
        if (l.len != p.left_len || r.len != p.right_len || l.len == 0 || r.len == 0) continue;  // outdated
        l.len += r.len;
        l.id = p.merged;
        r.len = 0;
        l.next = r.next;
        if (r.next >= 0) sym[r.next].prev = p.left;
        try_pair(l.prev, p.left);
        try_pair(p.left, l.next);
    }
    for (int32_t i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) {
        const bpe_symbol & x = sym[i];
        int32_t id = x.id >= 0 ? x.id : v.by_text.find(w.data() + x.start, (size_t)x.len);
        if (id >= 0) { out->push_back(id); continue; }
        // No token for this piece: keep whichever of its single bytes are tokens.
        for (int32_t k = 0; k < x.len; k++) {
            int32_t b;
            if (v.byte_encode) {
                b = v.by_text.find(w.data() + x.start + k, 1);
            } else {
                static const char hex[] = "0123456789ABCDEF";
                uint8_t ch = (uint8_t)w[x.start + k];
                char buf[6] = {'<', '0', 'x', hex[ch >> 4], hex[ch & 15], '>'};
                b = v.by_text.find(buf, 6);
            }
            if (b >= 0) out->push_back(b);
        }
    }
}

}  // namespace

void bpe_tokenize_run(const vocab & v, const char * text, size_t n, bpe_cache * cache, std::vector<pi_token> * out) {
    bpe_cache & c = *cache;
    utf8_decode(text, n, &c.cps);
    c.flags.resize(c.cps.size());
    const uint8_t * ftab = ucp_flag_table();
    for (size_t i = 0; i < c.cps.size(); i++) c.flags[i] = c.cps[i] < 0x110000 ? ftab[c.cps[i]] : 0;
    const bpe_char * btab = bpe_char_table();
    c.words.clear();
    pretokenize(v.pre, c.cps.data(), c.flags.data(), c.cps.size(), &c.words);

    std::string & w = c.word;
    for (const cp_span & s : c.words) {
        w.clear();
        for (uint32_t i = s.start; i < s.end; i++) {
            uint32_t cp = c.cps[i];
            char u[4];
            if (!v.byte_encode) { w.append(u, utf8_encode(cp, u)); continue; }
            if (cp < 0x80) { w.append(btab[cp].chars, btab[cp].len); continue; }
            size_t len = utf8_encode(cp, u);
            for (size_t k = 0; k < len; k++) w.append(btab[(uint8_t)u[k]].chars, btab[(uint8_t)u[k]].len);
        }
        if (w.size() > bpe_cache::MAX_CACHED_WORD) {
            merge_word(v, w, c, out);
            continue;
        }
        auto it = c.memo.find(w);
        if (it != c.memo.end()) {
            out->insert(out->end(), c.ids.begin() + it->second.first, c.ids.begin() + it->second.first + it->second.second);
            continue;
        }
        size_t before = out->size();
        merge_word(v, w, c, out);
        uint32_t start = (uint32_t)c.ids.size();
        c.ids.insert(c.ids.end(), out->begin() + before, out->end());
        c.memo.emplace(w, std::make_pair(start, (uint32_t)(out->size() - before)));
    }
}

}  // namespace pi
