// types.h - sizes of the GGUF tensor types. The kernels for each type live in cpu/.
#pragma once

#include "powerinfer.h"

#include <cstddef>
#include <cstdint>

namespace pi {

struct type_info {
    const char * name;        // "Q4_K"; nullptr for ids we do not know
    int64_t      block_size;  // elements per block
    int64_t      block_bytes; // bytes per block
};

// Facts for a type id; name == nullptr when unknown.
const type_info & type_get(int32_t type);

inline bool type_known(int32_t type) { return type_get(type).name != nullptr; }

// Bytes for n elements of type, or -1 if n is not a whole number of blocks, the type is unknown or
// the size overflows int64.
int64_t type_row_bytes(int32_t type, int64_t n);

// IEEE half and bfloat16 conversions (scalar; the SIMD paths have their own).
float    fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
inline float bf16_to_fp32(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = static_cast<uint32_t>(h) << 16;
    return v.f;
}
uint16_t fp32_to_bf16(float f);

}  // namespace pi
