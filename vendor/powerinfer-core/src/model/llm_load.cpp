// llm_load.cpp - reads the llama-family hyper-parameters from <arch>.* metadata and binds every
// weight tensor with its shape and type checked. Every failure names the key or tensor at fault.
#include "core/status.h"
#include "core/types.h"
#include "cpu/kernels.h"
#include "model/llm.h"
#include "model/model.h"
#include "sparse/sparse_ffn.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <memory>
#include <new>

namespace pi {
namespace {

bool is_llama_family(const std::string & arch) { return arch == "llama" || arch == "mistral" || arch == "bamboo"; }
bool is_supported(const std::string & arch) { return is_llama_family(arch) || arch == "falcon"; }

// Reads <arch>.<key> as an integer; required keys fail with the full key named.
pi_status read_i32(const gguf_file & f, const std::string & arch, const char * key, bool required,
                   int32_t * out) {
    const std::string full = arch + "." + key;
    if (f.get_i32(full, out)) {
        if (*out < 0) return fail(PI_ERR_FORMAT, "%s: %s is negative (%d)", f.path.c_str(), full.c_str(), *out);
        return PI_OK;
    }
    if (f.find_key(full) >= 0) return fail(PI_ERR_FORMAT, "%s: %s is not an integer", f.path.c_str(), full.c_str());
    if (required) return fail(PI_ERR_FORMAT, "%s: metadata key %s is missing", f.path.c_str(), full.c_str());
    return PI_OK;
}

pi_status read_f32(const gguf_file & f, const std::string & arch, const char * key, float * out) {
    const std::string full = arch + "." + key;
    if (f.get_f32(full, out)) {
        if (!std::isfinite(*out)) return fail(PI_ERR_FORMAT, "%s: %s is not finite", f.path.c_str(), full.c_str());
        return PI_OK;
    }
    if (f.find_key(full) >= 0) return fail(PI_ERR_FORMAT, "%s: %s is not a float", f.path.c_str(), full.c_str());
    return PI_OK;  // optional: keep the default
}

pi_status read_hparams(const gguf_file & f, const std::string & arch, llm_hparams * hp) {
    PI_TRY(read_i32(f, arch, "context_length", true, &hp->n_ctx_train));
    PI_TRY(read_i32(f, arch, "embedding_length", true, &hp->n_embd));
    PI_TRY(read_i32(f, arch, "block_count", true, &hp->n_layer));
    PI_TRY(read_i32(f, arch, "feed_forward_length", true, &hp->n_ff));
    PI_TRY(read_i32(f, arch, "attention.head_count", true, &hp->n_head));
    hp->n_head_kv = hp->n_head;
    PI_TRY(read_i32(f, arch, "attention.head_count_kv", false, &hp->n_head_kv));
    // falcon normalises with LayerNorm, whose epsilon has its own key
    PI_TRY(read_f32(f, arch, arch == "falcon" ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon",
                    &hp->rms_eps));
    hp->rope_neox = arch == "falcon";
    PI_TRY(read_f32(f, arch, "rope.freq_base", &hp->rope_base));

    const char * p = f.path.c_str();
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_ff <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0) {
        return fail(PI_ERR_FORMAT, "%s: %s hyper-parameters must be positive (embedding_length %d, block_count %d, "
                    "feed_forward_length %d, head_count %d, head_count_kv %d)", p, arch.c_str(), hp->n_embd,
                    hp->n_layer, hp->n_ff, hp->n_head, hp->n_head_kv);
    }
    if (hp->n_head % hp->n_head_kv != 0) {
        return fail(PI_ERR_FORMAT, "%s: %s.attention.head_count (%d) is not a multiple of head_count_kv (%d)", p,
                    arch.c_str(), hp->n_head, hp->n_head_kv);
    }
    hp->head_dim = hp->n_embd / hp->n_head;
    int32_t key_len = 0, value_len = 0;
    PI_TRY(read_i32(f, arch, "attention.key_length", false, &key_len));
    PI_TRY(read_i32(f, arch, "attention.value_length", false, &value_len));
    if (key_len > 0) hp->head_dim = key_len;
    if (value_len > 0 && value_len != hp->head_dim) {
        return fail(PI_ERR_UNSUPPORTED, "%s: %s.attention.value_length (%d) differs from key_length (%d)", p,
                    arch.c_str(), value_len, hp->head_dim);
    }
    if (hp->head_dim <= 0 || hp->head_dim % 2 != 0) {
        return fail(PI_ERR_FORMAT, "%s: head dimension %d must be positive and even", p, hp->head_dim);
    }
    hp->n_rot = hp->head_dim;
    PI_TRY(read_i32(f, arch, "rope.dimension_count", false, &hp->n_rot));
    if (hp->n_rot <= 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0) {
        return fail(PI_ERR_FORMAT, "%s: %s.rope.dimension_count (%d) must be even and within the head dimension (%d)",
                    p, arch.c_str(), hp->n_rot, hp->head_dim);
    }
    if (!(hp->rope_base > 0.0f)) return fail(PI_ERR_FORMAT, "%s: %s.rope.freq_base must be > 0", p, arch.c_str());
    if (!(hp->rms_eps >= 0.0f)) {
        return fail(PI_ERR_FORMAT, "%s: %s.attention.layer_norm_rms_epsilon must be >= 0", p, arch.c_str());
    }

    // RoPE scaling. Older files carry only rope.scale_linear; newer ones rope.scaling.type/factor.
    std::string type = "none";
    f.get_str(arch + ".rope.scaling.type", &type);
    float factor = 0.0f;
    PI_TRY(read_f32(f, arch, "rope.scaling.factor", &factor));
    float linear = 0.0f;
    PI_TRY(read_f32(f, arch, "rope.scale_linear", &linear));
    if (type == "none" && linear > 0.0f && linear != 1.0f) {
        type = "linear";
        factor = linear;
    }
    hp->rope_n_ctx_orig = hp->n_ctx_train;
    if (type == "linear") {
        if (factor < 0.0f) return fail(PI_ERR_FORMAT, "%s: %s.rope.scaling.factor is negative", p, arch.c_str());
        if (factor > 0.0f && factor != 1.0f) {
            hp->rope_scaling    = ROPE_SCALING_LINEAR;
            hp->rope_freq_scale = 1.0f / factor;
        }
    } else if (type == "yarn") {
        if (!(factor > 0.0f)) return fail(PI_ERR_FORMAT, "%s: YaRN scaling needs %s.rope.scaling.factor > 0", p, arch.c_str());
        hp->rope_scaling    = ROPE_SCALING_YARN;
        hp->rope_freq_scale = 1.0f / factor;
        hp->yarn_ext_factor = 1.0f;
        PI_TRY(read_i32(f, arch, "rope.scaling.original_context_length", false, &hp->rope_n_ctx_orig));
        PI_TRY(read_f32(f, arch, "rope.scaling.attn_factor", &hp->yarn_attn_factor));
        PI_TRY(read_f32(f, arch, "rope.scaling.yarn_ext_factor", &hp->yarn_ext_factor));
        PI_TRY(read_f32(f, arch, "rope.scaling.yarn_attn_factor", &hp->yarn_attn_factor));
        PI_TRY(read_f32(f, arch, "rope.scaling.yarn_beta_fast", &hp->yarn_beta_fast));
        PI_TRY(read_f32(f, arch, "rope.scaling.yarn_beta_slow", &hp->yarn_beta_slow));
        if (hp->rope_n_ctx_orig <= 0) hp->rope_n_ctx_orig = hp->n_ctx_train;
    } else if (type != "none") {
        return fail(PI_ERR_UNSUPPORTED, "%s: %s.rope.scaling.type \"%s\" is not supported (none, linear, yarn are)", p,
                    arch.c_str(), type.c_str());
    }
    return PI_OK;
}

// Finds a tensor and checks its dimensions: ne0 x ne1 (ne1 = 0 for a 1-D tensor).
pi_status find_checked(const gguf_file & f, const std::string & name, int64_t ne0, int64_t ne1, bool required,
                       const gguf_tensor ** out) {
    *out = f.find_tensor(name);
    if (!*out) {
        if (!required) return PI_OK;
        return fail(PI_ERR_FORMAT, "%s: tensor %s is missing", f.path.c_str(), name.c_str());
    }
    const gguf_tensor & t = **out;
    const int64_t want_dims = ne1 == 0 ? 1 : 2;
    const bool ok = t.ne[0] == ne0 && (ne1 == 0 ? t.ne[1] == 1 : t.ne[1] == ne1) && t.ne[2] == 1 && t.ne[3] == 1;
    if (!ok) {
        if (want_dims == 1) {
            return fail(PI_ERR_FORMAT, "%s: tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld]",
                        f.path.c_str(), name.c_str(), (long long)t.ne[0], (long long)t.ne[1], (long long)t.ne[2],
                        (long long)t.ne[3], (long long)ne0);
        }
        return fail(PI_ERR_FORMAT, "%s: tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                    f.path.c_str(), name.c_str(), (long long)t.ne[0], (long long)t.ne[1], (long long)t.ne[2],
                    (long long)t.ne[3], (long long)ne0, (long long)ne1);
    }
    if (!t.data) return fail(PI_ERR_INTERNAL, "%s: tensor %s has no data (file opened without data?)", f.path.c_str(), name.c_str());
    return PI_OK;
}

pi_status bind_vector(const gguf_file & f, const std::string & name, int64_t n, const float ** out) {
    const gguf_tensor * t = nullptr;
    PI_TRY(find_checked(f, name, n, 0, true, &t));
    if (t->type != PI_TYPE_F32) {
        const char * tn = type_get(t->type).name;
        return fail(PI_ERR_UNSUPPORTED, "%s: tensor %s has type %s; norm weights must be F32", f.path.c_str(),
                    name.c_str(), tn ? tn : "unknown");
    }
    *out = reinterpret_cast<const float *>(t->data);
    return PI_OK;
}

// Binds a matrix of n_rows rows of n_cols values. required=false leaves *w empty when absent.
pi_status bind_matrix(const gguf_file & f, const std::string & name, int64_t n_cols, int64_t n_rows, bool required,
                      llm_weight * w) {
    const gguf_tensor * t = nullptr;
    PI_TRY(find_checked(f, name, n_cols, n_rows, required, &t));
    if (!t) return PI_OK;
    const char * tn = type_get(t->type).name;
    if (!kernel_supports(t->type)) {
        return fail(PI_ERR_UNSUPPORTED, "%s: tensor %s has type %s, which has no CPU kernels", f.path.c_str(),
                    name.c_str(), tn ? tn : "unknown");
    }
    const int64_t rb = type_row_bytes(t->type, n_cols);
    if (rb <= 0) {
        return fail(PI_ERR_FORMAT, "%s: tensor %s: row of %lld values is not a whole number of %s blocks",
                    f.path.c_str(), name.c_str(), (long long)n_cols, tn ? tn : "unknown");
    }
    if ((uint64_t)rb * (uint64_t)n_rows > t->n_bytes) {
        return fail(PI_ERR_FORMAT, "%s: tensor %s: %llu bytes stored, %llu needed", f.path.c_str(), name.c_str(),
                    (unsigned long long)t->n_bytes, (unsigned long long)rb * (unsigned long long)n_rows);
    }
    w->data      = t->data;
    w->type      = t->type;
    w->n_cols    = n_cols;
    w->n_rows    = n_rows;
    w->row_bytes = static_cast<size_t>(rb);
    w->name      = t->name.c_str();
    return PI_OK;
}

// The down projection of a block, dense (ffn_down, [n_ff, n_embd]) or transposed (ffn_down_t,
// [n_embd, n_ff], PowerInfer's layout), and the optional predictor fc1 [n_embd, H] / fc2 [H, n_ff].
pi_status bind_sparse_ffn(const gguf_file & f, const std::string & b, const llm_hparams & hp, llm_layer * L) {
    const char * p = f.path.c_str();
    const std::string down = b + "ffn_down.weight", down_t = b + "ffn_down_t.weight";
    if (f.find_tensor(down_t)) {
        if (f.find_tensor(down)) {
            return fail(PI_ERR_FORMAT, "%s: block has both %s and %s; expected one of them", p, down.c_str(),
                        down_t.c_str());
        }
        PI_TRY(bind_matrix(f, down_t, hp.n_embd, hp.n_ff, true, &L->w_down_t));
        if (!sparse_down_supports(L->w_down_t.type)) {
            const char * tn = type_get(L->w_down_t.type).name;
            return fail(PI_ERR_UNSUPPORTED, "%s: tensor %s has type %s, which the sparse down kernels do not handle",
                        p, down_t.c_str(), tn ? tn : "unknown");
        }
    } else {
        PI_TRY(bind_matrix(f, down, hp.n_ff, hp.n_embd, true, &L->w_down));
    }
    const std::string fc1 = b + "fc1.weight", fc2 = b + "fc2.weight";
    const gguf_tensor * t1 = f.find_tensor(fc1);
    const gguf_tensor * t2 = f.find_tensor(fc2);
    if (!t1 && !t2) return PI_OK;
    if (!t1 || !t2) {
        return fail(PI_ERR_FORMAT, "%s: tensor %s is missing (the predictor needs %s and %s)", p,
                    (t1 ? fc2 : fc1).c_str(), fc1.c_str(), fc2.c_str());
    }
    // fc1 dims [n_embd, H]: H is whatever the file says (it differs between layers).
    const int64_t H = t1->ne[1];
    if (t1->ne[0] != hp.n_embd || H <= 0 || H > INT32_MAX || t1->ne[2] != 1 || t1->ne[3] != 1) {
        return fail(PI_ERR_FORMAT, "%s: tensor %s has shape [%lld, %lld, %lld, %lld], expected [%d, H]", p,
                    fc1.c_str(), (long long)t1->ne[0], (long long)t1->ne[1], (long long)t1->ne[2],
                    (long long)t1->ne[3], hp.n_embd);
    }
    PI_TRY(bind_matrix(f, fc1, hp.n_embd, H, true, &L->fc1));
    PI_TRY(bind_matrix(f, fc2, H, hp.n_ff, true, &L->fc2));
    return PI_OK;
}

pi_status bind_weights(const gguf_file & f, llm_model * m) {
    const llm_hparams & hp = m->hp;
    const gguf_tensor * emb = f.find_tensor("token_embd.weight");
    if (!emb) return fail(PI_ERR_FORMAT, "%s: tensor token_embd.weight is missing", f.path.c_str());
    if (emb->ne[0] != hp.n_embd || emb->ne[1] <= 0) {
        return fail(PI_ERR_FORMAT, "%s: tensor token_embd.weight has shape [%lld, %lld], expected [%d, n_vocab]",
                    f.path.c_str(), (long long)emb->ne[0], (long long)emb->ne[1], hp.n_embd);
    }
    if (emb->ne[1] > INT32_MAX) return fail(PI_ERR_FORMAT, "%s: token_embd.weight has too many rows", f.path.c_str());
    m->hp.n_vocab = static_cast<int32_t>(emb->ne[1]);
    PI_TRY(bind_matrix(f, "token_embd.weight", hp.n_embd, m->hp.n_vocab, true, &m->tok_embd));
    PI_TRY(bind_vector(f, "output_norm.weight", hp.n_embd, &m->output_norm));
    PI_TRY(bind_matrix(f, "output.weight", hp.n_embd, m->hp.n_vocab, false, &m->output));
    if (!m->output.data) {
        m->output      = m->tok_embd;
        m->tied_output = true;
    }
    const gguf_tensor * rf = nullptr;
    PI_TRY(find_checked(f, "rope_freqs.weight", hp.n_rot / 2, 0, false, &rf));
    if (rf) {
        if (rf->type != PI_TYPE_F32) {
            return fail(PI_ERR_UNSUPPORTED, "%s: tensor rope_freqs.weight must be F32", f.path.c_str());
        }
        m->rope_freqs = reinterpret_cast<const float *>(rf->data);
    }

    const bool falcon = m->arch_kind == LLM_ARCH_FALCON;
    if (falcon) PI_TRY(bind_vector(f, "output_norm.bias", hp.n_embd, &m->output_norm_b));
    const int64_t nq = hp.n_embd_q(), nkv = hp.n_embd_kv();
    m->layers.resize(hp.n_layer);
    for (int il = 0; il < hp.n_layer; il++) {
        llm_layer & L = m->layers[il];
        const std::string b = "blk." + std::to_string(il) + ".";
        PI_TRY(bind_vector(f, b + "attn_norm.weight", hp.n_embd, &L.attn_norm));
        if (falcon) {
            PI_TRY(bind_vector(f, b + "attn_norm.bias", hp.n_embd, &L.attn_norm_b));
            if (f.find_tensor(b + "attn_norm_2.weight")) {  // Falcon-40B: the FFN has its own norm
                PI_TRY(bind_vector(f, b + "attn_norm_2.weight", hp.n_embd, &L.attn_norm_2));
                PI_TRY(bind_vector(f, b + "attn_norm_2.bias", hp.n_embd, &L.attn_norm_2_b));
            }
            llm_weight qkv;
            PI_TRY(bind_matrix(f, b + "attn_qkv.weight", hp.n_embd, nq + 2 * nkv, true, &qkv));
            L.wq = L.wk = L.wv = qkv;  // views of the fused rows: [Q | K | V]
            L.wq.n_rows = nq;
            L.wk.n_rows = L.wv.n_rows = nkv;
            L.wk.data += static_cast<size_t>(nq) * qkv.row_bytes;
            L.wv.data += static_cast<size_t>(nq + nkv) * qkv.row_bytes;
            PI_TRY(bind_matrix(f, b + "attn_output.weight", nq, hp.n_embd, true, &L.wo));
            PI_TRY(bind_matrix(f, b + "ffn_up.weight", hp.n_embd, hp.n_ff, true, &L.w_up));
            if (f.find_tensor(b + "ffn_up.bias")) PI_TRY(bind_vector(f, b + "ffn_up.bias", hp.n_ff, &L.ffn_up_b));
        } else {
            PI_TRY(bind_matrix(f, b + "attn_q.weight", hp.n_embd, nq, true, &L.wq));
            PI_TRY(bind_matrix(f, b + "attn_k.weight", hp.n_embd, nkv, true, &L.wk));
            PI_TRY(bind_matrix(f, b + "attn_v.weight", hp.n_embd, nkv, true, &L.wv));
            PI_TRY(bind_matrix(f, b + "attn_output.weight", nq, hp.n_embd, true, &L.wo));
            PI_TRY(bind_vector(f, b + "ffn_norm.weight", hp.n_embd, &L.ffn_norm));
            PI_TRY(bind_matrix(f, b + "ffn_gate.weight", hp.n_embd, hp.n_ff, true, &L.w_gate));
            PI_TRY(bind_matrix(f, b + "ffn_up.weight", hp.n_embd, hp.n_ff, true, &L.w_up));
        }
        PI_TRY(bind_sparse_ffn(f, b, hp, &L));
        if (L.w_down_t.data) m->has_down_t = true;
        if (L.fc1.data) {
            m->has_predictors  = true;
            m->pred_hidden_max = std::max(m->pred_hidden_max, L.fc1.n_rows);
        }
    }
    return PI_OK;
}

// The FFN activation, the predictor threshold and the sparse mode (pi_model_params).
pi_status resolve_sparse(const gguf_file & f, const pi_model_params & params, llm_model * m) {
    const char * p = f.path.c_str();
    // PowerInfer's files are ReLU models: bamboo always (dReLU), llama when it has predictors or
    // the transposed down projection. A plain llama file keeps SiLU.
    if (m->arch == "bamboo") m->ffn_act = LLM_FFN_RELU_BOTH;
    else if (m->arch_kind == LLM_ARCH_FALCON) {
        // Falcon's own FFN is GELU; PowerInfer's ReluFalcon files say ReLU by their layout.
        if (!(f.sparse_magic || m->has_predictors || m->has_down_t)) {
            return fail(PI_ERR_UNSUPPORTED, "%s: falcon with a GELU FFN is not supported; this build runs ReLU "
                        "falcon models in PowerInfer's layout (PWRI magic, ffn_down_t or predictors)", p);
        }
        m->ffn_act = LLM_FFN_RELU_UP;
    } else if (m->has_predictors || m->has_down_t) m->ffn_act = LLM_FFN_RELU_GATE_UP;
    // Our own key, for ReLU models in the plain dense layout (nothing else tells them from SiLU ones):
    // powerinfer.ffn_activation = "relu" (ReLU(gate) * up), "relu_both" (bamboo's), or "silu".
    std::string act;
    if (f.get_str("powerinfer.ffn_activation", &act) && m->arch_kind == LLM_ARCH_LLAMA) {
        if (act == "relu") m->ffn_act = LLM_FFN_RELU_GATE_UP;
        else if (act == "relu_both") m->ffn_act = LLM_FFN_RELU_BOTH;
        else if (act == "silu" && !m->has_predictors && !m->has_down_t) m->ffn_act = LLM_FFN_SILU;
        else {
            return fail(PI_ERR_FORMAT, "%s: powerinfer.ffn_activation \"%s\" is not one of relu, relu_both, silu "
                        "(silu cannot go with predictors or ffn_down_t)", p, act.c_str());
        }
    }

    // Threshold: the file's powerinfer.sparse_threshold (default 0), then the env override as in
    // PowerInfer, then the caller's value when it is not NaN.
    float thr = 0.0f;
    if (!f.get_f32("powerinfer.sparse_threshold", &thr)) {
        if (f.find_key("powerinfer.sparse_threshold") >= 0) {
            return fail(PI_ERR_FORMAT, "%s: powerinfer.sparse_threshold is not a float", p);
        }
        thr = 0.0f;
    }
    if (const char * env = std::getenv("LLAMA_SPARSE_PRED_THRESHOLD")) {
        char * end = nullptr;
        const float v = std::strtof(env, &end);
        if (end == env || *end != '\0' || !std::isfinite(v)) {
            PI_LOG_W("LLAMA_SPARSE_PRED_THRESHOLD=\"%s\" is not a number; ignored", env);
        } else {
            thr = v;
        }
    }
    if (!std::isnan(params.sparse_threshold)) thr = params.sparse_threshold;
    m->sparse_threshold = thr;

    switch (params.sparse_mode) {
    case PI_SPARSE_AUTO:
        m->sparse_mode = m->has_predictors ? PI_SPARSE_PREDICTOR : PI_SPARSE_DENSE;
        break;
    case PI_SPARSE_DENSE:
        m->sparse_mode = PI_SPARSE_DENSE;
        break;
    case PI_SPARSE_PREDICTOR:
        if (!m->has_predictors) {
            return fail(PI_ERR_INVALID_ARGUMENT, "%s: sparse_mode predictor, but the file has no predictor tensors "
                        "(blk.N.fc1.weight / fc2.weight)", p);
        }
        m->sparse_mode = PI_SPARSE_PREDICTOR;
        break;
    case PI_SPARSE_ORACLE:
        if (m->ffn_act == LLM_FFN_SILU) {
            return fail(PI_ERR_UNSUPPORTED, "%s: sparse_mode oracle needs a ReLU model; this %s file uses SiLU, "
                        "whose neurons never output exactly zero", p, m->arch.c_str());
        }
        m->sparse_mode = PI_SPARSE_ORACLE;
        break;
    default:
        return fail(PI_ERR_INVALID_ARGUMENT, "sparse_mode %d is not a pi_sparse_mode", params.sparse_mode);
    }
    return PI_OK;
}

}  // namespace

pi_status llm_load(const gguf_file & file, const pi_model_params & params, llm_model ** out) {
    *out = nullptr;
    const auto t0 = std::chrono::steady_clock::now();
    std::string arch;
    if (!file.get_str("general.architecture", &arch)) {
        return fail(PI_ERR_FORMAT, "%s: metadata key general.architecture is missing", file.path.c_str());
    }
    if (!is_supported(arch)) {
        return fail(PI_ERR_UNSUPPORTED, "%s: architecture \"%s\" is not supported (this build runs llama, mistral, "
                    "bamboo and falcon)", file.path.c_str(), arch.c_str());
    }
    std::unique_ptr<llm_model> m(new (std::nothrow) llm_model());
    if (!m) return fail(PI_ERR_OUT_OF_MEMORY, "%s: out of memory", file.path.c_str());
    m->arch = arch;
    m->arch_kind = arch == "falcon" ? LLM_ARCH_FALCON : LLM_ARCH_LLAMA;
    PI_TRY(read_hparams(file, arch, &m->hp));
    PI_TRY(bind_weights(file, m.get()));
    PI_TRY(resolve_sparse(file, params, m.get()));
    int32_t vocab_size = 0;
    if (file.get_i32(arch + ".vocab_size", &vocab_size) && vocab_size != m->hp.n_vocab) {
        PI_LOG_W("%s: %s.vocab_size is %d but token_embd.weight has %d rows; using the tensor", file.path.c_str(),
                 arch.c_str(), vocab_size, m->hp.n_vocab);
    }
    m->t_load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    PI_LOG_D("%s: %s, %d layers, n_embd %d, n_head %d/%d, n_ff %d, n_vocab %d, %s output", file.path.c_str(),
             arch.c_str(), m->hp.n_layer, m->hp.n_embd, m->hp.n_head, m->hp.n_head_kv, m->hp.n_ff, m->hp.n_vocab,
             m->tied_output ? "tied" : "separate");
    *out = m.release();
    return PI_OK;
}

void llm_free(llm_model * m) { delete m; }

}  // namespace pi
