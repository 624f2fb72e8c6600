// test_gguf_writer.cpp - the GGUF writer checked through the reader.
//
//   test_gguf_writer [OUT_DIR]
//
// With OUT_DIR the written files stay there (rt_{gguf,pwri}_{alignment}.gguf) for other readers
// to check (tests/test_gguf_reader.py reads them with the gguf package).
// Writes files with every metadata type (nested arrays included), tensors of several types and
// both magics and alignments, reads them back with gguf_file (data mapped and read), and checks
// every key, value, shape, offset and data byte. Also checks that invalid input is refused
// before any file is created, and that a failed write leaves neither the file nor its ".tmp".
// Prints one line per failed check and exits 1 if any failed.
#include "core/status.h"
#include "core/types.h"
#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "powerinfer.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

int g_failed = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            std::printf("FAIL %s:%d: %s (%s)\n", __FILE__, __LINE__, #cond, pi_last_error()); \
            g_failed++;                                                              \
        }                                                                            \
    } while (0)

bool exists(const std::string & p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}

template <typename T> pi::gguf_kv scalar(const std::string & key, uint32_t type, T v) {
    pi::gguf_kv kv;
    kv.key  = key;
    kv.type = type;
    kv.raw.resize(sizeof(T));
    std::memcpy(kv.raw.data(), &v, sizeof(T));
    return kv;
}

template <typename T> pi::gguf_kv array(const std::string & key, uint32_t type, const std::vector<T> & v) {
    pi::gguf_kv kv;
    kv.key      = key;
    kv.type     = pi::GGUF_ARRAY;
    kv.arr_type = type;
    kv.arr_n    = v.size();
    kv.raw.resize(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(kv.raw.data(), v.data(), kv.raw.size());
    return kv;
}

// [[1, 2], ["x"]] as nested-array bytes.
pi::gguf_kv nested(const std::string & key) {
    pi::gguf_kv kv;
    kv.key      = key;
    kv.type     = pi::GGUF_ARRAY;
    kv.arr_type = pi::GGUF_ARRAY;
    kv.arr_n    = 2;
    auto put = [&](const void * p, size_t n) {
        const uint8_t * b = static_cast<const uint8_t *>(p);
        kv.raw.insert(kv.raw.end(), b, b + n);
    };
    uint32_t t = pi::GGUF_I32;
    uint64_t n = 2;
    int32_t  v[2] = {1, 2};
    put(&t, 4); put(&n, 8); put(v, 8);
    t = pi::GGUF_STRING;
    n = 1;
    uint64_t len = 1;
    put(&t, 4); put(&n, 8); put(&len, 8); put("x", 1);
    return kv;
}

void roundtrip(const std::string & dir, bool sparse, uint32_t alignment, bool keep) {
    const std::string path = dir + "/rt_" + (sparse ? "pwri_" : "gguf_") + std::to_string(alignment) + ".gguf";
    pi::gguf_writer   w(sparse, alignment);
    w.add_str("general.architecture", "llama");
    w.add_u32("t.u32", 4000000000u);
    w.add_f32("t.f32", 0.1f);
    w.add_kv(scalar<uint8_t>("t.u8", pi::GGUF_U8, 200));
    w.add_kv(scalar<int8_t>("t.i8", pi::GGUF_I8, -100));
    w.add_kv(scalar<uint16_t>("t.u16", pi::GGUF_U16, 65000));
    w.add_kv(scalar<int16_t>("t.i16", pi::GGUF_I16, -32000));
    w.add_kv(scalar<int32_t>("t.i32", pi::GGUF_I32, -5));
    w.add_kv(scalar<uint64_t>("t.u64", pi::GGUF_U64, 1ull << 60));
    w.add_kv(scalar<int64_t>("t.i64", pi::GGUF_I64, -(1ll << 60)));
    w.add_kv(scalar<double>("t.f64", pi::GGUF_F64, 2.5));
    w.add_kv(scalar<uint8_t>("t.bool", pi::GGUF_BOOL, 1));
    w.add_kv(array<float>("t.arr.f32", pi::GGUF_F32, {1.5f, -2.0f}));
    w.add_kv(array<int32_t>("t.arr.i32", pi::GGUF_I32, {7, -8, 9}));
    w.add_kv(array<uint8_t>("t.arr.empty", pi::GGUF_U8, {}));
    pi::gguf_kv strs;
    strs.key      = "t.arr.str";
    strs.type     = pi::GGUF_ARRAY;
    strs.arr_type = pi::GGUF_STRING;
    strs.strs     = {"a", "b\"c", ""};
    strs.arr_n    = strs.strs.size();
    w.add_kv(strs);
    w.add_kv(nested("t.arr.nested"));

    // Tensors: F32 [5, 3], F16 [8], Q8_0 [64, 2] (random bytes: the reader does not decode).
    std::vector<float>    f32(15);
    std::vector<uint16_t> f16(8);
    std::vector<uint8_t>  q8(2 * 2 * 34);
    for (size_t i = 0; i < f32.size(); i++) f32[i] = static_cast<float>(i) * 0.5f;
    for (size_t i = 0; i < f16.size(); i++) f16[i] = pi::fp32_to_fp16(static_cast<float>(i));
    for (size_t i = 0; i < q8.size(); i++) q8[i] = static_cast<uint8_t>(i * 7);
    const int64_t ne_a[4] = {5, 3, 1, 1}, ne_b[4] = {8, 1, 1, 1}, ne_c[4] = {64, 2, 1, 1};
    w.add_tensor("a", PI_TYPE_F32, 2, ne_a, f32.data(), f32.size() * 4);
    w.add_tensor("b", PI_TYPE_F16, 1, ne_b, f16.data(), f16.size() * 2);
    w.add_tensor("c", PI_TYPE_Q8_0, 2, ne_c, q8.data(), q8.size());
    CHECK(w.write(path) == PI_OK);
    CHECK(!exists(path + ".tmp"));

    for (int mode = 0; mode < 2; mode++) {
        pi::gguf_open_options opts;
        opts.use_mmap = mode == 0;
        std::unique_ptr<pi::gguf_file> f;
        CHECK(pi::gguf_file::open(path, opts, &f) == PI_OK);
        if (!f) return;
        CHECK(f->version == 3);
        CHECK(f->sparse_magic == sparse);
        CHECK(f->alignment == alignment);
        CHECK(f->data_offset % alignment == 0);
        CHECK(f->find_key("general.alignment") == (alignment == 32 ? -1 : static_cast<int>(f->kvs.size()) - 1));
        std::string s;
        uint32_t    u32 = 0;
        int32_t     i32 = 0;
        uint64_t    u64 = 0;
        float       fl  = 0;
        bool        b   = false;
        CHECK(f->get_str("general.architecture", &s) && s == "llama");
        CHECK(f->get_u32("t.u32", &u32) && u32 == 4000000000u);
        CHECK(!f->get_i32("t.u32", &i32));  // does not fit
        CHECK(f->get_i32("t.i8", &i32) && i32 == -100);
        CHECK(!f->get_u32("t.i8", &u32));  // negative
        CHECK(f->get_u64("t.u64", &u64) && u64 == (1ull << 60));
        CHECK(f->get_u32("t.u16", &u32) && u32 == 65000);
        CHECK(f->get_f32("t.f32", &fl) && fl == 0.1f);
        CHECK(f->get_f32("t.f64", &fl) && fl == 2.5f);
        CHECK(!f->get_f32("t.u32", &fl));
        CHECK(f->get_bool("t.bool", &b) && b);
        CHECK(!f->get_str("t.u32", &s));
        std::vector<float>   fa;
        std::vector<int32_t> ia;
        CHECK(f->get_f32_array("t.arr.f32", &fa) && fa.size() == 2 && fa[0] == 1.5f && fa[1] == -2.0f);
        CHECK(f->get_i32_array("t.arr.i32", &ia) && ia.size() == 3 && ia[1] == -8);
        CHECK(f->get_str_array("t.arr.str") && f->get_str_array("t.arr.str")->at(1) == "b\"c");
        CHECK(!f->get_str_array("t.arr.i32"));
        const struct { const char * key; const char * want; } rendered[] = {
            {"t.u32", "4000000000"},   {"t.f32", "0.100000"},       {"t.i8", "-100"},
            {"t.i64", "-1152921504606846976"}, {"t.f64", "2.500000"}, {"t.bool", "true"},
            {"t.arr.f32", "[1.500000, -2.000000]"}, {"t.arr.i32", "[7, -8, 9]"}, {"t.arr.empty", "[]"},
            {"t.arr.str", "[\"a\", \"b\\\"c\", \"\"]"}, {"t.arr.nested", "[[1, 2], [\"x\"]]"},
            {"general.architecture", "llama"},
        };
        for (const auto & r : rendered) {
            const int i = f->find_key(r.key);
            CHECK(i >= 0 && f->value_string(i) == r.want);
        }
        CHECK(f->tensors.size() == 3);
        const pi::gguf_tensor * a = f->find_tensor("a");
        const pi::gguf_tensor * bt = f->find_tensor("b");
        const pi::gguf_tensor * c = f->find_tensor("c");
        CHECK(a && bt && c && !f->find_tensor("d"));
        if (!a || !bt || !c) return;
        CHECK(a->n_dims == 2 && a->ne[0] == 5 && a->ne[1] == 3 && a->type == PI_TYPE_F32 && a->offset == 0);
        CHECK(bt->offset % alignment == 0 && bt->offset >= a->n_bytes && bt->n_bytes == 16);
        CHECK(c->type == PI_TYPE_Q8_0 && c->n_bytes == q8.size() && c->offset % alignment == 0);
        CHECK(a->data && std::memcmp(a->data, f32.data(), a->n_bytes) == 0);
        CHECK(bt->data && std::memcmp(bt->data, f16.data(), bt->n_bytes) == 0);
        CHECK(c->data && std::memcmp(c->data, q8.data(), c->n_bytes) == 0);
        CHECK(reinterpret_cast<uintptr_t>(a->data) % (alignment < 4096 ? alignment : 4096) == 0 || mode == 0);
    }
    // A vocab-only open maps nothing.
    pi::gguf_open_options opts;
    opts.load_data = false;
    std::unique_ptr<pi::gguf_file> f;
    CHECK(pi::gguf_file::open(path, opts, &f) == PI_OK && f && f->tensors[0].data == nullptr);
    if (!keep) ::unlink(path.c_str());
}

void refusals(const std::string & dir) {
    const std::string path = dir + "/refused.gguf";
    float             x[4] = {0, 0, 0, 0};
    const int64_t     ne[4] = {4, 1, 1, 1};
    {
        pi::gguf_writer w;
        w.add_tensor("x", PI_TYPE_F32, 1, ne, x, 12);  // 4 floats are 16 bytes
        CHECK(w.write(path) == PI_ERR_INVALID_ARGUMENT);
    }
    {
        pi::gguf_writer w;
        w.add_tensor("x", PI_TYPE_F32, 1, ne, x, 16);
        w.add_tensor("x", PI_TYPE_F32, 1, ne, x, 16);
        CHECK(w.write(path) == PI_ERR_INVALID_ARGUMENT);
    }
    {
        pi::gguf_writer w;
        w.add_u32("k", 1);
        w.add_u32("k", 2);
        CHECK(w.write(path) == PI_ERR_INVALID_ARGUMENT);
    }
    {
        pi::gguf_writer w(false, 24);
        CHECK(w.write(path) == PI_ERR_INVALID_ARGUMENT);
    }
    {
        pi::gguf_writer w;
        w.add_tensor("q", PI_TYPE_Q4_0, 1, ne, x, 16);  // 4 is not a multiple of 32
        CHECK(w.write(path) == PI_ERR_INVALID_ARGUMENT);
    }
    CHECK(!exists(path) && !exists(path + ".tmp"));
    {
        pi::gguf_writer w;
        w.add_u32("k", 1);
        const std::string bad = dir + "/no/such/dir/x.gguf";
        CHECK(w.write(bad) == PI_ERR_IO);
        CHECK(std::strstr(pi_last_error(), "no/such/dir") != nullptr);
    }
}

}  // namespace

int main(int argc, char ** argv) {
    std::string dir;
    if (argc > 1) {
        dir = argv[1];
    } else {
        char tmpl[] = "/tmp/test_gguf_writer_XXXXXX";
        if (!::mkdtemp(tmpl)) return 2;
        dir = tmpl;
    }
    pi_log_set_level(PI_LOG_NONE);
    for (bool sparse : {false, true}) {
        for (uint32_t alignment : {32u, 1u, 64u, 4096u}) roundtrip(dir, sparse, alignment, argc > 1);
    }
    refusals(dir);
    if (argc <= 1) ::rmdir(dir.c_str());
    std::printf("%s\n", g_failed ? "test_gguf_writer: FAILED" : "test_gguf_writer: all checks passed");
    return g_failed ? 1 : 0;
}
