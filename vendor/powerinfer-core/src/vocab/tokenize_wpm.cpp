// tokenize_wpm.cpp - WordPiece for "bert" vocabularies.
//
// The text is normalized (optionally lowercased and stripped of accents: each code point replaced
// by the first of its canonical decomposition, combining marks dropped; control characters
// dropped) and split into words at whitespace, with every punctuation mark, ASCII symbol and CJK
// ideograph a word of its own. Each word, prefixed with U+2581 (the converted vocabularies mark
// word starts that way), is cut greedily into the longest tokens from the left; a word that cannot
// be cut completely becomes the unknown token.
#include "vocab/unicode.h"
#include "vocab/vocab.h"

#include <algorithm>

namespace pi {
namespace {

bool is_cjk_ideograph(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) ||
           (c >= 0x2B920 && c <= 0x2CEAF) ||  // as BERT's reference code has it (not 0x2B820)
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void split_words(const vocab & v, const char * text, size_t n, std::vector<std::string> * words) {
    std::vector<uint32_t> cps;
    utf8_decode(text, n, &cps);
    words->assign(1, std::string());
    for (uint32_t cp : cps) {
        if (v.wpm_strip_accents) cp = ucp_nfd_first(cp);
        uint8_t f = ucp_flags(cp);
        uint8_t cat = f & 7;
        if (f & UFLAG_WHITESPACE) {
            if (!words->back().empty()) words->emplace_back();
            continue;
        }
        if (cp == 0 || cp == 0xFFFD || cat == UCAT_OTHER) continue;
        if (v.wpm_strip_accents && cat == UCAT_MARK) continue;
        uint32_t out = v.wpm_lowercase ? ucp_tolower(cp) : cp;
        if (cat == UCAT_PUNCT || (cp < 0x7F && cat == UCAT_SYMBOL) || is_cjk_ideograph(cp)) {
            if (!words->back().empty()) words->emplace_back();
            utf8_append(out, &words->back());
            words->emplace_back();
        } else {
            utf8_append(out, &words->back());
        }
    }
    if (words->back().empty()) words->pop_back();
}

}  // namespace

void wpm_tokenize_run(const vocab & v, const char * text, size_t n, std::vector<pi_token> * out) {
    std::vector<std::string> words;
    split_words(v, text, n, &words);
    for (const std::string & w : words) {
        if (w.empty()) continue;
        const std::string word = "\xe2\x96\x81" + w;
        const size_t len = word.size();
        const size_t before = out->size();
        for (size_t i = 0; i < len;) {
            pi_token found = -1;
            size_t end = std::min(len, i + v.max_token_len);
            for (; end > i; end--) {
                found = v.by_text.find(word.data() + i, end - i);
                if (found >= 0) break;
            }
            if (found < 0) {  // the word cannot be covered: it is unknown as a whole
                out->resize(before);
                break;
            }
            out->push_back(found);
            i = end;
        }
        if (out->size() == before && v.unk >= 0) out->push_back(v.unk);
    }
}

}  // namespace pi
