// unicode.cpp - lookup tables built once from the generated ranges, UTF-8 helpers, GPT-2 byte map.
#include "vocab/unicode.h"

#include <mutex>

namespace pi {
namespace {

#include "vocab/unicode_tables.inc"

constexpr uint32_t k_max_cp = 0x110000;

// One byte per code point (1.1 MB): a single load per character in the pre-tokenizer loops.
struct flag_table {
    std::vector<uint8_t> flags;
    flag_table() : flags(k_max_cp, 0) {
        for (uint32_t i = 0; i < k_unicode_range_count; i++) {
            uint32_t end = i + 1 < k_unicode_range_count ? k_unicode_ranges[i + 1].first : k_max_cp;
            for (uint32_t cp = k_unicode_ranges[i].first; cp < end; cp++) flags[cp] = k_unicode_ranges[i].flags;
        }
    }
};

const flag_table & table() {
    static const flag_table t;  // thread-safe one-time construction
    return t;
}

// GPT-2's choice: printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100 upwards
// in byte order.
struct byte_map {
    std::string to_char[256];
    bpe_char packed[256];
    int16_t from_cp[512];
    byte_map() {
        for (int i = 0; i < 512; i++) from_cp[i] = -1;
        int next = 256;
        for (int b = 0; b < 256; b++) {
            bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            uint32_t cp = printable ? (uint32_t)b : (uint32_t)next++;
            utf8_append(cp, &to_char[b]);
            packed[b].len = (uint8_t)to_char[b].size();
            for (size_t k = 0; k < to_char[b].size(); k++) packed[b].chars[k] = to_char[b][k];
            from_cp[cp] = (int16_t)b;
        }
    }
};

const byte_map & bytes() {
    static const byte_map m;
    return m;
}

}  // namespace

uint8_t ucp_flags(uint32_t cp) { return cp < k_max_cp ? table().flags[cp] : 0; }

const uint8_t * ucp_flag_table() { return table().flags.data(); }

const bpe_char * bpe_char_table() { return bytes().packed; }

const char * unicode_version() { return PI_UNICODE_VERSION; }

uint32_t ucp_tolower(uint32_t cp) {
    if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    size_t lo = 0, hi = k_unicode_lower_count;  // sorted by cp
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (k_unicode_lower[mid].cp < cp) lo = mid + 1;
        else hi = mid;
    }
    return (lo < k_unicode_lower_count && k_unicode_lower[lo].cp == cp) ? k_unicode_lower[lo].lower : cp;
}

uint32_t ucp_nfd_first(uint32_t cp) {
    size_t lo = 0, hi = k_unicode_nfd_count;  // ranges sorted by first
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (k_unicode_nfd[mid].last < cp) lo = mid + 1;
        else hi = mid;
    }
    return (lo < k_unicode_nfd_count && k_unicode_nfd[lo].first <= cp) ? k_unicode_nfd[lo].nfd : cp;
}

void utf8_decode(const char * text, size_t n, std::vector<uint32_t> * out) {
    const uint8_t * s = (const uint8_t *)text;
    out->clear();
    out->reserve(n);
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { out->push_back(c); i++; continue; }
        size_t len = (c & 0x40) == 0 ? 0 : (c & 0x20) == 0 ? 2 : (c & 0x10) == 0 ? 3 : (c & 0x08) == 0 ? 4 : 0;
        bool ok = len != 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = (s[i + k] & 0xC0) == 0x80;
        if (!ok) { out->push_back(0xFFFD); i++; continue; }
        uint32_t cp = len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
        for (size_t k = 1; k < len; k++) cp = (cp << 6) | (s[i + k] & 0x3Fu);
        out->push_back(cp);
        i += len;
    }
}

size_t utf8_encode(uint32_t cp, char * b) {
    if (cp < 0x80) { b[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (char)(0xF0 | ((cp >> 18) & 0x07));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

void utf8_append(uint32_t cp, std::string * out) {
    char b[4];
    out->append(b, utf8_encode(cp, b));
}

const std::string & byte_to_bpe_char(uint8_t b) { return bytes().to_char[b]; }

int bpe_char_to_byte(uint32_t cp) { return cp < 512 ? bytes().from_cp[cp] : -1; }

}  // namespace pi
