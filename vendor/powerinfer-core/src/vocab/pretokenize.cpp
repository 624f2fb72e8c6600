// pretokenize.cpp - the pre-tokenizer expressions, each written as a hand-made matcher with the
// semantics of the regular expression it stands for (leftmost match, alternatives in order,
// greedy with backtracking). \s is Unicode White_Space, \p{X} the category class X. Fragment
// ends are text ends for lookahead and `$`.
#include "vocab/pretokenize.h"

#include "vocab/unicode.h"

namespace pi {
namespace {

struct text_view {
    const uint32_t * cp;
    const uint8_t *  fl;
    uint8_t cat(size_t i) const { return fl[i] & 7; }
    bool space(size_t i) const { return (fl[i] & UFLAG_WHITESPACE) != 0; }
    bool letter(size_t i) const { return cat(i) == UCAT_LETTER; }
    bool number(size_t i) const { return cat(i) == UCAT_NUMBER; }
    bool mark(size_t i) const { return cat(i) == UCAT_MARK; }
    bool punct(size_t i) const { return cat(i) == UCAT_PUNCT; }
    // [^\s\p{L}\p{N}]
    bool other(size_t i) const { return !space(i) && !letter(i) && !number(i); }
};

// A matcher returns the length of the match starting exactly at i inside [.., e), or 0.
typedef size_t (*matcher)(const text_view & t, size_t i, size_t e);

inline uint32_t ascii_lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// 's|'t|'re|'ve|'m|'ll|'d, case-sensitive or not.
size_t contraction(const text_view & t, size_t i, size_t e, bool fold) {
    if (t.cp[i] != '\'' || i + 1 >= e) return 0;
    uint32_t a = fold ? ascii_lower(t.cp[i + 1]) : t.cp[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= e) return 0;
    uint32_t b = fold ? ascii_lower(t.cp[i + 2]) : t.cp[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
size_t match_gpt2(const text_view & t, size_t i, size_t e) {
    if (size_t n = contraction(t, i, e, false)) return n;
    size_t j = (t.cp[i] == ' ' && i + 1 < e && !t.space(i + 1)) ? i + 1 : i;
    if (!t.space(j)) {
        size_t k = j + 1;
        if (t.letter(j)) while (k < e && t.letter(k)) k++;
        else if (t.number(j)) while (k < e && t.number(k)) k++;
        else while (k < e && t.other(k)) k++;
        return k - i;
    }
    size_t k = i;
    while (k < e && t.space(k)) k++;
    if (k == e) return k - i;          // whitespace up to the end
    return k - i > 1 ? k - i - 1 : 0;  // leave the last one to the word after it
}

// Llama 3 family:
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?W+|\p{N}{1,D}| ?[^\s\p{L}\p{N}M]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// where W is \p{L} (or [\p{L}\p{M}] and M excluded from the punctuation run, for qwen35).
template <size_t MAX_DIGITS, bool MARKS>
size_t match_llama3(const text_view & t, size_t i, size_t e) {
    if (size_t n = contraction(t, i, e, true)) return n;
    auto word = [&](size_t k) { return t.letter(k) || (MARKS && t.mark(k)); };
    auto punct = [&](size_t k) { return t.other(k) && !(MARKS && t.mark(k)); };
    uint32_t c = t.cp[i];
    size_t j = i;
    if (!word(i) && c != '\r' && c != '\n' && !t.letter(i) && !t.number(i) && i + 1 < e && word(i + 1)) j = i + 1;
    if (word(j)) {
        size_t k = j + 1;
        while (k < e && word(k)) k++;
        return k - i;
    }
    if (t.number(i)) {
        size_t k = i + 1;
        while (k < e && k - i < MAX_DIGITS && t.number(k)) k++;
        return k - i;
    }
    j = (c == ' ' && i + 1 < e && punct(i + 1)) ? i + 1 : i;
    if (punct(j)) {
        size_t k = j + 1;
        while (k < e && punct(k)) k++;
        while (k < e && (t.cp[k] == '\r' || t.cp[k] == '\n')) k++;
        return k - i;
    }
    size_t k = i, last_nl = 0;
    while (k < e && t.space(k)) {
        if (t.cp[k] == '\r' || t.cp[k] == '\n') last_nl = k + 1;
        k++;
    }
    if (last_nl) return last_nl - i;
    if (k == i) return 0;
    if (k < e && k - i > 1) return k - i - 1;
    return k - i;
}

// A run of one or more code points with a property: X+
template <bool (*IN)(const text_view &, size_t)>
size_t match_run(const text_view & t, size_t i, size_t e) {
    size_t k = i;
    while (k < e && IN(t, k)) k++;
    return k - i;
}
// \s?X+
template <bool (*IN)(const text_view &, size_t)>
size_t match_space_run(const text_view & t, size_t i, size_t e) {
    size_t j = (t.space(i) && i + 1 < e && IN(t, i + 1)) ? i + 1 : i;
    size_t k = j;
    while (k < e && IN(t, k)) k++;
    return k == j ? 0 : k - i;
}
// Exactly one code point with a property: X
template <bool (*IN)(const text_view &, size_t)>
size_t match_one(const text_view & t, size_t i, size_t) { return IN(t, i) ? 1 : 0; }

bool is_number(const text_view & t, size_t i) { return t.number(i); }
bool is_letter(const text_view & t, size_t i) { return t.letter(i); }
bool is_punct(const text_view & t, size_t i) { return t.punct(i); }
bool is_cr_lf(const text_view & t, size_t i) { return t.cp[i] == '\r' || t.cp[i] == '\n'; }
bool is_digit(const text_view & t, size_t i) { return t.cp[i] >= '0' && t.cp[i] <= '9'; }

// [\p{P}\$\+<=>\^~\|]+ (default) and the same with a backquote (falcon).
bool is_default_punct(const text_view & t, size_t i) {
    uint32_t c = t.cp[i];
    return t.punct(i) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' || c == '~' || c == '|';
}
bool is_falcon_punct(const text_view & t, size_t i) { return is_default_punct(t, i) || t.cp[i] == '`'; }

// [0-9][0-9][0-9]
size_t match_three_digits(const text_view & t, size_t i, size_t e) {
    return (i + 3 <= e && is_digit(t, i) && is_digit(t, i + 1) && is_digit(t, i + 2)) ? 3 : 0;
}

// The explicit character classes below come from expressions matched on code points with every
// non-ASCII whitespace character replaced by U+000B first (as llama.cpp does, since std::wregex's
// \s knows only ASCII), so such a character never falls in a class by its value (U+3000 is in
// two of the ranges).
inline bool wide_space(const text_view & t, size_t i) { return t.cp[i] > 0x7F && t.space(i); }

// DeepSeek's explicit letter class (Latin, Greek, Cyrillic, Armenian, Georgian, Cherokee, ... as
// listed in its tokenizer.json): [A-Za-zµÀ-ÖØ-öø-ƺ...𞤀-𞥃].
const uint32_t k_deepseek_letters[][2] = {
    {0x41,0x5A}, {0x61,0x7A}, {0xB5,0xB5}, {0xC0,0xD6}, {0xD8,0xF6}, {0xF8,0x1BA}, {0x1BC,0x1BF},
    {0x1C4,0x293}, {0x295,0x2AF}, {0x370,0x373}, {0x376,0x377}, {0x37B,0x37D}, {0x37F,0x37F},
    {0x386,0x386}, {0x388,0x38A}, {0x38C,0x38C}, {0x38E,0x3A1}, {0x3A3,0x3F5}, {0x3F7,0x481},
    {0x48A,0x52F}, {0x531,0x556}, {0x10A0,0x10C5}, {0x13A0,0x13F5}, {0x13F8,0x13FD}, {0x1C90,0x1CBA},
    {0x1CBD,0x1CBF}, {0x1D00,0x1D2B}, {0x1D6B,0x1D77}, {0x1D79,0x1D9A}, {0x1E00,0x1F15}, {0x1F18,0x1F1D},
    {0x1F20,0x1F45}, {0x1F48,0x1F4D}, {0x1F50,0x1F57}, {0x1F59,0x1F59}, {0x1F5B,0x1F5B}, {0x1F5D,0x1F5D},
    {0x1F5F,0x1F7D}, {0x1F80,0x1FB4}, {0x1FB6,0x1FBC}, {0x1FBE,0x1FBE}, {0x1FC2,0x1FC4}, {0x1FC6,0x1FCC},
    {0x1FD0,0x1FD3}, {0x1FD6,0x1FDB}, {0x1FE0,0x1FEC}, {0x1FF2,0x1FF4}, {0x1FF6,0x1FFC}, {0x2102,0x2102},
    {0x2107,0x2107}, {0x210A,0x2113}, {0x2115,0x2115}, {0x2119,0x211D}, {0x2124,0x2124}, {0x2126,0x2126},
    {0x2128,0x2128}, {0x212A,0x212D}, {0x212F,0x2134}, {0x2139,0x2139}, {0x213C,0x213F}, {0x2145,0x2149},
    {0x214E,0x214E}, {0x2183,0x2184}, {0x2C00,0x2C7B}, {0x2C7E,0x2CE4}, {0x2CEB,0x2CEE}, {0x2CF2,0x2CF3},
    {0xA640,0xA66D}, {0xA680,0xA69B}, {0xA722,0xA76F}, {0xA771,0xA787}, {0xA78B,0xA78E}, {0xAB70,0xABBF},
    {0xFB00,0xFB06}, {0xFB13,0xFB17}, {0xFF21,0xFF3A}, {0xFF41,0xFF5A}, {0x10400,0x1044F}, {0x104B0,0x104D3},
    {0x104D8,0x104FB}, {0x10C80,0x10CB2}, {0x10CC0,0x10CF2}, {0x118A0,0x118DF}, {0x1E900,0x1E943},
};
bool is_deepseek_letter(const text_view & t, size_t i) {
    uint32_t c = t.cp[i];
    if (wide_space(t, i)) return false;
    for (const auto & r : k_deepseek_letters) {
        if (c < r[0]) return false;  // the ranges are sorted
        if (c <= r[1]) return true;
    }
    return false;
}
// [!-/:-~！-／：-～‘-‟　-。]
bool is_deepseek_punct(const text_view & t, size_t i) {
    uint32_t c = t.cp[i];
    if (wide_space(t, i)) return false;
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x7E) || (c >= 0xFF01 && c <= 0xFF0F) ||
           (c >= 0xFF1A && c <= 0xFF5E) || (c >= 0x2018 && c <= 0x201F) || (c >= 0x3000 && c <= 0x3002);
}
// [一-龥ࠀ-一가-퟿]: U+0800..U+9FA5 and U+AC00..U+D7FF.
bool is_deepseek_cjk(const text_view & t, size_t i) {
    uint32_t c = t.cp[i];
    if (wide_space(t, i)) return false;
    return (c >= 0x0800 && c <= 0x9FA5) || (c >= 0xAC00 && c <= 0xD7FF);
}
// \s+$
size_t match_trailing_space(const text_view & t, size_t i, size_t e) {
    size_t k = i;
    while (k < e && t.space(k)) k++;
    return (k == e && k > i) ? k - i : 0;
}
// Poro/BLOOM: " ?[^(\s|.,!?…。，、।۔،)]+"
bool is_poro_word(const text_view & t, size_t i) {
    uint32_t c = t.cp[i];
    if (t.space(i)) return false;
    switch (c) {
        case '(': case ')': case '|': case '.': case ',': case '!': case '?':
        case 0x2026: case 0x3002: case 0xFF0C: case 0x3001: case 0x0964: case 0x06D4: case 0x060C:
            return false;
        default:
            return true;
    }
}
size_t match_poro(const text_view & t, size_t i, size_t e) {
    size_t j = (t.cp[i] == ' ' && i + 1 < e && is_poro_word(t, i + 1)) ? i + 1 : i;
    size_t k = j;
    while (k < e && is_poro_word(t, k)) k++;
    return k == j ? 0 : k - i;
}

// Gemma 4: [^\n]+|[\n]+
size_t match_newline_runs(const text_view & t, size_t i, size_t e) {
    bool nl = t.cp[i] == '\n';
    size_t k = i + 1;
    while (k < e && (t.cp[k] == '\n') == nl) k++;
    return k - i;
}

struct pass_list { const matcher * m; size_t n; };

pass_list passes_of(pre_kind pre) {
    static const matcher gpt2[] = {match_gpt2};
    static const matcher llama3[] = {match_llama3<3, false>};
    static const matcher qwen2[] = {match_llama3<1, false>};
    static const matcher qwen35[] = {match_llama3<1, true>};
    static const matcher starcoder[] = {match_one<is_number>, match_gpt2};
    static const matcher falcon[] = {match_run<is_falcon_punct>, match_gpt2, match_three_digits};
    static const matcher deflt[] = {match_run<is_default_punct>, match_gpt2, match_run<is_number>, match_three_digits};
    static const matcher ds_llm[] = {match_one<is_cr_lf>, match_space_run<is_deepseek_letter>,
                                     match_space_run<is_deepseek_punct>, match_trailing_space,
                                     match_run<is_deepseek_cjk>, match_run<is_number>};
    static const matcher ds_coder[] = {match_one<is_cr_lf>, match_space_run<is_letter>, match_space_run<is_punct>,
                                       match_run<is_deepseek_cjk>, match_one<is_number>};
    static const matcher poro[] = {match_poro};
    static const matcher gemma4[] = {match_newline_runs};
#define PI_PASSES(a) pass_list{a, sizeof(a) / sizeof(a[0])}
    switch (pre) {
        case PRE_LLAMA3:         return PI_PASSES(llama3);
        case PRE_QWEN2:          return PI_PASSES(qwen2);
        case PRE_QWEN35:         return PI_PASSES(qwen35);
        case PRE_GPT2:           return PI_PASSES(gpt2);
        case PRE_STARCODER:      return PI_PASSES(starcoder);
        case PRE_FALCON:         return PI_PASSES(falcon);
        case PRE_DEEPSEEK_LLM:   return PI_PASSES(ds_llm);
        case PRE_DEEPSEEK_CODER: return PI_PASSES(ds_coder);
        case PRE_PORO:           return PI_PASSES(poro);
        case PRE_GEMMA4:         return PI_PASSES(gemma4);
        case PRE_DEFAULT:
        case PRE_NONE:
        default:                 return PI_PASSES(deflt);
    }
#undef PI_PASSES
}

// Splits [s, e) with m: every match is a word, and so is each unmatched stretch between matches.
void split_with(const text_view & t, matcher m, uint32_t s, uint32_t e, std::vector<cp_span> * out) {
    uint32_t gap = s, i = s;
    while (i < e) {
        size_t len = m(t, i, e);
        if (len == 0) { i++; continue; }
        if (gap < i) out->push_back({gap, i});
        out->push_back({i, (uint32_t)(i + len)});
        i += (uint32_t)len;
        gap = i;
    }
    if (gap < e) out->push_back({gap, e});
}

}  // namespace

void pretokenize(pre_kind pre, const uint32_t * cps, const uint8_t * flags, size_t n,
                 std::vector<cp_span> * out) {
    if (n == 0) return;
    text_view t{cps, flags};
    pass_list pl = passes_of(pre);
    if (pl.n == 1) {  // the common case: no intermediate list
        split_with(t, pl.m[0], 0, (uint32_t)n, out);
        return;
    }
    std::vector<cp_span> cur{{0, (uint32_t)n}}, next;
    for (size_t p = 0; p < pl.n; p++) {
        next.clear();
        for (const cp_span & s : cur) split_with(t, pl.m[p], s.start, s.end, &next);
        cur.swap(next);
    }
    out->insert(out->end(), cur.begin(), cur.end());
}

}  // namespace pi
