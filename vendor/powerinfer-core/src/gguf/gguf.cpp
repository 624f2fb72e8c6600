// gguf.cpp - parsing GGUF v2/v3 files (magic "GGUF", or "PWRI" for PowerInfer's sparse files).
//
// Layout (little-endian):
//   magic[4] u32 version u64 n_tensors u64 n_kv
//   n_kv x     { string key, u32 type, value }
//   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
//   padding to general.alignment, then the data section (tensor offsets are relative to it)
// A string is u64 length + bytes (no terminator). An array value is u32 element type, u64 count,
// elements (arrays may nest). Versions 2 and 3 share this layout; version 1 used u32 counts.
//
// Every count and length is checked against the bytes left in the file before anything is
// allocated for it, so a corrupt header fails with a message instead of a huge allocation.
#include "gguf/gguf.h"

#include "core/huge_pages.h"
#include "core/status.h"
#include "core/types.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <new>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace pi {

namespace {

constexpr int      k_max_dims        = 4;
constexpr int      k_max_array_depth = 16;   // nested arrays deeper than this are refused
constexpr uint64_t k_read_chunk      = 1u << 20;

// Bytes of one element of a fixed-size metadata type; 0 for strings, arrays and unknown ids.
uint64_t vtype_size(uint32_t t) {
    switch (t) {
        case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
        case GGUF_U16: case GGUF_I16: return 2;
        case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
        case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
        default: return 0;
    }
}

// The fewest bytes an element of type t can take in the file (a string is at least its length
// field, an array at least its type and count).
uint64_t vtype_min_size(uint32_t t) {
    if (t == GGUF_STRING) return 8;
    if (t == GGUF_ARRAY) return 12;
    return vtype_size(t);
}

bool vtype_known(uint32_t t) { return t <= GGUF_F64; }

const char * vtype_name(uint32_t t) {
    static const char * names[] = {"u8",  "i8",   "u16",    "i16",   "u32", "i32", "f32",
                                   "bool", "string", "array", "u64", "i64", "f64"};
    return vtype_known(t) ? names[t] : "unknown";
}

// Buffered sequential reader over the header part of the file. Every read is checked against
// the file size; a short read reports how many bytes were wanted and how many remain.
class header_reader {
public:
    header_reader(int fd, uint64_t size) : fd_(fd), size_(size) {}

    uint64_t pos() const { return pos_; }
    uint64_t left() const { return size_ - pos_; }

    // Copies n bytes at the cursor into dst (dst may be null to skip). False when the file ends
    // first, or on an I/O error (io_error() then holds errno).
    bool read(void * dst, uint64_t n) {
        if (n > left()) return false;
        uint8_t * out = static_cast<uint8_t *>(dst);
        while (n > 0) {
            if (pos_ < buf_start_ || pos_ >= buf_start_ + buf_len_) {
                if (!fill()) return false;
            }
            const uint64_t in_buf = buf_start_ + buf_len_ - pos_;
            const uint64_t take   = n < in_buf ? n : in_buf;
            if (out) {
                std::memcpy(out, buf_.data() + (pos_ - buf_start_), take);
                out += take;
            }
            pos_ += take;
            n -= take;
        }
        return true;
    }

    template <typename T> bool get(T * v) { return read(v, sizeof(T)); }

    int io_error() const { return io_errno_; }

private:
    bool fill() {
        if (buf_.empty()) buf_.resize(k_read_chunk);
        const uint64_t want = left() < k_read_chunk ? left() : k_read_chunk;
        uint64_t got = 0;
        while (got < want) {
            ssize_t r = ::pread(fd_, buf_.data() + got, want - got, static_cast<off_t>(pos_ + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                io_errno_ = r < 0 ? errno : EIO;
                return false;
            }
            got += static_cast<uint64_t>(r);
        }
        buf_start_ = pos_;
        buf_len_   = got;
        return true;
    }

    int                  fd_;
    uint64_t             size_;
    uint64_t             pos_       = 0;
    std::vector<uint8_t> buf_;
    uint64_t             buf_start_ = 0;
    uint64_t             buf_len_   = 0;
    int                  io_errno_  = 0;
};

// Parses the header of one file into a gguf_file. Each failure names the path and what was
// being read (key or tensor, by index and name) and where.
class header_parser {
public:
    header_parser(const std::string & path, header_reader & rd) : path_(path), rd_(rd) {}

    pi_status parse(gguf_file & f);

private:
    pi_status truncated(const std::string & what, uint64_t need) {
        if (rd_.io_error()) {
            return fail(PI_ERR_IO, "%s: read error at offset %" PRIu64 " (%s): %s", path_.c_str(), rd_.pos(),
                        what.c_str(), std::strerror(rd_.io_error()));
        }
        return fail(PI_ERR_FORMAT,
                    "%s: truncated or corrupt file: %s at offset %" PRIu64 " needs %" PRIu64
                    " bytes but only %" PRIu64 " remain before the end of the file",
                    path_.c_str(), what.c_str(), rd_.pos(), need, rd_.left());
    }

    // Reads a u64-length string; the length is checked against the bytes left first.
    pi_status read_string(std::string * s, const char * what, const std::string & owner) {
        uint64_t len = 0;
        if (!rd_.get(&len)) return truncated(strprintf("length of %s (%s)", what, owner.c_str()), 8);
        if (len > rd_.left()) {
            return fail(PI_ERR_FORMAT,
                        "%s: truncated or corrupt file: %s (%s) at offset %" PRIu64 " claims %" PRIu64
                        " bytes, past the end of the file (%" PRIu64 " bytes left)",
                        path_.c_str(), what, owner.c_str(), rd_.pos() - 8, len, rd_.left());
        }
        s->resize(static_cast<size_t>(len));
        if (len && !rd_.read(&(*s)[0], len)) return truncated(strprintf("%s (%s)", what, owner.c_str()), len);
        return PI_OK;
    }

    // Reads the count and elements of an array value whose type field was just read.
    // Numeric elements land in raw, strings in strs; nested arrays are kept as their file bytes
    // in raw (validated here, rendered later by value_string).
    pi_status read_array(gguf_kv & kv, const std::string & owner);
    // Validates a nested array (type + count + elements) and appends its bytes to out.
    pi_status read_nested(std::vector<uint8_t> & out, const std::string & owner, int depth);
    pi_status check_count(uint64_t n, uint32_t elem_type, const std::string & owner);

    pi_status read_kv(gguf_kv & kv, uint64_t index);
    pi_status read_tensor_info(gguf_tensor & t, uint64_t index);

    const std::string & path_;
    header_reader &     rd_;
};

pi_status header_parser::check_count(uint64_t n, uint32_t elem_type, const std::string & owner) {
    const uint64_t min = vtype_min_size(elem_type);
    if (n > rd_.left() / min) {
        return fail(PI_ERR_FORMAT,
                    "%s: truncated or corrupt file: array of %" PRIu64 " %s elements (%s) at offset %" PRIu64
                    " needs at least %" PRIu64 " bytes per element, past the end of the file (%" PRIu64
                    " bytes left)",
                    path_.c_str(), n, vtype_name(elem_type), owner.c_str(), rd_.pos(), min, rd_.left());
    }
    return PI_OK;
}

pi_status header_parser::read_nested(std::vector<uint8_t> & out, const std::string & owner, int depth) {
    if (depth > k_max_array_depth) {
        return fail(PI_ERR_FORMAT, "%s: %s: arrays nested more than %d deep", path_.c_str(), owner.c_str(),
                    k_max_array_depth);
    }
    uint32_t type = 0;
    uint64_t n    = 0;
    if (!rd_.get(&type)) return truncated("element type of nested array (" + owner + ")", 4);
    if (!vtype_known(type)) {
        return fail(PI_ERR_FORMAT, "%s: %s: nested array has unknown element type %u at offset %" PRIu64,
                    path_.c_str(), owner.c_str(), type, rd_.pos() - 4);
    }
    if (!rd_.get(&n)) return truncated("length of nested array (" + owner + ")", 8);
    PI_TRY(check_count(n, type, owner));
    const size_t head = out.size();
    out.resize(head + 12);
    std::memcpy(out.data() + head, &type, 4);
    std::memcpy(out.data() + head + 4, &n, 8);
    if (type == GGUF_ARRAY) {
        for (uint64_t j = 0; j < n; j++) PI_TRY(read_nested(out, owner, depth + 1));
    } else if (type == GGUF_STRING) {
        std::string s;
        for (uint64_t j = 0; j < n; j++) {
            PI_TRY(read_string(&s, "string in nested array", owner));
            const uint64_t len = s.size();
            const size_t   at  = out.size();
            out.resize(at + 8 + s.size());
            std::memcpy(out.data() + at, &len, 8);
            if (len) std::memcpy(out.data() + at + 8, s.data(), s.size());
        }
    } else {
        const uint64_t bytes = n * vtype_size(type);  // fits: checked against the bytes left
        const size_t   at    = out.size();
        out.resize(at + bytes);
        if (bytes && !rd_.read(out.data() + at, bytes)) return truncated("nested array (" + owner + ")", bytes);
    }
    return PI_OK;
}

pi_status header_parser::read_array(gguf_kv & kv, const std::string & owner) {
    if (!rd_.get(&kv.arr_type)) return truncated("element type of array (" + owner + ")", 4);
    if (!vtype_known(kv.arr_type)) {
        return fail(PI_ERR_FORMAT, "%s: %s: array has unknown element type %u at offset %" PRIu64,
                    path_.c_str(), owner.c_str(), kv.arr_type, rd_.pos() - 4);
    }
    if (!rd_.get(&kv.arr_n)) return truncated("length of array (" + owner + ")", 8);
    PI_TRY(check_count(kv.arr_n, kv.arr_type, owner));

    if (kv.arr_type == GGUF_STRING) {
        // Grow with what is actually read: the count alone never decides an allocation's size.
        kv.strs.reserve(static_cast<size_t>(kv.arr_n < 65536 ? kv.arr_n : 65536));
        for (uint64_t j = 0; j < kv.arr_n; j++) {
            kv.strs.emplace_back();
            PI_TRY(read_string(&kv.strs.back(), "string in array", owner));
        }
    } else if (kv.arr_type == GGUF_ARRAY) {
        for (uint64_t j = 0; j < kv.arr_n; j++) PI_TRY(read_nested(kv.raw, owner, 1));
    } else {
        const uint64_t bytes = kv.arr_n * vtype_size(kv.arr_type);  // <= bytes left, so it fits
        kv.raw.resize(static_cast<size_t>(bytes));
        if (bytes && !rd_.read(kv.raw.data(), bytes)) return truncated("array (" + owner + ")", bytes);
    }
    return PI_OK;
}

pi_status header_parser::read_kv(gguf_kv & kv, uint64_t index) {
    const std::string owner_idx = strprintf("key #%" PRIu64, index);
    PI_TRY(read_string(&kv.key, "key name", owner_idx));
    const std::string owner = strprintf("key #%" PRIu64 " '%s'", index, kv.key.c_str());
    if (!rd_.get(&kv.type)) return truncated("value type of " + owner, 4);
    if (!vtype_known(kv.type)) {
        return fail(PI_ERR_FORMAT, "%s: %s has unknown value type %u at offset %" PRIu64, path_.c_str(),
                    owner.c_str(), kv.type, rd_.pos() - 4);
    }
    if (kv.type == GGUF_STRING) return read_string(&kv.str, "string value", owner);
    if (kv.type == GGUF_ARRAY) return read_array(kv, owner);
    const uint64_t size = vtype_size(kv.type);
    kv.raw.resize(size);
    if (!rd_.read(kv.raw.data(), size)) return truncated("value of " + owner, size);
    return PI_OK;
}

pi_status header_parser::read_tensor_info(gguf_tensor & t, uint64_t index) {
    PI_TRY(read_string(&t.name, "tensor name", strprintf("tensor #%" PRIu64, index)));
    const std::string owner = strprintf("tensor #%" PRIu64 " '%s'", index, t.name.c_str());
    uint32_t n_dims = 0;
    if (!rd_.get(&n_dims)) return truncated("dimension count of " + owner, 4);
    if (n_dims > k_max_dims) {
        return fail(PI_ERR_FORMAT, "%s: %s has %u dimensions (at most %d are allowed)", path_.c_str(),
                    owner.c_str(), n_dims, k_max_dims);
    }
    t.n_dims = static_cast<int32_t>(n_dims);
    int64_t n_elem = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t ne = 0;
        if (!rd_.get(&ne)) return truncated("shape of " + owner, 8);
        if (ne > static_cast<uint64_t>(INT64_MAX)) {
            return fail(PI_ERR_FORMAT, "%s: %s has dimension %u of %" PRIu64 " elements (negative as int64)",
                        path_.c_str(), owner.c_str(), d, ne);
        }
        t.ne[d] = static_cast<int64_t>(ne);
        if (__builtin_mul_overflow(n_elem, t.ne[d], &n_elem)) {
            return fail(PI_ERR_FORMAT, "%s: %s has a shape whose element count overflows 64 bits",
                        path_.c_str(), owner.c_str());
        }
    }
    uint32_t type = 0;
    if (!rd_.get(&type)) return truncated("type of " + owner, 4);
    if (!rd_.get(&t.offset)) return truncated("data offset of " + owner, 8);
    if (!type_known(static_cast<int32_t>(type)) || type > INT32_MAX) {
        return fail(PI_ERR_UNSUPPORTED, "%s: %s has unknown tensor type %u", path_.c_str(), owner.c_str(), type);
    }
    t.type = static_cast<int32_t>(type);
    const type_info & ti = type_get(t.type);
    if (t.ne[0] % ti.block_size != 0) {
        return fail(PI_ERR_FORMAT, "%s: %s: row length %" PRId64 " is not a multiple of the %s block size %" PRId64,
                    path_.c_str(), owner.c_str(), t.ne[0], ti.name, ti.block_size);
    }
    if (!gguf_tensor_bytes(t.type, t.ne, &t.n_bytes)) {
        return fail(PI_ERR_FORMAT, "%s: %s: byte size overflows 64 bits", path_.c_str(), owner.c_str());
    }
    return PI_OK;
}

pi_status header_parser::parse(gguf_file & f) {
    char magic[4];
    if (!rd_.read(magic, 4)) return truncated("magic", 4);
    if (std::memcmp(magic, "GGUF", 4) == 0) {
        f.sparse_magic = false;
    } else if (std::memcmp(magic, "PWRI", 4) == 0) {
        f.sparse_magic = true;
    } else {
        const uint8_t * m = reinterpret_cast<const uint8_t *>(magic);
        return fail(PI_ERR_FORMAT,
                    "%s: not a GGUF file: bad magic %02x %02x %02x %02x (expected \"GGUF\", or \"PWRI\" for "
                    "PowerInfer sparse files)",
                    path_.c_str(), m[0], m[1], m[2], m[3]);
    }
    if (!rd_.get(&f.version)) return truncated("version", 4);
    if (f.version == 1) {
        return fail(PI_ERR_UNSUPPORTED, "%s: GGUF version 1 is not supported (only versions 2 and 3); "
                    "convert the file again with a current converter", path_.c_str());
    }
    if (f.version != 2 && f.version != 3) {
        const bool swapped = (f.version & 0xffff) == 0 && f.version != 0;
        return fail(PI_ERR_UNSUPPORTED, "%s: unsupported GGUF version %u (only versions 2 and 3)%s", path_.c_str(),
                    f.version, swapped ? "; the file looks big-endian, which is not supported" : "");
    }
    uint64_t n_tensors = 0, n_kv = 0;
    if (!rd_.get(&n_tensors)) return truncated("tensor count", 8);
    if (!rd_.get(&n_kv)) return truncated("metadata count", 8);
    // A key takes at least 13 bytes (length, type, one byte of value); a tensor at least 24.
    if (n_kv > rd_.left() / 13) {
        return fail(PI_ERR_FORMAT, "%s: corrupt header: %" PRIu64 " metadata keys cannot fit in the %" PRIu64
                    " bytes left in the file", path_.c_str(), n_kv, rd_.left());
    }
    if (n_tensors > rd_.left() / 24) {
        return fail(PI_ERR_FORMAT, "%s: corrupt header: %" PRIu64 " tensors cannot fit in the %" PRIu64
                    " bytes left in the file", path_.c_str(), n_tensors, rd_.left());
    }

    // Entries are appended as they are read (a gguf_kv is ~10x the 13 bytes a key can take in the
    // file, so sizing the vector from the count would let a corrupt count allocate that much).
    std::unordered_map<std::string, uint64_t> key_index;
    f.kvs.reserve(static_cast<size_t>(n_kv < 1024 ? n_kv : 1024));
    for (uint64_t i = 0; i < n_kv; i++) {
        f.kvs.emplace_back();
        PI_TRY(read_kv(f.kvs.back(), i));
        auto ins = key_index.emplace(f.kvs.back().key, i);
        if (!ins.second) {
            return fail(PI_ERR_FORMAT, "%s: duplicate metadata key '%s' (keys #%" PRIu64 " and #%" PRIu64 ")",
                        path_.c_str(), f.kvs.back().key.c_str(), ins.first->second, i);
        }
    }

    const int ia = f.find_key("general.alignment");
    if (ia >= 0) {
        const gguf_kv & kv = f.kvs[ia];
        if (kv.type != GGUF_U32) {
            return fail(PI_ERR_FORMAT, "%s: general.alignment must be a u32, the file has a %s", path_.c_str(),
                        vtype_name(kv.type));
        }
        uint32_t a = 0;
        std::memcpy(&a, kv.raw.data(), 4);
        if (a == 0 || (a & (a - 1)) != 0) {
            return fail(PI_ERR_FORMAT, "%s: general.alignment is %u, not a power of two", path_.c_str(), a);
        }
        f.alignment = a;
    }

    f.tensors.reserve(static_cast<size_t>(n_tensors < 1024 ? n_tensors : 1024));
    for (uint64_t i = 0; i < n_tensors; i++) {
        f.tensors.emplace_back();
        PI_TRY(read_tensor_info(f.tensors.back(), i));
    }

    // The data section starts at the next multiple of the alignment after the tensor table.
    const uint64_t end_of_table = rd_.pos();
    f.data_offset = (end_of_table + f.alignment - 1) / f.alignment * f.alignment;
    return PI_OK;
}

// Checks names, alignment and bounds of every tensor against the data section.
pi_status check_tensors(const gguf_file & f, std::unordered_map<std::string, size_t> & index) {
    index.clear();
    index.reserve(f.tensors.size());
    for (size_t i = 0; i < f.tensors.size(); i++) {
        const gguf_tensor & t = f.tensors[i];
        auto ins = index.emplace(t.name, i);
        if (!ins.second) {
            return fail(PI_ERR_FORMAT, "%s: duplicate tensor name '%s' (tensors #%zu and #%zu)", f.path.c_str(),
                        t.name.c_str(), ins.first->second, i);
        }
        if (t.offset % f.alignment != 0) {
            return fail(PI_ERR_FORMAT,
                        "%s: tensor #%zu '%s' has misaligned data: offset %" PRIu64
                        " is not a multiple of the alignment %" PRIu64,
                        f.path.c_str(), i, t.name.c_str(), t.offset, f.alignment);
        }
        const uint64_t data_size = f.file_size > f.data_offset ? f.file_size - f.data_offset : 0;
        if (f.data_offset > f.file_size || t.offset > data_size || t.n_bytes > data_size - t.offset) {
            return fail(PI_ERR_FORMAT,
                        "%s: tensor #%zu '%s' data (%" PRIu64 " bytes at data offset %" PRIu64
                        ", file offset %" PRIu64 ") extends past the end of the file (%" PRIu64
                        " bytes): truncated or corrupt file",
                        f.path.c_str(), i, t.name.c_str(), t.n_bytes, t.offset, f.data_offset + t.offset,
                        f.file_size);
        }
    }
    return PI_OK;
}

// Closes a file descriptor when it goes out of scope.
struct fd_guard {
    int fd;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

bool gguf_tensor_bytes(int32_t type, const int64_t ne[4], uint64_t * out) {
    const type_info & ti = type_get(type);
    if (!ti.name || ne[0] < 0 || ne[0] % ti.block_size != 0) return false;
    int64_t bytes = 0;
    if (__builtin_mul_overflow(ne[0] / ti.block_size, ti.block_bytes, &bytes)) return false;
    for (int d = 1; d < k_max_dims; d++) {
        if (ne[d] < 0 || __builtin_mul_overflow(bytes, ne[d], &bytes)) return false;
    }
    *out = static_cast<uint64_t>(bytes);
    return true;
}

pi_status gguf_file::open(const std::string & path, const gguf_open_options & opts,
                          std::unique_ptr<gguf_file> * out) {
    out->reset();
    fd_guard fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (fd.fd < 0) {
        const int e = errno;
        if (e == ENOENT) return fail(PI_ERR_IO, "%s: no such file", path.c_str());
        if (e == EISDIR) return fail(PI_ERR_IO, "%s: is a directory, not a model file", path.c_str());
        return fail(PI_ERR_IO, "%s: cannot open: %s", path.c_str(), std::strerror(e));
    }
    struct stat st;
    if (::fstat(fd.fd, &st) != 0) return fail(PI_ERR_IO, "%s: cannot stat: %s", path.c_str(), std::strerror(errno));
    if (S_ISDIR(st.st_mode)) return fail(PI_ERR_IO, "%s: is a directory, not a model file", path.c_str());
    if (!S_ISREG(st.st_mode)) return fail(PI_ERR_IO, "%s: not a regular file", path.c_str());
    if (st.st_size == 0) return fail(PI_ERR_FORMAT, "%s: file is empty (0 bytes), not a GGUF model", path.c_str());

    std::unique_ptr<gguf_file> f(new gguf_file());
    f->path      = path;
    f->file_size = static_cast<uint64_t>(st.st_size);

    header_reader rd(fd.fd, f->file_size);
    header_parser parser(f->path, rd);
    PI_TRY(parser.parse(*f));
    PI_TRY(check_tensors(*f, f->tensor_by_name_));

    // The bytes the tensors occupy: from the data section start to the end of the last tensor.
    uint64_t data_end = f->data_offset;
    for (const gguf_tensor & t : f->tensors) {
        const uint64_t end = f->data_offset + t.offset + t.n_bytes;
        if (end > data_end) data_end = end;
    }

    if (opts.load_data && !f->tensors.empty()) {
        const uint8_t * base = nullptr;
        if (opts.use_mmap) {
            void * addr = ::mmap(nullptr, static_cast<size_t>(f->file_size), PROT_READ, MAP_PRIVATE, fd.fd, 0);
            if (addr == MAP_FAILED) {
                return fail(PI_ERR_IO, "%s: cannot map %" PRIu64 " bytes: %s", path.c_str(), f->file_size,
                            std::strerror(errno));
            }
            f->map_addr_ = addr;
            f->map_size_ = static_cast<size_t>(f->file_size);
            advise_huge_pages(addr, f->map_size_);
            base         = static_cast<const uint8_t *>(addr) + f->data_offset;
        } else {
            // Read the data section into memory of 2 MB pages (see core/huge_pages.h).
            const uint64_t size = data_end - f->data_offset;
            void *         mem  = nullptr;
            if (size > 0) {
                mem = big_alloc(static_cast<size_t>(size), &f->owned_span_);
                if (!mem) {
                    return fail(PI_ERR_OUT_OF_MEMORY, "%s: cannot allocate %" PRIu64 " bytes for the weights",
                                path.c_str(), size);
                }
                f->owned_data_ = static_cast<uint8_t *>(mem);
                f->owned_size_ = static_cast<size_t>(size);
                uint64_t got   = 0;
                while (got < size) {
                    const uint64_t want = size - got < (1u << 30) ? size - got : (1u << 30);
                    ssize_t r = ::pread(fd.fd, f->owned_data_ + got, want, static_cast<off_t>(f->data_offset + got));
                    if (r < 0 && errno == EINTR) continue;
                    if (r <= 0) {
                        return fail(PI_ERR_IO, "%s: cannot read the tensor data at offset %" PRIu64 ": %s",
                                    path.c_str(), f->data_offset + got, r < 0 ? std::strerror(errno) : "file shrank");
                    }
                    got += static_cast<uint64_t>(r);
                }
            }
            base = f->owned_data_;
        }
        for (gguf_tensor & t : f->tensors) t.data = base ? base + t.offset : nullptr;
    }

    *out = std::move(f);
    return PI_OK;
}

gguf_file::~gguf_file() {
    if (map_addr_) ::munmap(map_addr_, map_size_);
    big_free(owned_data_, owned_span_);
}

int gguf_file::find_key(const std::string & key) const {
    for (size_t i = 0; i < kvs.size(); i++) {
        if (kvs[i].key == key) return static_cast<int>(i);
    }
    return -1;
}

const gguf_tensor * gguf_file::find_tensor(const std::string & name) const {
    auto it = tensor_by_name_.find(name);
    return it == tensor_by_name_.end() ? nullptr : &tensors[it->second];
}

}  // namespace pi
