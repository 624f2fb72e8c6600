// quantize_api.cpp - row converters for tests and tools (pi_dequantize_row, pi_quantize_row) and
// the model quantizer (pi_model_quantize): read a GGUF file, convert its weight matrices, write a
// new file with the same metadata, tensor order and magic.
#include "core/status.h"
#include "core/types.h"
#include "cpu/kernels.h"
#include "cpu/quant_policy.h"
#include "cpu/quant_rows.h"
#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {

using namespace pi;

const char * type_name_or(int32_t type) {
    const char * n = type_get(type).name;
    return n ? n : "unknown";
}

pi_status check_row_args(const char * fn, int32_t type, const void * src, const void * dst, int64_t n,
                         bool want_quantizer) {
    if (!type_known(type)) return fail(PI_ERR_INVALID_ARGUMENT, "%s: unknown type id %d", fn, type);
    if (want_quantizer ? !can_quantize(type) : !can_dequantize(type)) {
        return fail(PI_ERR_UNSUPPORTED, "%s: no %s for type %s (%d)", fn,
                    want_quantizer ? "quantizer" : "dequantizer", type_name_or(type), type);
    }
    const int64_t bs = type_get(type).block_size;
    if (n < 0 || n % bs != 0) {
        return fail(PI_ERR_INVALID_ARGUMENT, "%s: n = %lld is not a multiple of the %s block size %lld",
                    fn, (long long)n, type_name_or(type), (long long)bs);
    }
    if (n > 0 && (!src || !dst)) return fail(PI_ERR_INVALID_ARGUMENT, "%s: NULL buffer", fn);
    return PI_OK;
}

// True when a and b name the same file (same string, or the same device and inode).
bool same_file(const std::string & a, const std::string & b) {
    if (a == b) return true;
    struct stat sa, sb;
    if (stat(a.c_str(), &sa) != 0 || stat(b.c_str(), &sb) != 0) return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// One tensor of the output file: either the source bytes or a converted copy.
struct out_tensor {
    const gguf_tensor *  src;
    int32_t              type;
    bool                 convert;
    std::vector<uint8_t> data;  // converted bytes (convert only)
    int64_t              n_rows;
    size_t               src_row_bytes, dst_row_bytes;
};

// A slice of rows of one tensor to convert; slices are handed to the threads from a shared counter.
struct job {
    out_tensor * t;
    int64_t      r0, r1;
};

// Converts the rows of one job; returns false (leaving the rest) at a row holding NaN or inf,
// which no quantizer can represent and which would make the model produce garbage.
bool convert_rows(const job & jb, std::vector<float> & buf) {
    out_tensor & t  = *jb.t;
    const int64_t ne0 = t.src->ne[0];
    buf.resize(static_cast<size_t>(ne0));
    for (int64_t r = jb.r0; r < jb.r1; r++) {
        dequantize(t.src->type, t.src->data + r * t.src_row_bytes, buf.data(), ne0);
        for (int64_t i = 0; i < ne0; i++) {
            if (!std::isfinite(buf[i])) return false;
        }
        quantize(t.type, buf.data(), t.data.data() + r * t.dst_row_bytes, ne0);
    }
    return true;
}

// Runs the jobs on n_threads threads; returns the index of a job that failed, or -1. The calling
// thread also reports progress after each job it finishes (callbacks stay on the caller's thread);
// a false answer stops the remaining jobs and sets *aborted.
int64_t run_jobs(const std::vector<job> & jobs, int n_threads, const pi_quantize_params & p, bool * aborted) {
    std::atomic<size_t>  next{0}, done{0};
    std::atomic<int64_t> failed{-1};
    std::atomic<bool>    stop{false};
    bool                 reported_all = false;  // the caller has already said 1.0
    auto worker = [&](bool reports) {
        std::vector<float> buf;
        for (size_t i = next++; i < jobs.size() && failed.load() < 0 && !stop.load(); i = next++) {
            if (!convert_rows(jobs[i], buf)) failed.store(static_cast<int64_t>(i));
            const size_t n_done = ++done;
            if (reports && p.progress_callback) {
                reported_all = n_done == jobs.size();
                if (!p.progress_callback(static_cast<float>(n_done) / static_cast<float>(jobs.size()),
                                         p.progress_user_data)) {
                    stop.store(true);
                }
            }
        }
    };
    std::vector<std::thread> threads;
    for (int i = 1; i < n_threads; i++) threads.emplace_back(worker, false);
    worker(true);
    for (auto & th : threads) th.join();
    // The other threads may have finished the last jobs: the caller has the final word.
    if (!stop.load() && failed.load() < 0 && p.progress_callback && !reported_all &&
        !p.progress_callback(1.0f, p.progress_user_data)) {
        stop.store(true);
    }
    *aborted = stop.load();
    return failed.load();
}

gguf_kv u32_kv(const std::string & key, uint32_t value) {
    gguf_kv kv;
    kv.key  = key;
    kv.type = GGUF_U32;
    kv.raw.resize(4);
    std::memcpy(kv.raw.data(), &value, 4);  // GGUF is little-endian, as are the hosts we build for
    return kv;
}

pi_status quantize_model(const std::string & src_path, const std::string & dst_path,
                         const pi_quantize_params & p) {
    if (!is_model_target_type(p.type)) {
        return fail(PI_ERR_INVALID_ARGUMENT, "pi_model_quantize: type %s (%d) is not a quantization target; use one of %s",
                    type_name_or(p.type), p.type, model_target_type_list());
    }
    if (same_file(src_path, dst_path)) {
        return fail(PI_ERR_INVALID_ARGUMENT, "pi_model_quantize: %s: destination is the source file", dst_path.c_str());
    }
    const auto t_start = std::chrono::steady_clock::now();

    std::unique_ptr<gguf_file> in;
    gguf_open_options          opts;
    PI_TRY(gguf_file::open(src_path, opts, &in));

    const bool has_output = in->find_tensor("output.weight") != nullptr;
    std::vector<out_tensor> outs(in->tensors.size());
    int n_converted = 0, n_fallback = 0;
    for (size_t i = 0; i < in->tensors.size(); i++) {
        const gguf_tensor & t = in->tensors[i];
        const bool head = t.name == "output.weight" || (!has_output && t.name == "token_embd.weight");
        const tensor_choice c = choose_tensor_type(t.name, t.type, t.n_dims, t.ne[0], p.type, head,
                                                   p.quantize_output);
        out_tensor & o = outs[i];
        o.src     = &t;
        o.type    = c.type;
        o.convert = c.convert;
        if (!c.reason.empty()) {
            PI_LOG_I("quantize: %s: %s -> %s (%s)", t.name.c_str(), type_name_or(t.type), type_name_or(c.type),
                     c.reason.c_str());
            if (c.convert && c.type != p.type) n_fallback++;
        }
        if (!c.convert) continue;
        int64_t n_elems = 1;
        for (int d = 0; d < 4; d++) n_elems *= t.ne[d];
        o.n_rows        = n_elems / t.ne[0];
        const int64_t srb = type_row_bytes(t.type, t.ne[0]);
        const int64_t drb = type_row_bytes(c.type, t.ne[0]);
        if (srb < 0 || drb < 0 || (uint64_t)(srb * o.n_rows) != t.n_bytes || !t.data) {
            return fail(PI_ERR_FORMAT, "%s: tensor %s: %llu bytes do not hold %lld rows of %lld %s values",
                        src_path.c_str(), t.name.c_str(), (unsigned long long)t.n_bytes,
                        (long long)o.n_rows, (long long)t.ne[0], type_name_or(t.type));
        }
        o.src_row_bytes = static_cast<size_t>(srb);
        o.dst_row_bytes = static_cast<size_t>(drb);
        try {
            o.data.resize(static_cast<size_t>(drb * o.n_rows));
        } catch (const std::bad_alloc &) {
            return fail(PI_ERR_OUT_OF_MEMORY, "pi_model_quantize: no memory for tensor %s (%lld bytes)",
                        t.name.c_str(), (long long)(drb * o.n_rows));
        }
        n_converted++;
    }
    if (n_fallback > 0) {
        PI_LOG_W("quantize: %d tensors take another type than %s because their rows do not fit its "
                 "block or they are the output head (details at info level)", n_fallback, type_name_or(p.type));
    }

    // Slices of about 64K values so that the threads stay busy to the end.
    std::vector<job> jobs;
    for (auto & o : outs) {
        if (!o.convert) continue;
        const int64_t rows_per_job = std::max<int64_t>(1, (int64_t(1) << 16) / o.src->ne[0]);
        for (int64_t r = 0; r < o.n_rows; r += rows_per_job) jobs.push_back({&o, r, std::min(o.n_rows, r + rows_per_job)});
    }
    int n_threads = p.n_threads > 0 ? p.n_threads : static_cast<int>(std::thread::hardware_concurrency());
    n_threads     = std::max(1, std::min<int>(n_threads, static_cast<int>(std::max<size_t>(1, jobs.size()))));
    int64_t failed  = -1;
    bool    aborted = false;
    try {
        failed = run_jobs(jobs, n_threads, p, &aborted);
    } catch (const std::system_error & e) {
        return fail(PI_ERR_INTERNAL, "pi_model_quantize: cannot start threads: %s", e.what());
    }
    if (aborted) return fail(PI_ERR_ABORTED, "%s: quantization stopped by the progress callback; nothing written",
                             dst_path.c_str());
    if (failed >= 0) {
        return fail(PI_ERR_FORMAT, "%s: tensor %s holds NaN or infinite values; not quantized",
                    src_path.c_str(), jobs[static_cast<size_t>(failed)].t->src->name.c_str());
    }

    gguf_writer w(in->sparse_magic, static_cast<uint32_t>(in->alignment));
    const uint32_t ftype = static_cast<uint32_t>(file_type_for(p.type));
    bool have_ftype = false, have_qversion = false;
    for (const gguf_kv & kv : in->kvs) {
        if (kv.key == "general.file_type") {
            w.add_kv(u32_kv(kv.key, ftype));
            have_ftype = true;
        } else {
            have_qversion |= kv.key == "general.quantization_version";
            w.add_kv(kv);
        }
    }
    if (!have_ftype) w.add_kv(u32_kv("general.file_type", ftype));
    if (!have_qversion) w.add_kv(u32_kv("general.quantization_version", 2));  // the block layouts of blocks.h
    for (const auto & o : outs) {
        const gguf_tensor & t = *o.src;
        if (o.convert) {
            w.add_tensor(t.name, o.type, t.n_dims, t.ne, o.data.data(), o.data.size());
        } else {
            w.add_tensor(t.name, t.type, t.n_dims, t.ne, t.data, t.n_bytes);
        }
    }
    PI_TRY(w.write(dst_path));

    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    PI_LOG_I("quantize: %s -> %s as %s: %d of %zu tensors converted in %.2f s with %d threads",
             src_path.c_str(), dst_path.c_str(), type_name_or(p.type), n_converted, outs.size(), secs, n_threads);
    return PI_OK;
}

}  // namespace

extern "C" {

pi_status pi_dequantize_row(int32_t type, const void * src, float * dst, int64_t n) {
    PI_TRY(check_row_args("pi_dequantize_row", type, src, dst, n, false));
    pi::dequantize(type, src, dst, n);
    return PI_OK;
}

pi_status pi_quantize_row(int32_t type, const float * src, void * dst, int64_t n) {
    PI_TRY(check_row_args("pi_quantize_row", type, src, dst, n, true));
    pi::quantize(type, src, dst, n);
    return PI_OK;
}

pi_quantize_params pi_quantize_default_params(void) {
    pi_quantize_params p;
    std::memset(&p, 0, sizeof(p));
    p.struct_size     = sizeof(p);
    p.type            = PI_TYPE_Q4_0;
    p.n_threads       = 0;
    p.quantize_output = true;
    return p;
}

pi_status pi_model_quantize(const char * src_path, const char * dst_path, const pi_quantize_params * params) {
    if (!src_path || !dst_path) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_model_quantize: NULL path");
    pi_quantize_params p = pi_quantize_default_params();
    if (params) {
        if (params->struct_size < sizeof(uint32_t) || params->struct_size > sizeof(p)) {
            return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_model_quantize: params.struct_size %u is not one this library knows (%zu)",
                            params->struct_size, sizeof(p));
        }
        std::memcpy(&p, params, params->struct_size);
    }
    try {
        return quantize_model(src_path, dst_path, p);
    } catch (const std::bad_alloc &) {
        return pi::fail(PI_ERR_OUT_OF_MEMORY, "pi_model_quantize: out of memory while quantizing %s", src_path);
    }
}

}  // extern "C"
