// linear.h - the matrix products of the forward pass, spread over the thread pool.
//
// A product runs in two steps (cpu/kernels.h): the activations are prepared once per token in the
// weight type's dot format (act_set), then the weight rows are split among threads. One token
// uses pi::matvec, a batch pi::matmul (which reads each weight row once for the whole batch).
#pragma once

#include "model/llm.h"
#include "run/context.h"
#include "run/threadpool.h"

#include <cstdint>

namespace pi {

// Threads take weight rows in multiples of this: the AVX-512 row kernels finish sixteen rows with
// one shared reduction (cpu/reduce16_avx512.h), and a chunk's leftover rows go one at a time.
constexpr int64_t kRowGrain = 16;

// Assigns slots of `mem` (rows of max_row bytes, n_batch per slot) to the distinct types among
// the given weights, all of n_cols columns.
void act_set_init(act_set * s, uint8_t * mem, size_t max_row, int64_t n_batch, int64_t n_cols,
                  const llm_weight * const * ws, int n_ws);
// Prepared activation rows of w's type (slot looked up by type).
const uint8_t * act_for(const act_set & s, const llm_weight & w, size_t * stride);
// Prepares row x (n_cols floats) of token t in every slot.
void act_prepare_row(act_set * s, int64_t t, const float * x);

// Rows [r0, r1) of Y = W · X for n_b prepared activations xq (xq_stride bytes apart):
// Y[b * ldy + r] = dot(row r of W, x_b). One activation uses matvec, more use matmul.
void product_rows(int32_t type, const void * W, size_t row_bytes, const void * xq, size_t xq_stride, int64_t n_b,
                  int64_t n_cols, float * Y, int64_t ldy, int64_t r0, int64_t r1);

// One product over a batch: y[t * ldy + r] = dot(row r of W, x_t) for the n_tok tokens.
// With residual set, the result is added into residual[t * ldy + r] instead (y is then scratch).
struct proj {
    const llm_weight * w        = nullptr;
    const act_set *    acts     = nullptr;
    float *            y        = nullptr;
    int64_t            ldy      = 0;
    float *            residual = nullptr;
};

// Runs the products as one parallel job: the rows of all of them are split among nth threads.
void project(thread_pool & pool, int nth, const proj * ps, int n_ps, int64_t n_tok);

// The SwiGLU pair: g = Wgate · x, u = Wup · x, then g = silu(g) * u, each thread doing the same
// rows of both so that it can finish its rows without waiting for the others. g, u are [n_tok][n_ff].
void project_swiglu(thread_pool & pool, int nth, const llm_weight & w_gate, const llm_weight & w_up,
                    const act_set & acts, float * g, float * u, int64_t n_tok);

}  // namespace pi
