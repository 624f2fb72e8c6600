// text_index.h - open-addressing hash tables for the tokenizers' hot lookups: token text -> id
// (looked up by pointer + length, so no std::string is built per query) and (left id, right id)
// -> merge rank for BPE.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace pi {

inline uint64_t hash_bytes(const char * s, size_t n) {
    // FNV-1a with a final avalanche; token texts are short, so this is not the bottleneck.
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

inline uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

// Maps a byte string to the id of the token with that text. The texts live in the caller's
// vector (the vocabulary), which must outlive the index and not change after build().
class text_index {
public:
    void build(const std::vector<std::string> & texts) {
        texts_ = &texts;
        size_t cap = 16;
        while (cap < texts.size() * 2) cap <<= 1;
        slots_.assign(cap, -1);
        mask_ = cap - 1;
        // Later ids win for duplicate texts (as a map filled in id order would).
        for (size_t id = 0; id < texts.size(); id++) insert((int32_t)id);
    }
    int32_t find(const char * s, size_t n) const {
        if (slots_.empty()) return -1;
        for (size_t i = hash_bytes(s, n) & mask_;; i = (i + 1) & mask_) {
            int32_t id = slots_[i];
            if (id < 0) return -1;
            const std::string & t = (*texts_)[id];
            if (t.size() == n && std::memcmp(t.data(), s, n) == 0) return id;
        }
    }
    int32_t find(const std::string & s) const { return find(s.data(), s.size()); }

private:
    void insert(int32_t id) {
        const std::string & t = (*texts_)[id];
        for (size_t i = hash_bytes(t.data(), t.size()) & mask_;; i = (i + 1) & mask_) {
            int32_t cur = slots_[i];
            if (cur < 0) { slots_[i] = id; return; }
            const std::string & c = (*texts_)[cur];
            if (c == t) { slots_[i] = id; return; }
        }
    }
    const std::vector<std::string> * texts_ = nullptr;
    std::vector<int32_t> slots_;
    size_t mask_ = 0;
};

// (left id, right id) -> {rank, id of the merged text or -1}.
class pair_index {
public:
    struct value { int32_t rank; int32_t merged; };
    void reserve(size_t n) {
        size_t cap = 16;
        while (cap < n * 2) cap <<= 1;
        keys_.assign(cap, EMPTY);
        vals_.assign(cap, value{-1, -1});
        mask_ = cap - 1;
    }
    // Keeps the first (lowest) rank for a repeated pair.
    void insert(int32_t a, int32_t b, value v) {
        uint64_t k = key(a, b);
        for (size_t i = hash_u64(k) & mask_;; i = (i + 1) & mask_) {
            if (keys_[i] == EMPTY) { keys_[i] = k; vals_[i] = v; return; }
            if (keys_[i] == k) return;
        }
    }
    const value * find(int32_t a, int32_t b) const {
        if (keys_.empty()) return nullptr;
        uint64_t k = key(a, b);
        for (size_t i = hash_u64(k) & mask_;; i = (i + 1) & mask_) {
            if (keys_[i] == k) return &vals_[i];
            if (keys_[i] == EMPTY) return nullptr;
        }
    }

private:
    static constexpr uint64_t EMPTY = ~0ull;
    static uint64_t key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
    std::vector<uint64_t> keys_;
    std::vector<value> vals_;
    size_t mask_ = 0;
};

}  // namespace pi
