// info_api.cpp - version, ABI, build and CPU facts, and the struct layouts the binding checks.
#include "core/cpu_features.h"
#include "core/status.h"
#include "powerinfer.h"

#include <cstddef>
#include <cstring>
#include <string>

#ifndef PI_VERSION_STRING
#define PI_VERSION_STRING "0.0.0"
#endif

namespace pi {
// Implemented by each GPU backend that was built (cuda/, metal/); absent otherwise.
std::string cuda_info_json();
}  // namespace pi

namespace {

const char * bool_str(bool b) { return b ? "true" : "false"; }

const char * isa_name(int32_t isa) {
    switch (isa) {
        case PI_ISA_SCALAR: return "scalar";
        case PI_ISA_AVX2:   return "avx2";
        case PI_ISA_AVX512: return "avx512";
        case PI_ISA_NEON:   return "neon";
    }
    return "auto";
}

std::string build_system_info() {
    const pi::cpu_features & f = pi::cpu_get_features();
    std::string paths = "\"scalar\"";
#ifdef PI_HAVE_AVX2_KERNELS
    paths += ", \"avx2\"";
#endif
#ifdef PI_HAVE_AVX512_KERNELS
    paths += ", \"avx512\"";
#endif
#ifdef PI_HAVE_NEON_KERNELS
    paths += ", \"neon\"";
#endif
    std::string backends = "\"cpu\"";
    std::string cuda     = "null";
#ifdef PI_HAVE_CUDA
    backends += ", \"cuda\"";
    cuda = pi::cuda_info_json();
#endif
#ifdef PI_HAVE_METAL
    backends += ", \"metal\"";
#endif
    return pi::strprintf(
        "{\"version\": \"%s\", \"abi_version\": %d, \"backends\": [%s], \"simd_built\": [%s], "
        "\"simd_in_use\": \"%s\", \"cpu\": {\"avx\": %s, \"avx2\": %s, \"fma\": %s, \"f16c\": %s, "
        "\"avx512f\": %s, \"avx512bw\": %s, \"avx512vl\": %s, \"avx512dq\": %s, \"avx512_vnni\": %s, "
        "\"avx512_vbmi\": %s, \"avx512_bf16\": %s, \"avx_vnni\": %s, \"neon\": %s, \"arm_dotprod\": %s}, \"cuda\": %s}",
        PI_VERSION_STRING, PI_ABI_VERSION, backends.c_str(), paths.c_str(), isa_name(pi_cpu_get_isa()),
        bool_str(f.avx), bool_str(f.avx2), bool_str(f.fma), bool_str(f.f16c), bool_str(f.avx512f),
        bool_str(f.avx512bw), bool_str(f.avx512vl), bool_str(f.avx512dq), bool_str(f.avx512vnni),
        bool_str(f.avx512vbmi), bool_str(f.avx512bf16), bool_str(f.avx_vnni), bool_str(f.neon), bool_str(f.arm_dotprod), cuda.c_str());
}

}  // namespace

extern "C" {

const char * pi_version(void) { return PI_VERSION_STRING; }
int32_t      pi_abi_version(void) { return PI_ABI_VERSION; }

const char * pi_system_info(void) {
    // Rebuilt on each call: the ISA in use can change through pi_cpu_set_isa.
    thread_local std::string info;
    info = build_system_info();
    return info.c_str();
}

int64_t pi_struct_layout(const char * name) {
    if (!name) return -1;
    struct entry { const char * name; int64_t value; };
#define PI_SIZE(T) {#T, (int64_t)sizeof(T)}
#define PI_FIELD(T, F) {#T "." #F, (int64_t)offsetof(T, F)}
    static const entry entries[] = {
        PI_SIZE(pi_model_params),
        PI_FIELD(pi_model_params, struct_size), PI_FIELD(pi_model_params, n_threads),
        PI_FIELD(pi_model_params, n_gpu_layers), PI_FIELD(pi_model_params, sparse_mode),
        PI_FIELD(pi_model_params, sparse_threshold), PI_FIELD(pi_model_params, vram_budget),
        PI_FIELD(pi_model_params, gpu_index_path), PI_FIELD(pi_model_params, progress_callback),
        PI_FIELD(pi_model_params, progress_user_data), PI_FIELD(pi_model_params, vocab_only),
        PI_FIELD(pi_model_params, use_mmap), PI_FIELD(pi_model_params, use_mlock),
        PI_SIZE(pi_context_params),
        PI_FIELD(pi_context_params, struct_size), PI_FIELD(pi_context_params, n_ctx),
        PI_FIELD(pi_context_params, n_batch), PI_FIELD(pi_context_params, n_threads),
        PI_FIELD(pi_context_params, n_threads_batch), PI_FIELD(pi_context_params, kv_type),
        PI_FIELD(pi_context_params, logits_all), PI_FIELD(pi_context_params, embeddings),
        PI_SIZE(pi_tensor_info),
        PI_FIELD(pi_tensor_info, name), PI_FIELD(pi_tensor_info, type), PI_FIELD(pi_tensor_info, n_dims),
        PI_FIELD(pi_tensor_info, ne), PI_FIELD(pi_tensor_info, offset), PI_FIELD(pi_tensor_info, n_bytes),
        PI_SIZE(pi_timings),
        PI_FIELD(pi_timings, t_load_ms), PI_FIELD(pi_timings, t_prompt_ms), PI_FIELD(pi_timings, t_decode_ms),
        PI_FIELD(pi_timings, n_prompt_tokens), PI_FIELD(pi_timings, n_decode_tokens),
        PI_SIZE(pi_quantize_params),
        PI_FIELD(pi_quantize_params, struct_size), PI_FIELD(pi_quantize_params, type),
        PI_FIELD(pi_quantize_params, n_threads), PI_FIELD(pi_quantize_params, quantize_output),
        PI_FIELD(pi_quantize_params, progress_callback), PI_FIELD(pi_quantize_params, progress_user_data),
        PI_SIZE(pi_sampler_params),
        PI_FIELD(pi_sampler_params, struct_size), PI_FIELD(pi_sampler_params, temperature),
        PI_FIELD(pi_sampler_params, top_k), PI_FIELD(pi_sampler_params, top_p),
        PI_FIELD(pi_sampler_params, min_p), PI_FIELD(pi_sampler_params, typical_p),
        PI_FIELD(pi_sampler_params, penalty_last_n), PI_FIELD(pi_sampler_params, repeat_penalty),
        PI_FIELD(pi_sampler_params, frequency_penalty), PI_FIELD(pi_sampler_params, presence_penalty),
        PI_FIELD(pi_sampler_params, mirostat), PI_FIELD(pi_sampler_params, mirostat_tau),
        PI_FIELD(pi_sampler_params, mirostat_eta), PI_FIELD(pi_sampler_params, seed),
        PI_SIZE(pi_sparse_layer_stats),
        PI_FIELD(pi_sparse_layer_stats, n_tokens), PI_FIELD(pi_sparse_layer_stats, n_ff),
        PI_FIELD(pi_sparse_layer_stats, n_computed), PI_FIELD(pi_sparse_layer_stats, n_fired),
        PI_FIELD(pi_sparse_layer_stats, n_true),
        PI_SIZE(pi_stage_times),
        PI_FIELD(pi_stage_times, t_attention_ms), PI_FIELD(pi_stage_times, t_predictor_ms),
        PI_FIELD(pi_stage_times, t_ffn_ms), PI_FIELD(pi_stage_times, t_other_ms),
    };
#undef PI_SIZE
#undef PI_FIELD
    for (const entry & e : entries) {
        if (std::strcmp(e.name, name) == 0) return e.value;
    }
    return -1;
}

}  // extern "C"
