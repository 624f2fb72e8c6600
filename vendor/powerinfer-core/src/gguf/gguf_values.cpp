// gguf_values.cpp - typed access to GGUF metadata values, and their rendering as strings.
//
// Rendering follows what llama.cpp shows through llama-cpp-python's `metadata`: integers in
// decimal, floats as printf "%f" (C++ std::to_string), booleans "true"/"false", strings raw;
// arrays as "[a, b]" with string elements quoted ("\" and "\"" escaped). Nested arrays, which
// llama.cpp shows as "???", are rendered as nested lists.
#include "gguf/gguf.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>

namespace pi {

namespace {

// One fixed-size element at p as a signed 128-bit integer; false for non-integer types.
bool int_at(uint32_t type, const uint8_t * p, __int128 * out) {
    switch (type) {
        case GGUF_U8:  { uint8_t v;  std::memcpy(&v, p, 1); *out = v; return true; }
        case GGUF_I8:  { int8_t v;   std::memcpy(&v, p, 1); *out = v; return true; }
        case GGUF_U16: { uint16_t v; std::memcpy(&v, p, 2); *out = v; return true; }
        case GGUF_I16: { int16_t v;  std::memcpy(&v, p, 2); *out = v; return true; }
        case GGUF_U32: { uint32_t v; std::memcpy(&v, p, 4); *out = v; return true; }
        case GGUF_I32: { int32_t v;  std::memcpy(&v, p, 4); *out = v; return true; }
        case GGUF_U64: { uint64_t v; std::memcpy(&v, p, 8); *out = v; return true; }
        case GGUF_I64: { int64_t v;  std::memcpy(&v, p, 8); *out = v; return true; }
        default: return false;
    }
}

bool float_at(uint32_t type, const uint8_t * p, double * out) {
    if (type == GGUF_F32) {
        float v;
        std::memcpy(&v, p, 4);
        *out = v;
        return true;
    }
    if (type == GGUF_F64) {
        std::memcpy(out, p, 8);
        return true;
    }
    return false;
}

size_t elem_size(uint32_t t) {
    switch (t) {
        case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
        case GGUF_U16: case GGUF_I16: return 2;
        case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
        case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
        default: return 0;
    }
}

// Appends one fixed-size element, rendered, to out.
void render_scalar(uint32_t type, const uint8_t * p, std::string & out) {
    char     buf[512];
    __int128 i;
    double   d;
    if (type == GGUF_BOOL) {
        out += p[0] ? "true" : "false";
    } else if (int_at(type, p, &i)) {
        if (i < 0) {
            std::snprintf(buf, sizeof(buf), "%" PRId64, static_cast<int64_t>(i));
        } else {
            std::snprintf(buf, sizeof(buf), "%" PRIu64, static_cast<uint64_t>(i));
        }
        out += buf;
    } else if (float_at(type, p, &d)) {
        // "%f" of the largest double needs 309 digits + 8; buf holds it.
        std::snprintf(buf, sizeof(buf), "%f", d);
        out += buf;
    }
}

void render_quoted(const char * s, size_t n, std::string & out) {
    out += '"';
    size_t run = 0;  // start of the pending run of bytes that need no escape
    for (size_t k = 0; k < n; k++) {
        if (s[k] == '\\' || s[k] == '"') {
            out.append(s + run, k - run);
            out += '\\';
            run = k;
        }
    }
    out.append(s + run, n - run);
    out += '"';
}

// Renders the elements of an array of type `type` with n elements whose bytes start at *p
// (numeric, or nested layout for arrays); advances *p past them. Bytes were validated on read.
void render_array_bytes(uint32_t type, uint64_t n, const uint8_t ** p, std::string & out) {
    out += '[';
    for (uint64_t j = 0; j < n; j++) {
        if (j) out += ", ";
        if (type == GGUF_ARRAY) {
            uint32_t sub_type;
            uint64_t sub_n;
            std::memcpy(&sub_type, *p, 4);
            std::memcpy(&sub_n, *p + 4, 8);
            *p += 12;
            render_array_bytes(sub_type, sub_n, p, out);
        } else if (type == GGUF_STRING) {
            uint64_t len;
            std::memcpy(&len, *p, 8);
            render_quoted(reinterpret_cast<const char *>(*p + 8), static_cast<size_t>(len), out);
            *p += 8 + len;
        } else {
            render_scalar(type, *p, out);
            *p += elem_size(type);
        }
    }
    out += ']';
}

template <typename T> bool int_fits(__int128 v) {
    return v >= static_cast<__int128>(std::numeric_limits<T>::min()) &&
           v <= static_cast<__int128>(std::numeric_limits<T>::max());
}

}  // namespace

std::string gguf_file::value_string(size_t i) const {
    if (i >= kvs.size()) return std::string();
    const gguf_kv & kv = kvs[i];
    std::string     out;
    if (kv.type == GGUF_STRING) return kv.str;
    if (kv.type != GGUF_ARRAY) {
        render_scalar(kv.type, kv.raw.data(), out);
        return out;
    }
    if (kv.arr_type == GGUF_STRING) {
        out += '[';
        for (size_t j = 0; j < kv.strs.size(); j++) {
            if (j) out += ", ";
            render_quoted(kv.strs[j].data(), kv.strs[j].size(), out);
        }
        out += ']';
        return out;
    }
    const uint8_t * p = kv.raw.data();
    render_array_bytes(kv.arr_type, kv.arr_n, &p, out);
    return out;
}

// Integer getters: any integer type, when the value fits the requested type.
template <typename T> static bool get_int(const gguf_file & f, const std::string & key, T * out) {
    const int i = f.find_key(key);
    if (i < 0) return false;
    const gguf_kv & kv = f.kvs[i];
    __int128        v = 0;
    if (kv.type == GGUF_ARRAY || !int_at(kv.type, kv.raw.data(), &v) || !int_fits<T>(v)) return false;
    *out = static_cast<T>(v);
    return true;
}

bool gguf_file::get_u32(const std::string & key, uint32_t * out) const { return get_int(*this, key, out); }
bool gguf_file::get_i32(const std::string & key, int32_t * out) const { return get_int(*this, key, out); }
bool gguf_file::get_u64(const std::string & key, uint64_t * out) const { return get_int(*this, key, out); }

bool gguf_file::get_str(const std::string & key, std::string * out) const {
    const int i = find_key(key);
    if (i < 0 || kvs[i].type != GGUF_STRING) return false;
    *out = kvs[i].str;
    return true;
}

bool gguf_file::get_f32(const std::string & key, float * out) const {
    const int i = find_key(key);
    double    d;
    if (i < 0 || kvs[i].type == GGUF_ARRAY || !float_at(kvs[i].type, kvs[i].raw.data(), &d)) return false;
    *out = static_cast<float>(d);
    return true;
}

bool gguf_file::get_bool(const std::string & key, bool * out) const {
    const int i = find_key(key);
    if (i < 0 || kvs[i].type != GGUF_BOOL) return false;
    *out = kvs[i].raw[0] != 0;
    return true;
}

const std::vector<std::string> * gguf_file::get_str_array(const std::string & key) const {
    const int i = find_key(key);
    if (i < 0 || kvs[i].type != GGUF_ARRAY || kvs[i].arr_type != GGUF_STRING) return nullptr;
    return &kvs[i].strs;
}

bool gguf_file::get_f32_array(const std::string & key, std::vector<float> * out) const {
    const int i = find_key(key);
    if (i < 0 || kvs[i].type != GGUF_ARRAY) return false;
    const gguf_kv & kv = kvs[i];
    if (kv.arr_type != GGUF_F32 && kv.arr_type != GGUF_F64) return false;
    const size_t es = elem_size(kv.arr_type);
    out->resize(static_cast<size_t>(kv.arr_n));
    for (size_t j = 0; j < out->size(); j++) {
        double d = 0;
        float_at(kv.arr_type, kv.raw.data() + j * es, &d);
        (*out)[j] = static_cast<float>(d);
    }
    return true;
}

bool gguf_file::get_i32_array(const std::string & key, std::vector<int32_t> * out) const {
    const int i = find_key(key);
    if (i < 0 || kvs[i].type != GGUF_ARRAY) return false;
    const gguf_kv & kv = kvs[i];
    const size_t    es = elem_size(kv.arr_type);
    if (es == 0 || kv.arr_type == GGUF_BOOL || kv.arr_type == GGUF_F32 || kv.arr_type == GGUF_F64) return false;
    std::vector<int32_t> vals(static_cast<size_t>(kv.arr_n));
    for (size_t j = 0; j < vals.size(); j++) {
        __int128 v = 0;
        int_at(kv.arr_type, kv.raw.data() + j * es, &v);
        if (!int_fits<int32_t>(v)) return false;
        vals[j] = static_cast<int32_t>(v);
    }
    *out = std::move(vals);
    return true;
}

}  // namespace pi
