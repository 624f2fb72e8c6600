// fuzz_gguf.cpp - mutation fuzzer for the GGUF reader and pi_model_load.
//
//   fuzz_gguf SEED.gguf CASES [RNG_SEED] [--start K] [--only K] [--read-every N] [--workdir DIR] [--verbose]
//
// Each case mutates the header part of SEED (everything before the data section: header,
// metadata, tensor table): bit flips, bytes set to boundary values, count/length/type fields set
// to huge or off-by-one values, a run of bytes shifted by one (an insertion plus a deletion), a
// burst of several of these, or the whole file truncated. The mutated file is then opened by
//   1. the reader alone (gguf_file::open, no data), rendering every value and calling every getter,
//   2. pi_model_load vocab_only, 3. a full load with mmap, 4. a full load reading the data (every
//   Nth case, --read-every N, default 2: reading 98 MB under ASan is the slowest step).
// Each must return a status; a crash, leak or UB report (under -DPOWERINFER_SANITIZE=ON) kills the
// process and the driver (tests/fuzz/run_fuzz.sh) counts it. Case K of a run is reproducible with
// the same RNG_SEED and --only K; --start K resumes a run after case K-1 (the driver does so
// after a crash, so one crash does not hide the cases after it). --verbose prints each case's
// mutation before running it.
//
// Speed: the seed is copied once to a work file (in /dev/shm when it exists); a case writes only
// the mutated header bytes over it and restores them afterwards, so a 98 MB model costs a few
// MB of writes per case. Truncations shorten the work file and write the tail back afterwards.
#include "core/status.h"
#include "gguf/gguf.h"
#include "powerinfer.h"

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

struct field {
    uint64_t off;
    uint32_t size;  // 4 or 8
};

// Walks a valid GGUF header in memory, recording the offsets of count, length, type and shape
// fields; returns the offset where the tensor table ends (0 if the seed is not valid GGUF).
uint64_t walk_header(const std::vector<uint8_t> & d, std::vector<field> & fields) {
    uint64_t pos = 8;
    bool     ok  = true;
    auto need = [&](uint64_t n) {
        if (n > d.size() || pos > d.size() - n) ok = false;
        return ok;
    };
    auto u32 = [&](bool record) -> uint32_t {
        uint32_t v = 0;
        if (!need(4)) return 0;
        std::memcpy(&v, &d[pos], 4);
        if (record) fields.push_back({pos, 4});
        pos += 4;
        return v;
    };
    auto u64 = [&](bool record) -> uint64_t {
        uint64_t v = 0;
        if (!need(8)) return 0;
        std::memcpy(&v, &d[pos], 8);
        if (record) fields.push_back({pos, 8});
        pos += 8;
        return v;
    };
    auto skip_string = [&](bool record) {
        uint64_t n = u64(record);
        if (need(n)) pos += n;
    };
    static const uint32_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    // Records only the first elements' fields of long arrays (100k string lengths would drown out
    // the fields that matter).
    std::function<void(uint32_t, bool)> value = [&](uint32_t t, bool record) {
        if (!ok) return;
        if (t == pi::GGUF_STRING) {
            skip_string(record);
        } else if (t == pi::GGUF_ARRAY) {
            uint32_t et = u32(record);
            uint64_t n  = u64(record);
            for (uint64_t j = 0; j < n && ok; j++) value(et, record && j < 8);
        } else if (t < 13) {
            if (need(sizes[t])) pos += sizes[t];
        } else {
            ok = false;
        }
    };
    fields.push_back({4, 4});  // version
    uint64_t n_tensors = u64(true);
    uint64_t n_kv      = u64(true);
    for (uint64_t i = 0; i < n_kv && ok; i++) {
        skip_string(true);
        value(u32(true), true);
    }
    for (uint64_t i = 0; i < n_tensors && ok; i++) {
        skip_string(true);
        uint32_t nd = u32(true);
        for (uint32_t k = 0; k < nd && ok; k++) u64(true);
        u32(true);
        u64(true);
    }
    return ok ? pos : 0;
}

struct mutation {
    std::string          desc;
    std::vector<uint8_t> head;  // mutated header bytes (same length), empty for truncations
    uint64_t             truncate_to = UINT64_MAX;
};

const uint8_t  k_bytes[]  = {0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe};
const uint64_t k_huge[]   = {UINT64_MAX, INT64_MAX, 1ull << 63, 1ull << 32, 0xffffffffull, 1ull << 40, 0};
const uint32_t k_small[]  = {0, 1, 2, 3, 4, 5, 8, 9, 12, 13, 29, 31, 99, 0x80000000u, 0xffffffffu};

mutation make_mutation(std::mt19937_64 & rng, const std::vector<uint8_t> & seed, const std::vector<field> & fields,
                       uint64_t head_end) {
    auto     rnd  = [&](uint64_t n) { return n ? rng() % n : 0; };
    mutation m;
    m.head.assign(seed.begin(), seed.begin() + head_end);
    std::vector<uint8_t> & h = m.head;
    char                   buf[160];

    auto flip = [&]() {
        uint64_t off = rnd(2) ? fields[rnd(fields.size())].off + rnd(16) : rnd(head_end);
        if (off >= head_end) off = head_end - 1;
        int bit = static_cast<int>(rnd(8));
        h[off] ^= static_cast<uint8_t>(1u << bit);
        std::snprintf(buf, sizeof(buf), "flip bit %d @%" PRIu64 "; ", bit, off);
        m.desc += buf;
    };
    auto set_byte = [&]() {
        uint64_t off = rnd(2) ? rnd(head_end) : rnd(head_end < 4096 ? head_end : 4096);
        h[off]       = k_bytes[rnd(sizeof(k_bytes))];
        std::snprintf(buf, sizeof(buf), "byte @%" PRIu64 " = %u; ", off, h[off]);
        m.desc += buf;
    };
    auto set_field = [&]() {
        const field & f = fields[rnd(fields.size())];
        if (f.size == 8) {
            uint64_t v;
            std::memcpy(&v, &h[f.off], 8);
            const uint64_t pick = rnd(sizeof(k_huge) / 8 + 2);
            v = pick < sizeof(k_huge) / 8 ? k_huge[pick] : (pick == sizeof(k_huge) / 8 ? v + 1 : v - 1);
            std::memcpy(&h[f.off], &v, 8);
            std::snprintf(buf, sizeof(buf), "u64 @%" PRIu64 " = %" PRIu64 "; ", f.off, v);
        } else {
            uint32_t v = rnd(4) ? k_small[rnd(sizeof(k_small) / 4)] : static_cast<uint32_t>(rng());
            std::memcpy(&h[f.off], &v, 4);
            std::snprintf(buf, sizeof(buf), "u32 @%" PRIu64 " = %u; ", f.off, v);
        }
        m.desc += buf;
    };

    const uint64_t kind = rnd(100);
    if (kind < 10) {
        m.truncate_to = rnd(10) < 6 ? rnd(head_end) : rnd(seed.size());
        m.head.clear();
        std::snprintf(buf, sizeof(buf), "truncate to %" PRIu64, m.truncate_to);
        m.desc = buf;
    } else if (kind < 35) {
        set_field();
    } else if (kind < 60) {
        flip();
    } else if (kind < 78) {
        set_byte();
    } else if (kind < 90) {
        // Shift [p, q) by one byte: an insertion at one end and a deletion at the other.
        uint64_t p = rnd(head_end - 1);
        uint64_t q = p + 1 + rnd(4096);
        if (q > head_end) q = head_end;
        const uint8_t b = static_cast<uint8_t>(rng());
        if (rnd(2)) {
            std::memmove(&h[p + 1], &h[p], q - p - 1);
            h[p] = b;
            std::snprintf(buf, sizeof(buf), "insert @%" PRIu64 " delete @%" PRIu64, p, q - 1);
        } else {
            std::memmove(&h[p], &h[p + 1], q - p - 1);
            h[q - 1] = b;
            std::snprintf(buf, sizeof(buf), "delete @%" PRIu64 " insert @%" PRIu64, p, q - 1);
        }
        m.desc = buf;
    } else {
        const int n = 2 + static_cast<int>(rnd(7));
        for (int i = 0; i < n; i++) {
            switch (rnd(3)) {
                case 0: flip(); break;
                case 1: set_byte(); break;
                default: set_field(); break;
            }
        }
    }
    return m;
}

bool pwrite_all(int fd, const uint8_t * p, uint64_t n, uint64_t off) {
    while (n > 0) {
        ssize_t r = ::pwrite(fd, p, n, static_cast<off_t>(off));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        n -= static_cast<uint64_t>(r);
        off += static_cast<uint64_t>(r);
    }
    return true;
}

// Exercises everything a successfully opened file offers to the rest of the library.
uint64_t touch_file(const pi::gguf_file & f) {
    uint64_t sum = 0;
    for (size_t i = 0; i < f.kvs.size(); i++) {
        sum += f.value_string(i).size();
        const std::string & k = f.kvs[i].key;
        std::string s;
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        float fl;
        bool b;
        std::vector<float> fa;
        std::vector<int32_t> ia;
        sum += f.get_str(k, &s) + f.get_u32(k, &u32) + f.get_i32(k, &i32) + f.get_u64(k, &u64) +
               f.get_f32(k, &fl) + f.get_bool(k, &b) + (f.get_str_array(k) != nullptr) +
               f.get_f32_array(k, &fa) + f.get_i32_array(k, &ia);
    }
    for (const pi::gguf_tensor & t : f.tensors) sum += (f.find_tensor(t.name) == &t);
    return sum;
}

struct tally {
    uint64_t loads = 0, ok = 0;
    double   seconds = 0;
    std::map<int, uint64_t> by_status;
    uint64_t no_path_in_message = 0;
};

void record(tally & t, pi_status st, const char * msg, const std::string & path) {
    t.loads++;
    if (st == PI_OK) {
        t.ok++;
        return;
    }
    t.by_status[st]++;
    if (!std::strstr(msg, path.c_str())) t.no_path_in_message++;
}

}  // namespace

int main(int argc, char ** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s SEED.gguf CASES [RNG_SEED] [--start K] [--only K] [--read-every N] [--workdir DIR] [--verbose]\n",
                     argv[0]);
        return 2;
    }
    const char * seed_path = argv[1];
    const long   n_cases   = std::atol(argv[2]);
    uint64_t     rng_seed  = 1;
    long         only      = -1;
    long         start     = 0;
    long         read_every = 2;
    std::string  workdir   = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    bool         verbose   = false;
    for (int i = 3; i < argc; i++) {
        if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = std::atol(argv[++i]);
        else if (!std::strcmp(argv[i], "--start") && i + 1 < argc) start = std::atol(argv[++i]);
        else if (!std::strcmp(argv[i], "--read-every") && i + 1 < argc) read_every = std::atol(argv[++i]);
        else if (!std::strcmp(argv[i], "--workdir") && i + 1 < argc) workdir = argv[++i];
        else if (!std::strcmp(argv[i], "--verbose")) verbose = true;
        else rng_seed = std::strtoull(argv[i], nullptr, 10);
    }
    pi_log_set_level(PI_LOG_NONE);

    std::vector<uint8_t> seed;
    {
        FILE * f = std::fopen(seed_path, "rb");
        if (!f) { std::fprintf(stderr, "cannot open %s\n", seed_path); return 2; }
        std::fseek(f, 0, SEEK_END);
        seed.resize(static_cast<size_t>(std::ftell(f)));
        std::fseek(f, 0, SEEK_SET);
        if (std::fread(seed.data(), 1, seed.size(), f) != seed.size()) { std::fprintf(stderr, "short read\n"); return 2; }
        std::fclose(f);
    }
    std::vector<field> fields;
    const uint64_t     head_end = walk_header(seed, fields);
    if (head_end < 16 || fields.empty()) { std::fprintf(stderr, "%s: not a valid GGUF seed\n", seed_path); return 2; }

    const std::string work = workdir + "/fuzz_gguf_" + std::to_string(getpid()) + ".gguf";
    const std::string cut  = workdir + "/fuzz_gguf_" + std::to_string(getpid()) + "_cut.gguf";
    int fd = ::open(work.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || !pwrite_all(fd, seed.data(), seed.size(), 0)) { std::fprintf(stderr, "cannot write %s\n", work.c_str()); return 2; }

    std::printf("seed %s: %zu bytes, header %" PRIu64 " bytes, %zu fields; rng seed %" PRIu64 "\n", seed_path,
                seed.size(), head_end, fields.size(), rng_seed);
    std::fflush(stdout);

    tally    reader, vocab_only, full_mmap, full_read;
    uint64_t cases_run = 0;
    for (long k = start; k < n_cases; k++) {
        if (only >= 0 && k != only) continue;
        std::mt19937_64 rng(rng_seed * 1000003ull + static_cast<uint64_t>(k));
        mutation        m = make_mutation(rng, seed, fields, head_end);
        if (verbose || only >= 0) {
            std::printf("case %ld: %s\n", k, m.desc.c_str());
            std::fflush(stdout);
        }
        std::string path = work;
        bool        restore_tail = false;
        if (m.truncate_to != UINT64_MAX) {
            if (m.truncate_to <= head_end) {
                path = cut;
                int cfd = ::open(cut.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
                if (cfd < 0 || !pwrite_all(cfd, seed.data(), m.truncate_to, 0)) { std::fprintf(stderr, "write failed\n"); return 2; }
                ::close(cfd);
            } else {
                if (::ftruncate(fd, static_cast<off_t>(m.truncate_to)) != 0) { std::fprintf(stderr, "ftruncate failed\n"); return 2; }
                restore_tail = true;
            }
        } else if (!pwrite_all(fd, m.head.data(), m.head.size(), 0)) {
            std::fprintf(stderr, "write failed\n");
            return 2;
        }

        auto now = [] { return std::chrono::steady_clock::now(); };
        auto t0  = now();
        {
            std::unique_ptr<pi::gguf_file> f;
            pi::gguf_open_options          opts;
            opts.load_data = false;
            pi_status st   = pi::gguf_file::open(path, opts, &f);
            record(reader, st, pi_last_error(), path);
            if (st == PI_OK) touch_file(*f);
        }
        reader.seconds += std::chrono::duration<double>(now() - t0).count();
        const bool modes[3][2] = {{true, true}, {false, true}, {false, false}};  // vocab_only, use_mmap
        tally *    tallies[3]  = {&vocab_only, &full_mmap, &full_read};
        for (int i = 0; i < 3; i++) {
            if (i == 2 && (read_every <= 0 || k % read_every != 0) && only < 0) continue;
            pi_model_params p = pi_model_default_params();
            p.vocab_only      = modes[i][0];
            p.use_mmap        = modes[i][1];
            p.n_threads       = 1;
            pi_model * model  = nullptr;
            t0                = now();
            pi_status  st     = pi_model_load(path.c_str(), &p, &model);
            record(*tallies[i], st, pi_last_error(), path);
            if (st == PI_OK) {
                for (int32_t j = 0; j < pi_model_meta_count(model); j++) pi_model_meta_value(model, j);
                pi_model_free(model);
            }
            tallies[i]->seconds += std::chrono::duration<double>(now() - t0).count();
        }

        if (restore_tail) {
            if (!pwrite_all(fd, seed.data() + m.truncate_to, seed.size() - m.truncate_to, m.truncate_to)) {
                std::fprintf(stderr, "restore failed\n");
                return 2;
            }
        } else if (path == work && !pwrite_all(fd, seed.data(), head_end, 0)) {
            std::fprintf(stderr, "restore failed\n");
            return 2;
        }
        cases_run++;
        if (!verbose && only < 0 && (k + 1) % 1000 == 0) {
            std::printf("  %ld cases\n", k + 1);
            std::fflush(stdout);
        }
    }
    ::close(fd);
    ::unlink(work.c_str());
    ::unlink(cut.c_str());

    auto show = [](const char * name, const tally & t) {
        std::printf("%-22s loads=%" PRIu64 " ok=%" PRIu64, name, t.loads, t.ok);
        for (const auto & kv : t.by_status) std::printf(" %s=%" PRIu64, pi_status_str(static_cast<pi_status>(kv.first)), kv.second);
        std::printf(" messages_without_path=%" PRIu64 " ms=%.0f\n", t.no_path_in_message, t.seconds * 1e3);
    };
    show("reader (no data)", reader);
    show("pi_model_load vocab", vocab_only);
    show("pi_model_load mmap", full_mmap);
    show("pi_model_load read", full_read);
    std::printf("cases=%" PRIu64 " crashes=0\n", cases_run);
    return 0;
}
