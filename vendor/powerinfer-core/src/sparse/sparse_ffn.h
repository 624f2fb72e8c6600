// sparse_ffn.h - the row-sparse FFN of one token: which neurons are active, their hidden values
// from the rows of ffn_up / ffn_gate, and the down projection from the rows of ffn_down_t.
//
// Shapes (ggml order, ne0 contiguous):
//   ffn_up, ffn_gate  [n_embd, n_ff]   one row of n_embd per neuron (dotted with x)
//   ffn_down_t        [n_embd, n_ff]   one row of n_embd per neuron (scaled and summed into y)
//   active ids        [n_active]       neuron ids in [0, n_ff), any order
//   h                 [n_active]       h[k] is the hidden value of neuron active[k] (compact)
//
// The FFN of an active set A is  y = sum over k with h[k] != 0 of h[k] * ffn_down_t[active[k]],
// h[k] = act(gate_k, up_k):
//   FFN_RELU_GATE_UP  ReLU(gate) * up          (llama: ReluLLaMA, ProSparse)
//   FFN_RELU_BOTH     ReLU(gate) * ReLU(up)    (bamboo, "dReLU")
//   FFN_RELU_UP       ReLU(up + b)             (falcon, opt: no gate)
//
// The list is a sequence of (id, h) pairs, not a set: a duplicated id adds its row once per
// occurrence, and the order only changes the order of the float sums (the result to rounding).
// Gather functions below give sorted lists without duplicates.
//
// Threads. Up and gate split the active list: thread t computes h[k0..k1), its own slice. The down
// projection splits the n_embd output COLUMNS, not the neurons: each thread adds every active
// row's window [c0, c1) into its own y[c0..c1), so no two threads write the same float and no
// reduction or per-thread n_embd buffer is needed; the sum over neurons of each y[c] runs in list
// order on one thread, so the result does not depend on the thread count. Splitting the neurons
// instead would give each thread a private n_embd accumulator and then a reduction (an extra pass
// over nth * n_embd floats, and a sum order that changes with nth). The price of the column split
// is that every thread walks the whole active list; at n_embd >= 2048 each row window is still
// a few contiguous KB, which streams as well as whole rows.
#pragma once

#include "run/threadpool.h"

#include <cstddef>
#include <cstdint>

namespace pi {

enum ffn_act { FFN_RELU_GATE_UP = 0, FFN_RELU_BOTH = 1, FFN_RELU_UP = 2 };

// Active neurons from predictor scores: ids (ascending) of every i < n with scores[i] >= threshold
// (PowerInfer's rule). Returns the count; ids must hold n.
int64_t gather_ge(const float * scores, int64_t n, float threshold, int32_t * ids);
// Oracle: every i with values[i] > threshold (gate pre-activation > 0 fires a ReLU neuron).
int64_t gather_gt(const float * values, int64_t n, float threshold, int32_t * ids);

// True if the down kernels handle type.
bool sparse_down_supports(int32_t type);

// Column granularity of the down split: a whole number of blocks of type, 64 columns or more when
// n_embd allows it (so that a window is at least a cache line of output floats).
int64_t sparse_down_col_unit(int32_t type, int64_t n_embd);

// y[c0..c1) += sum over k < n_active, h[k] != 0, of h[k] * down_t[active[k]][c0..c1).
// c0 and c1 whole blocks of type (or c1 = n_embd); rows of down_t are row_bytes apart.
void sparse_down_cols(int32_t type, const void * down_t, size_t row_bytes, const int32_t * active, const float * h,
                      int64_t n_active, float * y, int64_t c0, int64_t c1);

// y[0..n_embd) = the down projection (overwritten; all zeros when nothing is active), the columns
// split among nth threads of pool (pool may be null: the calling thread does it all).
void sparse_down(thread_pool * pool, int nth, int32_t type, const void * down_t, int64_t n_embd,
                 const int32_t * active, const float * h, int64_t n_active, float * y);

// The weights of one sparse FFN. gate is null for FFN_RELU_UP; up_bias (n_ff floats, indexed by
// neuron id) may be null.
struct sparse_ffn_weights {
    ffn_act      act       = FFN_RELU_GATE_UP;
    int64_t      n_embd    = 0;
    int32_t      up_type   = 0;
    const void * up        = nullptr;
    int32_t      gate_type = 0;
    const void * gate      = nullptr;
    int32_t      down_type = 0;
    const void * down_t    = nullptr;
    const float * up_bias  = nullptr;
};

// h[k] for k < n_active from the rows active[k] of up (and gate): xq_up / xq_gate are x prepared
// for up_type / gate_type (pi::act_prepare). g_scratch holds n_active floats (unused without gate).
// The list is split among nth threads of pool (or run on the caller when pool is null).
void sparse_ffn_hidden(thread_pool * pool, int nth, const sparse_ffn_weights & w, const void * xq_up,
                       const void * xq_gate, const int32_t * active, int64_t n_active, float * h, float * g_scratch);

}  // namespace pi
