// gguf.h - reading GGUF files (versions 2 and 3, magics "GGUF" and PowerInfer's "PWRI").
//
// gguf_file::open parses the header, metadata and tensor table, checking every length against the
// file size before it allocates, and maps the file (or reads the tensor data) so that each
// tensor's data pointer is valid for the life of the gguf_file. Nothing in the data section is
// touched by open itself: a vocab-only load reads no weight pages.
#pragma once

#include "powerinfer.h"

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace pi {

// GGUF metadata value types (file format ids).
enum gguf_vtype : uint32_t {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10, GGUF_I64 = 11,
    GGUF_F64 = 12,
};

struct gguf_kv {
    std::string key;
    uint32_t    type     = 0;  // gguf_vtype
    uint32_t    arr_type = 0;  // element type when type == GGUF_ARRAY
    uint64_t    arr_n    = 0;  // element count when type == GGUF_ARRAY
    // Scalars and numeric arrays: the raw little-endian bytes (one element for a scalar).
    // Arrays of arrays (arr_type == GGUF_ARRAY): the elements' bytes as stored in the file, each
    // one u32 element type, u64 count, elements (already validated by the reader).
    std::vector<uint8_t>     raw;
    // Strings: str for a scalar, strs for an array of strings.
    std::string              str;
    std::vector<std::string> strs;
};

struct gguf_tensor {
    std::string     name;
    int32_t         type   = 0;  // pi_type
    int32_t         n_dims = 0;
    int64_t         ne[4]  = {1, 1, 1, 1};
    uint64_t        offset = 0;  // relative to the data section, as stored
    uint64_t        n_bytes = 0;
    const uint8_t * data   = nullptr;  // valid while the gguf_file lives (nullptr if vocab-only and unmapped)
};

struct gguf_open_options {
    bool use_mmap  = true;   // map the file; else read the data section into memory
    bool load_data = true;   // false: never read or map the data section (vocab-only)
};

// Bytes of a tensor of type with shape ne (4 dims, unused ones 1). False when the type is
// unknown, ne[0] is not a whole number of blocks, a dim is negative, or the size overflows.
bool gguf_tensor_bytes(int32_t type, const int64_t ne[4], uint64_t * out);

class gguf_file {
public:
    // On failure returns the status and sets the last error to "<path>: <cause>".
    static pi_status open(const std::string & path, const gguf_open_options & opts,
                          std::unique_ptr<gguf_file> * out);
    ~gguf_file();
    gguf_file(const gguf_file &)             = delete;  // owns a mapping
    gguf_file & operator=(const gguf_file &) = delete;

    std::string              path;
    uint32_t                 version     = 0;
    bool                     sparse_magic = false;  // "PWRI"
    uint64_t                 alignment   = 32;
    uint64_t                 data_offset = 0;       // file offset of the data section
    uint64_t                 file_size   = 0;
    std::vector<gguf_kv>     kvs;
    std::vector<gguf_tensor> tensors;

    // -1 / nullptr when absent.
    int                 find_key(const std::string & key) const;
    const gguf_tensor * find_tensor(const std::string & name) const;

    // Typed getters: false when the key is absent or not convertible (any integer type converts
    // to any other integer type if the value fits; f32/f64 convert to each other).
    bool get_str(const std::string & key, std::string * out) const;
    bool get_u32(const std::string & key, uint32_t * out) const;
    bool get_i32(const std::string & key, int32_t * out) const;
    bool get_u64(const std::string & key, uint64_t * out) const;
    bool get_f32(const std::string & key, float * out) const;
    bool get_bool(const std::string & key, bool * out) const;
    const std::vector<std::string> * get_str_array(const std::string & key) const;
    bool get_f32_array(const std::string & key, std::vector<float> * out) const;
    bool get_i32_array(const std::string & key, std::vector<int32_t> * out) const;

    // The value of kvs[i] as llama-cpp-python's metadata shows it (a string).
    std::string value_string(size_t i) const;

private:
    gguf_file() = default;
    void *    map_addr_   = nullptr;
    size_t    map_size_   = 0;
    uint8_t * owned_data_ = nullptr;  // the data section read into memory (core/huge_pages.h), when not mapped
    size_t    owned_size_ = 0;
    size_t    owned_span_ = 0;  // what big_alloc reserved for owned_data_
    std::unordered_map<std::string, size_t> tensor_by_name_;  // index into tensors
};

}  // namespace pi
