// PENDING (llm helper): placeholders so the library links while the real code is written.
// Delete this file when the real definitions exist. Nothing here may ship.
#include "core/status.h"
#include "powerinfer.h"
#include <cstring>

#include "model/model.h"
namespace pi {
struct llm_model {};
pi_status llm_load(const gguf_file &, const pi_model_params &, llm_model ** out) { *out = nullptr; return fail(PI_ERR_INTERNAL, "llm_load: not written yet"); }
void llm_free(llm_model * m) { delete m; }
}

extern "C" {
int32_t pi_model_n_ctx_train(const pi_model * model) { return (int32_t)0; }
int32_t pi_model_n_embd(const pi_model * model) { return (int32_t)0; }
int32_t pi_model_n_layer(const pi_model * model) { return (int32_t)0; }
int32_t pi_model_n_head(const pi_model * model) { return (int32_t)0; }
int32_t pi_model_n_head_kv(const pi_model * model) { return (int32_t)0; }
int32_t pi_model_n_ff(const pi_model * model) { return (int32_t)0; }
uint64_t pi_model_n_params(const pi_model * model) { return (uint64_t)0; }
uint64_t pi_model_size_bytes(const pi_model * model) { return (uint64_t)0; }
pi_context_params pi_context_default_params(void) { pi_context_params p; std::memset(&p, 0, sizeof(p)); p.struct_size = sizeof(p); return p; }
pi_status pi_context_new(pi_model * model, const pi_context_params * params, pi_context ** out) { return pi::fail(PI_ERR_INTERNAL, "%s: not written yet", __func__); }
void pi_context_free(pi_context * ctx) {  }
uint32_t pi_context_n_ctx(const pi_context * ctx) { return (uint32_t)0; }
uint32_t pi_context_n_batch(const pi_context * ctx) { return (uint32_t)0; }
pi_status pi_context_set_threads(pi_context * ctx, int32_t n_threads, int32_t n_threads_batch) { return pi::fail(PI_ERR_INTERNAL, "%s: not written yet", __func__); }
pi_status pi_decode(pi_context * ctx, const pi_token * tokens, const pi_pos * pos, int32_t n_tokens, const int8_t * want_logits) { return pi::fail(PI_ERR_INTERNAL, "%s: not written yet", __func__); }
float * pi_get_logits(pi_context * ctx, int32_t i) { return nullptr; }
int32_t pi_n_outputs(const pi_context * ctx) { return (int32_t)0; }
float * pi_get_embeddings(pi_context * ctx, int32_t i) { return nullptr; }
pi_pos pi_kv_pos(const pi_context * ctx) { return (pi_pos)0; }
pi_status pi_kv_truncate(pi_context * ctx, pi_pos pos) { return pi::fail(PI_ERR_INTERNAL, "%s: not written yet", __func__); }
size_t pi_state_size(const pi_context * ctx) { return (size_t)0; }
pi_status pi_state_save(const pi_context * ctx, uint8_t * dst, size_t dst_size, size_t * n_out) { return pi::fail(PI_ERR_INTERNAL, "%s: not written yet", __func__); }
pi_status pi_state_load(pi_context * ctx, const uint8_t * src, size_t src_size) { return pi::fail(PI_ERR_INTERNAL, "%s: not written yet", __func__); }
pi_status pi_context_timings(const pi_context * ctx, pi_timings * out) { return pi::fail(PI_ERR_INTERNAL, "%s: not written yet", __func__); }
void pi_context_reset_timings(pi_context * ctx) {  }
}
