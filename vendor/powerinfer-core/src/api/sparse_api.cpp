// sparse_api.cpp - the public entry points to the sparse FFN operators (pi_sparse_gather,
// pi_sparse_down, pi_sparse_hidden, pi_sparse_ffn) that tests, benchmarks and tools call:
// argument checks, then the operators of sparse/sparse_ffn.h, on a thread pool started for the
// call when n_threads > 1. pi_sparse_hidden is the up/gate half of pi_sparse_ffn.
#include "core/status.h"
#include "core/types.h"
#include "cpu/kernels.h"
#include "run/threadpool.h"
#include "sparse/sparse_down.h"
#include "sparse/sparse_ffn.h"

#include <memory>
#include <algorithm>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

namespace {

int resolve_threads(int32_t n_threads) {
    if (n_threads > 0) return n_threads;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? (int)hw : 1;
}

// Checks a matrix of n_ff rows of n_embd values of type, for the kernels `have` says exist.
pi_status check_rows(const char * fn, const char * what, int32_t type, const void * W, int64_t n_ff, int64_t n_embd,
                     bool have) {
    const char * name = pi::type_get(type).name;
    if (!have) return pi::fail(PI_ERR_UNSUPPORTED, "%s: no sparse kernel for %s type %d (%s)", fn, what, type, name ? name : "unknown");
    if (n_ff < 0 || n_embd <= 0) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: bad shape n_ff = %lld, n_embd = %lld", fn, (long long)n_ff, (long long)n_embd);
    }
    if (pi::type_row_bytes(type, n_embd) < 0) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: n_embd = %lld is not a multiple of the %s block size %lld", fn,
                        (long long)n_embd, name, (long long)pi::type_get(type).block_size);
    }
    if (!W && n_ff > 0) return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, what);
    return PI_OK;
}

pi_status check_active(const char * fn, const int32_t * active, int64_t n_active, int64_t n_ff) {
    if (n_active < 0) return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: n_active = %lld", fn, (long long)n_active);
    if (n_active > 0 && !active) return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: active is NULL", fn);
    for (int64_t k = 0; k < n_active; k++) {
        if (active[k] < 0 || active[k] >= n_ff) {
            return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: active[%lld] = %d is outside [0, %lld)", fn, (long long)k, active[k],
                            (long long)n_ff);
        }
    }
    return PI_OK;
}

}  // namespace

namespace {

// What pi_sparse_hidden and pi_sparse_ffn share: checks, x prepared once for up and gate (one
// type), the hidden values into hv; then, with down_t, the down projection into y.
pi_status sparse_ffn_run(const char * fn, int32_t act, int32_t type, const void * up, const void * gate,
                         const void * down_t, int64_t n_ff, int64_t n_embd, const float * x, const int32_t * active,
                         int64_t n_active, float * h, float * y, int32_t n_threads) {
    if (act != PI_FFN_RELU_GATE_UP && act != PI_FFN_RELU_BOTH && act != PI_FFN_RELU_UP) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: act = %d is not a pi_ffn_act value", fn, act);
    }
    const bool has_gate = act != PI_FFN_RELU_UP;
    PI_TRY(check_rows(fn, "up", type, up, n_ff, n_embd, pi::kernel_supports(type)));
    if (has_gate) PI_TRY(check_rows(fn, "gate", type, gate, n_ff, n_embd, pi::kernel_supports(type)));
    if (y) PI_TRY(check_rows(fn, "down_t", type, down_t, n_ff, n_embd, pi::sparse_down_supports(type)));
    PI_TRY(check_active(fn, active, n_active, n_ff));
    if (!x) return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: x is NULL", fn);
    try {
        pi::sparse_ffn_weights w;
        w.act       = (pi::ffn_act)act;
        w.n_embd    = n_embd;
        w.up_type   = type;
        w.up        = up;
        w.gate_type = type;
        w.gate      = has_gate ? gate : nullptr;
        w.down_type = type;
        w.down_t    = down_t;
        // One prepared activation serves up and gate: they share the type.
        std::vector<uint8_t> xq(pi::act_bytes(type, n_embd));
        pi::act_prepare(type, x, n_embd, xq.data());
        std::vector<float> hv((size_t)n_active), g((size_t)n_active);
        const int nth = resolve_threads(n_threads);
        std::unique_ptr<pi::thread_pool> pool(nth > 1 ? new pi::thread_pool(nth) : nullptr);
        pi::sparse_ffn_hidden(pool.get(), nth, w, xq.data(), xq.data(), active, n_active, hv.data(), g.data());
        if (y) pi::sparse_down(pool.get(), nth, type, down_t, n_embd, active, hv.data(), n_active, y);
        if (h && n_active > 0) std::copy(hv.begin(), hv.end(), h);
    } catch (const std::bad_alloc &) {
        return pi::fail(PI_ERR_OUT_OF_MEMORY, "%s: no memory for %lld hidden values", fn, (long long)n_active);
    } catch (const std::system_error &) {
        return pi::fail(PI_ERR_OUT_OF_MEMORY, "%s: could not start %d threads", fn, (int)n_threads);
    }
    return PI_OK;
}

}  // namespace

extern "C" {

pi_status pi_sparse_gather(const float * values, int64_t n, float threshold, bool strict, int32_t * ids, int64_t * n_ids) {
    if (n < 0 || n > INT32_MAX) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_sparse_gather: n = %lld", (long long)n);
    if (!n_ids || (n > 0 && (!values || !ids))) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_sparse_gather: values, ids or n_ids is NULL");
    *n_ids = strict ? pi::gather_gt(values, n, threshold, ids) : pi::gather_ge(values, n, threshold, ids);
    return PI_OK;
}

const char * pi_sparse_down_kernel(int32_t type) { return pi::down_kernel_name(type); }

pi_status pi_sparse_down(int32_t type, const void * down_t, int64_t n_ff, int64_t n_embd, const int32_t * active,
                         const float * h, int64_t n_active, float * y, int32_t n_threads) {
    const char * fn = "pi_sparse_down";
    PI_TRY(check_rows(fn, "down_t", type, down_t, n_ff, n_embd, pi::sparse_down_supports(type)));
    PI_TRY(check_active(fn, active, n_active, n_ff));
    if (!y || (n_active > 0 && !h)) return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: h or y is NULL", fn);
    try {
        const int nth = resolve_threads(n_threads);
        std::unique_ptr<pi::thread_pool> pool(nth > 1 ? new pi::thread_pool(nth) : nullptr);
        pi::sparse_down(pool.get(), nth, type, down_t, n_embd, active, h, n_active, y);
    } catch (const std::bad_alloc &) {
        return pi::fail(PI_ERR_OUT_OF_MEMORY, "%s: no memory for the thread pool", fn);
    } catch (const std::system_error &) {
        return pi::fail(PI_ERR_OUT_OF_MEMORY, "%s: could not start %d threads", fn, (int)n_threads);
    }
    return PI_OK;
}

pi_status pi_sparse_hidden(int32_t act, int32_t type, const void * up, const void * gate, int64_t n_ff, int64_t n_embd,
                           const float * x, const int32_t * active, int64_t n_active, float * h, int32_t n_threads) {
    if (!h && n_active > 0) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_sparse_hidden: h is NULL");
    return sparse_ffn_run("pi_sparse_hidden", act, type, up, gate, nullptr, n_ff, n_embd, x, active, n_active, h, nullptr,
                          n_threads);
}

pi_status pi_sparse_ffn(int32_t act, int32_t type, const void * up, const void * gate, const void * down_t, int64_t n_ff,
                        int64_t n_embd, const float * x, const int32_t * active, int64_t n_active, float * h, float * y,
                        int32_t n_threads) {
    if (!y) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_sparse_ffn: y is NULL");
    return sparse_ffn_run("pi_sparse_ffn", act, type, up, gate, down_t, n_ff, n_embd, x, active, n_active, h, y,
                          n_threads);
}

}  // extern "C"
