// gguf_writer.cpp - writing GGUF v3 files: header, metadata, tensor table, aligned data.
//
// The file goes to path + ".tmp" and is renamed over path only once every byte is written and
// the file closed, so readers never see a half-written model.
#include "gguf/gguf_writer.h"

#include "core/huge_pages.h"
#include "core/status.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <unordered_set>

namespace pi {

namespace {

size_t fixed_size(uint32_t t) {
    switch (t) {
        case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
        case GGUF_U16: case GGUF_I16: return 2;
        case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
        case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
        default: return 0;
    }
}

// Sequential writer that remembers the first error and the byte count.
class out_file {
public:
    explicit out_file(FILE * f) : f_(f) {}

    void bytes(const void * p, size_t n) {
        if (ok_ && n && std::fwrite(p, 1, n, f_) != n) {
            ok_  = false;
            err_ = errno;
        }
        pos_ += n;
    }
    void u32(uint32_t v) { bytes(&v, 4); }
    void u64(uint64_t v) { bytes(&v, 8); }
    void str(const std::string & s) {
        u64(s.size());
        bytes(s.data(), s.size());
    }
    void pad_to(uint64_t alignment) {
        static const uint8_t zeros[256] = {0};
        uint64_t             n          = (alignment - pos_ % alignment) % alignment;
        while (n > 0) {
            const size_t k = n < sizeof(zeros) ? static_cast<size_t>(n) : sizeof(zeros);
            bytes(zeros, k);
            n -= k;
        }
    }
    bool     ok() const { return ok_; }
    int      err() const { return err_; }
    uint64_t pos() const { return pos_; }

private:
    FILE *   f_;
    bool     ok_  = true;
    int      err_ = 0;
    uint64_t pos_ = 0;
};

// Checks that a metadata value is self-consistent (sizes match types) before writing it.
bool kv_valid(const gguf_kv & kv) {
    if (kv.type == GGUF_STRING) return true;
    if (kv.type == GGUF_ARRAY) {
        if (kv.arr_type == GGUF_STRING) return kv.strs.size() == kv.arr_n;
        if (kv.arr_type == GGUF_ARRAY) return true;  // raw holds the nested bytes as read
        const size_t es = fixed_size(kv.arr_type);
        return es != 0 && kv.raw.size() == kv.arr_n * es;
    }
    const size_t es = fixed_size(kv.type);
    return es != 0 && kv.raw.size() == es;
}

void write_kv(out_file & out, const gguf_kv & kv) {
    out.str(kv.key);
    out.u32(kv.type);
    if (kv.type == GGUF_STRING) {
        out.str(kv.str);
    } else if (kv.type == GGUF_ARRAY) {
        out.u32(kv.arr_type);
        out.u64(kv.arr_n);
        if (kv.arr_type == GGUF_STRING) {
            for (const std::string & s : kv.strs) out.str(s);
        } else {
            out.bytes(kv.raw.data(), kv.raw.size());
        }
    } else {
        out.bytes(kv.raw.data(), kv.raw.size());
    }
}

}  // namespace

gguf_writer::gguf_writer(bool sparse_magic, uint32_t alignment)
    : sparse_magic_(sparse_magic), alignment_(alignment) {}

void gguf_writer::add_kv(const gguf_kv & kv) { kvs_.push_back(kv); }

void gguf_writer::add_str(const std::string & key, const std::string & value) {
    gguf_kv kv;
    kv.key  = key;
    kv.type = GGUF_STRING;
    kv.str  = value;
    kvs_.push_back(std::move(kv));
}

void gguf_writer::add_u32(const std::string & key, uint32_t value) {
    gguf_kv kv;
    kv.key  = key;
    kv.type = GGUF_U32;
    kv.raw.resize(4);
    std::memcpy(kv.raw.data(), &value, 4);
    kvs_.push_back(std::move(kv));
}

void gguf_writer::add_f32(const std::string & key, float value) {
    gguf_kv kv;
    kv.key  = key;
    kv.type = GGUF_F32;
    kv.raw.resize(4);
    std::memcpy(kv.raw.data(), &value, 4);
    kvs_.push_back(std::move(kv));
}

void gguf_writer::add_tensor(const std::string & name, int32_t type, int32_t n_dims, const int64_t ne[4],
                             const void * data, uint64_t n_bytes) {
    tensor_entry t;
    t.name   = name;
    t.type   = type;
    t.n_dims = n_dims;
    for (int d = 0; d < 4; d++) t.ne[d] = d < n_dims ? ne[d] : 1;
    t.data    = data;
    t.n_bytes = n_bytes;
    tensors_.push_back(t);
}

pi_status gguf_writer::write(const std::string & path) const {
    const char * p = path.c_str();
    if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) {
        return fail(PI_ERR_INVALID_ARGUMENT, "%s: alignment %u is not a power of two", p, alignment_);
    }
    // Validate everything before creating the file.
    std::vector<gguf_kv>            kvs = kvs_;
    std::unordered_set<std::string> keys;
    bool                            has_alignment = false;
    for (const gguf_kv & kv : kvs) {
        if (!keys.insert(kv.key).second) return fail(PI_ERR_INVALID_ARGUMENT, "%s: duplicate key '%s'", p, kv.key.c_str());
        if (!kv_valid(kv)) {
            return fail(PI_ERR_INVALID_ARGUMENT, "%s: key '%s': value size does not match its type", p, kv.key.c_str());
        }
        if (kv.key == "general.alignment") {
            uint32_t a = 0;
            if (kv.type == GGUF_U32) std::memcpy(&a, kv.raw.data(), 4);
            if (a != alignment_) {
                return fail(PI_ERR_INVALID_ARGUMENT, "%s: general.alignment key differs from the writer's alignment %u",
                            p, alignment_);
            }
            has_alignment = true;
        }
    }
    if (alignment_ != 32 && !has_alignment) {
        gguf_kv kv;
        kv.key  = "general.alignment";
        kv.type = GGUF_U32;
        kv.raw.resize(4);
        std::memcpy(kv.raw.data(), &alignment_, 4);
        kvs.push_back(std::move(kv));
    }
    std::unordered_set<std::string> names;
    std::vector<uint64_t>           offsets(tensors_.size());
    uint64_t                        offset = 0;
    for (size_t i = 0; i < tensors_.size(); i++) {
        const tensor_entry & t = tensors_[i];
        if (!names.insert(t.name).second) {
            return fail(PI_ERR_INVALID_ARGUMENT, "%s: duplicate tensor name '%s'", p, t.name.c_str());
        }
        if (t.n_dims < 0 || t.n_dims > 4) {
            return fail(PI_ERR_INVALID_ARGUMENT, "%s: tensor '%s' has %d dimensions", p, t.name.c_str(), t.n_dims);
        }
        uint64_t bytes = 0;
        if (!gguf_tensor_bytes(t.type, t.ne, &bytes)) {
            return fail(PI_ERR_INVALID_ARGUMENT, "%s: tensor '%s': type %d and shape [%" PRId64 ", %" PRId64 ", %" PRId64
                        ", %" PRId64 "] do not make a valid tensor", p, t.name.c_str(), t.type, t.ne[0], t.ne[1],
                        t.ne[2], t.ne[3]);
        }
        if (bytes != t.n_bytes || (t.n_bytes && !t.data)) {
            return fail(PI_ERR_INVALID_ARGUMENT, "%s: tensor '%s': %" PRIu64 " bytes given, type %d and its shape need %" PRIu64,
                        p, t.name.c_str(), t.n_bytes, t.type, bytes);
        }
        offsets[i] = offset;
        offset += (t.n_bytes + alignment_ - 1) / alignment_ * alignment_;
    }

    const std::string tmp = path + ".tmp";
    FILE *            f   = std::fopen(tmp.c_str(), "wb");
    if (!f) return fail(PI_ERR_IO, "%s: cannot create: %s", tmp.c_str(), std::strerror(errno));
    out_file out(f);
    out.bytes(sparse_magic_ ? "PWRI" : "GGUF", 4);
    out.u32(3);
    out.u64(tensors_.size());
    out.u64(kvs.size());
    for (const gguf_kv & kv : kvs) write_kv(out, kv);
    for (size_t i = 0; i < tensors_.size(); i++) {
        const tensor_entry & t = tensors_[i];
        out.str(t.name);
        out.u32(static_cast<uint32_t>(t.n_dims));
        for (int d = 0; d < t.n_dims; d++) out.u64(static_cast<uint64_t>(t.ne[d]));
        out.u32(static_cast<uint32_t>(t.type));
        out.u64(offsets[i]);
    }
    out.pad_to(alignment_);
    for (const tensor_entry & t : tensors_) {
        out.bytes(t.data, static_cast<size_t>(t.n_bytes));
        out.pad_to(alignment_);
    }
    bool written = out.ok();
    int  err     = out.err();
    if (written && std::fflush(f) != 0) {
        written = false;
        err     = errno;
    }
    if (written) drop_written_pages(fileno(f), static_cast<size_t>(offset));  // see core/huge_pages.h
    const bool closed  = std::fclose(f) == 0;
    if (!written || !closed) {
        const int e = written ? errno : err;
        std::remove(tmp.c_str());
        return fail(PI_ERR_IO, "%s: write failed: %s", tmp.c_str(), std::strerror(e));
    }
    if (std::rename(tmp.c_str(), p) != 0) {
        const int e = errno;
        std::remove(tmp.c_str());
        return fail(PI_ERR_IO, "%s: cannot rename %s over it: %s", p, tmp.c_str(), std::strerror(e));
    }
    return PI_OK;
}

}  // namespace pi
