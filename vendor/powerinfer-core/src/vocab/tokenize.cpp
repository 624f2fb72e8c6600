// tokenize.cpp - the tokenizer's entry points: special-token splitting, BOS/EOS, the per-run
// tokenizers, and turning ids back into bytes.
#include "vocab/bpe_cache.h"
#include "vocab/vocab.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>

namespace pi {
namespace {

struct fragment {
    pi_token token;  // -1 for a text run
    size_t   off, len;
};

inline bool c_isspace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// Splits the text runs of frags at every occurrence of special token id, left to right. A token
// with LSTRIP/RSTRIP also eats the ASCII whitespace before/after it.
void split_at(const vocab & v, pi_token id, std::string_view text, std::vector<fragment> * frags,
              std::vector<fragment> * tmp) {
    const std::string & t = v.texts[id];
    const int32_t attr = v.attrs[id];
    tmp->clear();
    bool any = false;
    for (const fragment & f : *frags) {
        if (f.token >= 0) { tmp->push_back(f); continue; }
        size_t b = f.off, e = f.off + f.len;
        size_t pos = text.substr(0, e).find(t, b);
        if (pos == std::string_view::npos) { tmp->push_back(f); continue; }
        any = true;
        while (true) {
            if (pos == std::string_view::npos) {
                if (b < e) tmp->push_back({-1, b, e - b});
                break;
            }
            size_t left_end = pos;
            if (attr & PI_TOKEN_ATTR_LSTRIP) while (left_end > b && c_isspace(text[left_end - 1])) left_end--;
            if (left_end > b) tmp->push_back({-1, b, left_end - b});
            tmp->push_back({id, 0, 0});
            b = pos + t.size();
            if (attr & PI_TOKEN_ATTR_RSTRIP) while (b < e && c_isspace(text[b])) b++;
            if (b >= e) break;
            pos = text.substr(0, e).find(t, b);
        }
    }
    if (any) frags->swap(*tmp);
}

}  // namespace

// Ids already found for each distinct word of one call (SPM): (start, count) in ids.
struct spm_memo {
    std::unordered_map<std::string, std::pair<uint32_t, uint32_t>> words;
    std::vector<pi_token> ids;
};

void vocab::spm_run(const std::string & run, spm_memo * memo, std::vector<pi_token> * out) const {
    if (!spm_words_independent) {
        spm_tokenize_run(*this, run.data(), run.size(), out);
        return;
    }
    static const char k_space[] = "\xe2\x96\x81";
    const size_t n = run.size();
    size_t start = 0;
    while (start < n) {
        // The word runs to the next U+2581 that follows another character.
        size_t end = start;
        while (end < n && run.compare(end, 3, k_space) == 0) end += 3;
        while (end < n && run.compare(end, 3, k_space) != 0) end++;
        std::string word = run.substr(start, end - start);
        auto it = word.size() <= 256 ? memo->words.find(word) : memo->words.end();
        if (it != memo->words.end()) {
            out->insert(out->end(), memo->ids.begin() + it->second.first,
                        memo->ids.begin() + it->second.first + it->second.second);
        } else {
            size_t before = out->size();
            spm_tokenize_run(*this, word.data(), word.size(), out);
            if (word.size() <= 256) {
                uint32_t at = (uint32_t)memo->ids.size();
                memo->ids.insert(memo->ids.end(), out->begin() + before, out->end());
                memo->words.emplace(std::move(word), std::make_pair(at, (uint32_t)(out->size() - before)));
            }
        }
        start = end;
    }
}

bool vocab::is_eog(pi_token t) const { return std::binary_search(eog.begin(), eog.end(), t); }

void vocab::tokenize(const char * text, size_t n, bool add_special, bool parse_special,
                     std::vector<pi_token> * out) const {
    std::string_view all(text, n);
    std::vector<fragment> frags, tmp;
    if (n > 0) frags.push_back({-1, 0, n});
    for (pi_token id : specials) {
        // Control and unknown tokens only count when asked; user-defined ones always do.
        if (!parse_special && (attrs[id] & (PI_TOKEN_ATTR_CONTROL | PI_TOKEN_ATTR_UNKNOWN))) continue;
        split_at(*this, id, all, &frags, &tmp);
    }
    if (kind == VOCAB_SPM) {
        bool prev_special = true;  // the text start counts as following a special token
        if (add_special && add_bos && bos >= 0) out->push_back(bos);
        std::string run;
        spm_memo memo;
        for (const fragment & f : frags) {
            if (f.token >= 0) {
                out->push_back(f.token);
                prev_special = true;
                continue;
            }
            run.clear();
            if (add_space_prefix && prev_special) run += "\xe2\x96\x81";
            for (size_t i = f.off; i < f.off + f.len; i++) {
                if (text[i] == ' ') run += "\xe2\x96\x81";  // U+2581 stands for a space
                else run.push_back(text[i]);
            }
            spm_run(run, &memo, out);
            prev_special = false;
        }
        if (add_special && add_eos && eos >= 0) out->push_back(eos);
        return;
    }
    if (kind == VOCAB_WPM) {  // BERT: [CLS] text [SEP]
        if (add_special && bos >= 0) out->push_back(bos);
        for (const fragment & f : frags) {
            if (f.token >= 0) out->push_back(f.token);
            else wpm_tokenize_run(*this, text + f.off, f.len, out);
        }
        if (add_special && sep >= 0) out->push_back(sep);
        return;
    }
    bpe_cache cache;
    if (add_special && add_bos && bos >= 0) out->push_back(bos);
    std::string escaped;
    for (const fragment & f : frags) {
        if (f.token >= 0) {
            out->push_back(f.token);
        } else if (escape_spaces) {
            escaped.clear();
            for (size_t i = f.off; i < f.off + f.len; i++) {
                if (text[i] == ' ') escaped += "\xe2\x96\x81";
                else escaped.push_back(text[i]);
            }
            bpe_tokenize_run(*this, escaped.data(), escaped.size(), &cache, out);
        } else {
            bpe_tokenize_run(*this, text + f.off, f.len, &cache, out);
        }
    }
    if (add_special && add_eos && eos >= 0) out->push_back(eos);
}

void vocab::token_to_piece(pi_token t, bool special, bool lstrip, std::string * out) const {
    out->clear();
    if (!valid(t)) return;
    if (!special && (attrs[t] & (PI_TOKEN_ATTR_UNKNOWN | PI_TOKEN_ATTR_CONTROL))) return;
    const std::string & p = pieces[t];
    size_t skip = (lstrip && !p.empty() && p[0] == ' ') ? 1 : 0;
    out->assign(p, skip, std::string::npos);
}

void vocab::detokenize(const pi_token * toks, size_t n, bool remove_special, bool unparse_special,
                       std::string * out) const {
    out->clear();
    size_t b = 0, e = n;
    if (remove_special && add_bos && e > b && toks[b] == bos) b++;
    if (remove_special && add_eos && e > b && toks[e - 1] == eos) e--;
    // The space the SPM tokenizer put in front of the text is not part of it.
    bool strip = add_space_prefix;
    std::string piece;
    for (size_t i = b; i < e; i++) {
        token_to_piece(toks[i], unparse_special, strip, &piece);
        strip = false;
        out->append(piece);
    }
}

}  // namespace pi
