// gguf_writer.h - writing GGUF v3 files (tools: quantize, export, tests' synthetic models).
#pragma once

#include "gguf/gguf.h"

#include <string>
#include <vector>

namespace pi {

class gguf_writer {
public:
    // sparse_magic writes "PWRI" instead of "GGUF" (PowerInfer's sparse files).
    explicit gguf_writer(bool sparse_magic = false, uint32_t alignment = 32);

    // Appends a metadata entry (copied). Keys keep the order they were added in.
    void add_kv(const gguf_kv & kv);
    void add_str(const std::string & key, const std::string & value);
    void add_u32(const std::string & key, uint32_t value);
    void add_f32(const std::string & key, float value);

    // Appends a tensor; data must stay valid until write() returns. n_bytes must match type and ne.
    void add_tensor(const std::string & name, int32_t type, int32_t n_dims, const int64_t ne[4],
                    const void * data, uint64_t n_bytes);

    // Writes to path + ".tmp" and renames it over path only when complete, so a failure never
    // leaves a truncated file at path.
    pi_status write(const std::string & path) const;

private:
    struct tensor_entry {
        std::string  name;
        int32_t      type;
        int32_t      n_dims;
        int64_t      ne[4];
        const void * data;
        uint64_t     n_bytes;
    };
    bool                      sparse_magic_;
    uint32_t                  alignment_;
    std::vector<gguf_kv>      kvs_;
    std::vector<tensor_entry> tensors_;
};

}  // namespace pi
