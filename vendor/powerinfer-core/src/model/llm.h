// llm.h - the llama-family model as the forward pass sees it: hyper-parameters read from the
// <arch>.* metadata and non-owning views of the weight tensors (the data stays in the gguf_file,
// mapped or read, for the life of the pi_model).
//
// The llama family covers Llama 1/2/3, SmolLM2, Mistral-style grouped-query attention (GGUF files
// of those models say general.architecture = "llama"; "mistral" is accepted when the tensors are
// the same). A block is
//     h   = x + Wo · attn(rope(Wq · rms(x)), rope(Wk · rms(x)), Wv · rms(x))
//     out = h + Wdown · (silu(Wgate · rms(h)) ⊙ (Wup · rms(h)))
// ReLU models ("bamboo", and llama files in PowerInfer's sparse layout or with predictors) replace
// silu by ReLU (llm_ffn_act) and may store Wdown transposed (w_down_t) with per-layer predictors.
// and the head is logits = Wout · rms(x_last), Wout tied to the token embeddings when the file has
// no output.weight.
//
// Falcon (ReluFalcon in PowerInfer's files, run/forward_falcon.cpp) is the other block shape: LayerNorm
// with bias, one fused Q/K/V matrix, NeoX RoPE, and attention and FFN side by side on the same input:
//     out = x + Wo · attn(ln(x)) + Wdown · ReLU(Wup · ln2(x))     (ln2 = ln without attn_norm_2)
#pragma once

#include "powerinfer.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pi {

enum rope_scaling_type : int32_t {
    ROPE_SCALING_NONE   = 0,
    ROPE_SCALING_LINEAR = 1,  // positions divided by the factor
    ROPE_SCALING_YARN   = 2,  // YaRN: interpolate low frequencies, extrapolate high ones
};

enum llm_arch : int32_t {
    LLM_ARCH_LLAMA  = 0,  // llama, mistral, bamboo
    LLM_ARCH_FALCON = 1,
};

struct llm_hparams {
    int32_t n_vocab      = 0;  // rows of token_embd
    int32_t n_ctx_train  = 0;  // <arch>.context_length
    int32_t n_embd       = 0;  // <arch>.embedding_length
    int32_t n_layer      = 0;  // <arch>.block_count
    int32_t n_ff         = 0;  // <arch>.feed_forward_length
    int32_t n_head       = 0;  // <arch>.attention.head_count
    int32_t n_head_kv    = 0;  // <arch>.attention.head_count_kv (= n_head without GQA)
    int32_t head_dim     = 0;  // <arch>.attention.key_length, else n_embd / n_head
    int32_t n_rot        = 0;  // <arch>.rope.dimension_count, else head_dim
    float   rms_eps      = 1e-5f;   // <arch>.attention.layer_norm_rms_epsilon (LayerNorm's epsilon for falcon)
    bool    rope_neox    = false;   // rotate (x[i], x[i + n_rot/2]) pairs (falcon), not (x[2i], x[2i+1])
    float   rope_base    = 10000.0f;  // <arch>.rope.freq_base

    // RoPE scaling (<arch>.rope.scaling.*). freq_scale = 1 / factor.
    int32_t rope_scaling   = ROPE_SCALING_NONE;
    float   rope_freq_scale = 1.0f;
    int32_t rope_n_ctx_orig = 0;     // rope.scaling.original_context_length (YaRN), else n_ctx_train
    float   yarn_ext_factor = 0.0f;  // 1 for YaRN, 0 otherwise
    float   yarn_attn_factor = 1.0f; // rope.scaling.attn_factor
    float   yarn_beta_fast  = 32.0f;
    float   yarn_beta_slow  = 1.0f;

    int32_t n_embd_q()  const { return n_head * head_dim; }
    int32_t n_embd_kv() const { return n_head_kv * head_dim; }
};

// A 2-D weight: n_rows rows of n_cols values of type, row_bytes apart. For GGUF dims, n_cols is
// ne[0] (the contiguous one) and n_rows is ne[1]; y = W · x has n_rows outputs.
struct llm_weight {
    const uint8_t * data      = nullptr;
    int32_t         type      = 0;  // pi_type
    int64_t         n_cols    = 0;
    int64_t         n_rows    = 0;
    size_t          row_bytes = 0;
    const char *    name      = nullptr;  // the gguf tensor name, for messages
};

struct llm_layer {
    const float * attn_norm = nullptr;  // [n_embd] f32
    const float * attn_norm_b = nullptr;   // falcon: LayerNorm bias [n_embd]
    const float * attn_norm_2 = nullptr;   // falcon (40B): the FFN's own LayerNorm, or null
    const float * attn_norm_2_b = nullptr;
    const float * ffn_up_b = nullptr;   // falcon: optional up bias [n_ff]
    llm_weight    wq;                   // [n_embd] -> [n_head * head_dim]  (falcon: wq, wk, wv are
                                        //  the three row ranges of the fused attn_qkv, [Q | K | V])
    llm_weight    wk;                   // [n_embd] -> [n_head_kv * head_dim]
    llm_weight    wv;                   // [n_embd] -> [n_head_kv * head_dim]
    llm_weight    wo;                   // [n_head * head_dim] -> [n_embd]
    const float * ffn_norm  = nullptr;  // [n_embd] f32
    llm_weight    w_gate;               // [n_embd] -> [n_ff]
    llm_weight    w_up;                 // [n_embd] -> [n_ff]
    llm_weight    w_down;               // [n_ff] -> [n_embd]; empty when the file has w_down_t
    // PowerInfer's sparse layout (DESIGN.md §4): the down projection transposed, one row of n_embd
    // per neuron, and the activity predictor scores = fc2 · ReLU(fc1 · x) (x: residual before the
    // FFN norm). Empty when absent; fc1 and fc2 come together.
    llm_weight    w_down_t;             // n_ff rows of n_embd (GGUF dims [n_embd, n_ff])
    llm_weight    fc1;                  // [n_embd] -> [H_l]   (GGUF dims [n_embd, H_l])
    llm_weight    fc2;                  // [H_l] -> [n_ff]     (GGUF dims [H_l, n_ff])
};

// The FFN's hidden activation h(gate, up).
enum llm_ffn_act : int32_t {
    LLM_FFN_SILU         = 0,  // silu(gate) * up          (llama, mistral)
    LLM_FFN_RELU_GATE_UP = 1,  // ReLU(gate) * up          (ReluLLaMA, ProSparse: llama in PowerInfer files)
    LLM_FFN_RELU_BOTH    = 2,  // ReLU(gate) * ReLU(up)    (bamboo, "dReLU")
    LLM_FFN_RELU_UP      = 3,  // ReLU(up + b), no gate      (falcon in PowerInfer's files)
};

struct ffn_offload;  // run/ffn_offload.h: the hot neurons held by a device

struct llm_model {
    std::string            arch;        // general.architecture
    llm_arch               arch_kind = LLM_ARCH_LLAMA;
    llm_hparams            hp;
    llm_weight             tok_embd;    // n_vocab rows of n_embd: a token's row is its embedding
    const float *          output_norm = nullptr;  // [n_embd] f32
    const float *          output_norm_b = nullptr; // falcon: LayerNorm bias
    llm_weight             output;      // [n_embd] -> [n_vocab]; == tok_embd when tied
    bool                   tied_output = false;
    const float *          rope_freqs  = nullptr;  // [n_rot / 2] frequency divisors (Llama 3.1), or null
    std::vector<llm_layer> layers;      // n_layer
    double                 t_load_ms   = 0.0;      // time spent binding the weights

    // Sparse FFN (run/ffn_sparse.cpp). sparse_mode is resolved at load: never PI_SPARSE_AUTO.
    llm_ffn_act            ffn_act          = LLM_FFN_SILU;
    int32_t                sparse_mode      = PI_SPARSE_DENSE;
    float                  sparse_threshold = 0.0f;   // predictor: active iff score >= threshold
    bool                   has_predictors   = false;  // some layer has fc1/fc2
    bool                   has_down_t       = false;  // some layer has ffn_down_t
    int64_t                pred_hidden_max  = 0;      // the largest H_l
    const ffn_offload *    offload          = nullptr;  // set by pi_model_offload_ffn, owned by pi_model

    // True when layer L's FFN runs in run/ffn_sparse.cpp instead of the dense SwiGLU path.
    bool ffn_is_sparse(const llm_layer & L) const {
        return L.w_down_t.data != nullptr || ffn_act != LLM_FFN_SILU || sparse_mode != PI_SPARSE_DENSE;
    }
};

}  // namespace pi
