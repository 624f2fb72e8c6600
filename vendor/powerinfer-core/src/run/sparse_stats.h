// sparse_stats.h - what a context counts about its sparse FFN layers (pi_context_sparse_stats in
// powerinfer.h gives the definitions) and the time of each stage of the forward pass.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace pi {

struct sparse_layer_counts {
    int64_t n_tokens    = 0;
    int64_t n_computed  = 0;
    int64_t n_fired     = 0;
    int64_t n_true      = 0;
    bool    truth_known = true;  // false once a token was counted without n_true
};

struct sparse_stats {
    bool measure_truth = false;  // predictor mode: also compute gate and up densely
    bool count_neurons = false;
    std::vector<sparse_layer_counts> layers;  // n_layer
    std::vector<int64_t>             neurons; // n_layer * n_ff when count_neurons
    int64_t                          n_ff = 0;
    double t_attention_ms = 0, t_predictor_ms = 0, t_ffn_ms = 0, t_other_ms = 0;

    // Recording for predictor training (pi_context_record_ffn): [token][layer][n_embd] inputs and
    // [token][layer][n_ff] fired flags of up to rec_cap tokens; rec_n recorded so far.
    float *   rec_x     = nullptr;
    uint8_t * rec_fired = nullptr;
    int64_t   rec_cap = 0, rec_n = 0;
    int32_t   n_layer = 0;
    int64_t   n_embd  = 0;

    bool recording() const { return rec_x != nullptr && rec_n < rec_cap; }

    // Token t of the current batch, layer il: its input row x and its fired flags (h[i] != 0 over
    // all n_ff neurons, from a full row of h values).
    void record(int il, int64_t t, const float * x, const float * h_full) {
        const int64_t slot = rec_n + t;
        if (rec_x == nullptr || slot >= rec_cap) return;
        float *   dx = rec_x + (slot * n_layer + il) * n_embd;
        uint8_t * df = rec_fired + (slot * n_layer + il) * n_ff;
        for (int64_t c = 0; c < n_embd; c++) dx[c] = x[c];
        for (int64_t i = 0; i < n_ff; i++) df[i] = h_full[i] != 0.0f;
    }

    void reset(int32_t n_layer_, int64_t n_ff_) {
        n_layer = n_layer_;
        n_ff    = n_ff_;
        layers.assign(n_layer, sparse_layer_counts{});
        neurons.assign(count_neurons ? (size_t)n_layer * n_ff : 0, 0);
        t_attention_ms = t_predictor_ms = t_ffn_ms = t_other_ms = 0;
    }

    // One token of layer il: `computed` neurons computed, `fired` of them fired, `n_true` fired
    // among all (-1: not known).
    void add(int il, int64_t computed, int64_t fired, int64_t n_true_) {
        sparse_layer_counts & c = layers[il];
        c.n_tokens++;
        c.n_computed += computed;
        c.n_fired += fired;
        if (n_true_ < 0) c.truth_known = false;
        else c.n_true += n_true_;
    }

    // Neuron counts of layer il from a compact list (ids[k], h[k]) or a full row h[0..n_ff).
    void count_list(int il, const int32_t * ids, const float * h, int64_t n) {
        if (!count_neurons) return;
        int64_t * c = neurons.data() + (size_t)il * n_ff;
        for (int64_t k = 0; k < n; k++) c[ids[k]] += h[k] != 0.0f;
    }
    void count_row(int il, const float * h) {
        if (!count_neurons) return;
        int64_t * c = neurons.data() + (size_t)il * n_ff;
        for (int64_t i = 0; i < n_ff; i++) c[i] += h[i] != 0.0f;
    }
};

// Milliseconds since the last call: stage timing inside the forward pass.
struct stage_clock {
    std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now();
    double lap() {
        const auto now = std::chrono::steady_clock::now();
        const double ms = std::chrono::duration<double, std::milli>(now - t).count();
        t = now;
        return ms;
    }
};

}  // namespace pi
