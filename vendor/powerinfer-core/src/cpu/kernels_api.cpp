// kernels_api.cpp - the public entry points to the matrix kernels (pi_matvec, pi_matmul,
// pi_matvec_rows, pi_weighted_rows) that tests, benchmarks and tools call: argument checks,
// activation preparation, then the same row loops the forward pass uses, on the calling thread.
#include "core/status.h"
#include "core/types.h"
#include "cpu/kernels.h"

#include <new>
#include <vector>

namespace {

// Checks what the three entry points share; fills the row size of W.
pi_status check_matrix(const char * fn, int32_t type, const void * W, int64_t n_rows, int64_t n_cols,
                       size_t * row_bytes) {
    if (!pi::kernel_supports(type)) {
        const char * name = pi::type_get(type).name;
        return pi::fail(PI_ERR_UNSUPPORTED, "%s: no matrix kernel for type %d (%s)", fn, type, name ? name : "unknown");
    }
    if (n_rows < 0 || n_cols <= 0) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: bad shape %lld x %lld", fn, (long long)n_rows, (long long)n_cols);
    }
    const int64_t rb = pi::type_row_bytes(type, n_cols);
    if (rb < 0) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: n_cols = %lld is not a multiple of the %s block size %lld", fn,
                        (long long)n_cols, pi::type_get(type).name, (long long)pi::type_get(type).block_size);
    }
    if (!W && n_rows > 0) return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: W is NULL", fn);
    *row_bytes = (size_t)rb;
    return PI_OK;
}

}  // namespace

extern "C" {

pi_status pi_matvec(int32_t type, const void * W, int64_t n_rows, int64_t n_cols, const float * x, float * y) {
    size_t row_bytes = 0;
    PI_TRY(check_matrix("pi_matvec", type, W, n_rows, n_cols, &row_bytes));
    if (!x || (!y && n_rows > 0)) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_matvec: x or y is NULL");
    try {
        std::vector<uint8_t> xq(pi::act_bytes(type, n_cols));
        pi::act_prepare(type, x, n_cols, xq.data());
        pi::matvec(type, W, row_bytes, xq.data(), n_cols, y, 0, n_rows);
    } catch (const std::bad_alloc &) {
        return pi::fail(PI_ERR_OUT_OF_MEMORY, "pi_matvec: no memory for the activation of %lld columns", (long long)n_cols);
    }
    return PI_OK;
}

pi_status pi_matvec_rows(int32_t type, const void * W, int64_t n_rows, int64_t n_cols, const float * x,
                         const int32_t * rows, int64_t n_ids, float * y) {
    size_t row_bytes = 0;
    PI_TRY(check_matrix("pi_matvec_rows", type, W, n_rows, n_cols, &row_bytes));
    if (n_ids < 0) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_matvec_rows: n_ids = %lld", (long long)n_ids);
    if (!x || (n_ids > 0 && (!rows || !y))) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_matvec_rows: x, rows or y is NULL");
    for (int64_t k = 0; k < n_ids; k++) {
        if (rows[k] < 0 || rows[k] >= n_rows) {
            return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_matvec_rows: rows[%lld] = %d is outside [0, %lld)", (long long)k,
                            rows[k], (long long)n_rows);
        }
    }
    try {
        std::vector<uint8_t> xq(pi::act_bytes(type, n_cols));
        pi::act_prepare(type, x, n_cols, xq.data());
        pi::matvec_rows(type, W, row_bytes, xq.data(), n_cols, rows, n_ids, y);
    } catch (const std::bad_alloc &) {
        return pi::fail(PI_ERR_OUT_OF_MEMORY, "pi_matvec_rows: no memory for the activation of %lld columns", (long long)n_cols);
    }
    return PI_OK;
}

pi_status pi_matmul(int32_t type, const void * W, int64_t n_rows, int64_t n_cols, const float * X, int64_t n_b,
                    float * Y) {
    size_t row_bytes = 0;
    PI_TRY(check_matrix("pi_matmul", type, W, n_rows, n_cols, &row_bytes));
    if (n_b < 0) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_matmul: n_b = %lld", (long long)n_b);
    if (n_b > 0 && (!X || (!Y && n_rows > 0))) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_matmul: X or Y is NULL");
    try {
        const size_t         stride = pi::act_bytes(type, n_cols);
        std::vector<uint8_t> xq(stride * (size_t)n_b);
        for (int64_t b = 0; b < n_b; b++) pi::act_prepare(type, X + b * n_cols, n_cols, xq.data() + b * stride);
        pi::matmul(type, W, row_bytes, xq.data(), stride, n_b, n_cols, Y, n_rows, 0, n_rows);
    } catch (const std::bad_alloc &) {
        return pi::fail(PI_ERR_OUT_OF_MEMORY, "pi_matmul: no memory for %lld activations of %lld columns", (long long)n_b,
                        (long long)n_cols);
    }
    return PI_OK;
}

pi_status pi_weighted_rows(int32_t type, const void * V, int64_t n_rows, int64_t n_cols, const float * P, int64_t n_b,
                           float * out) {
    if (type != PI_TYPE_F16 && type != PI_TYPE_F32) {
        return pi::fail(PI_ERR_UNSUPPORTED, "pi_weighted_rows: rows of type %d; F16 or F32 only", type);
    }
    if (n_rows < 0 || n_cols <= 0 || n_b < 0 || n_b > INT32_MAX) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_weighted_rows: bad shape %lld x %lld, n_b = %lld", (long long)n_rows,
                        (long long)n_cols, (long long)n_b);
    }
    if (n_b > 0 && (!out || (n_rows > 0 && (!V || !P)))) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_weighted_rows: V, P or out is NULL");
    }
    if (n_b == 0) return PI_OK;
    const size_t row_bytes = (size_t)n_cols * (type == PI_TYPE_F16 ? 2 : 4);
    pi::weighted_rows(type, V, row_bytes, n_rows, n_cols, P, n_rows, (int)n_b, out, n_cols);
    return PI_OK;
}

}  // extern "C"
