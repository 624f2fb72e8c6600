// PENDING (vocab helper): placeholders so the library links while the real code is written.
// Delete this file when the real definitions exist. Nothing here may ship.
#include "core/status.h"
#include "powerinfer.h"
#include <cstring>

#include "model/model.h"
namespace pi {
class vocab {};
pi_status vocab_load(const gguf_file &, vocab ** out) { *out = nullptr; return PI_OK; }
void vocab_free(vocab * v) { delete v; }
}

extern "C" {
int32_t pi_model_n_vocab(const pi_model * model) { return (int32_t)0; }
pi_status pi_tokenize(const pi_model * model, const char * text, int32_t text_len, pi_token * tokens, int32_t n_tokens_max, bool add_special, bool parse_special, int32_t * n_out) { return pi::fail(PI_ERR_INTERNAL, "%s: not written yet", __func__); }
pi_status pi_token_to_piece(const pi_model * model, pi_token token, char * buf, int32_t buf_size, bool special, int32_t * n_out) { return pi::fail(PI_ERR_INTERNAL, "%s: not written yet", __func__); }
pi_status pi_detokenize(const pi_model * model, const pi_token * tokens, int32_t n_tokens, char * buf, int32_t buf_size, bool remove_special, bool unparse_special, int32_t * n_out) { return pi::fail(PI_ERR_INTERNAL, "%s: not written yet", __func__); }
const char * pi_token_text(const pi_model * model, pi_token token) { return nullptr; }
float pi_token_score(const pi_model * model, pi_token token) { return (float)0; }
int32_t pi_token_attrs(const pi_model * model, pi_token token) { return (int32_t)0; }
pi_token pi_token_bos(const pi_model * model) { return (pi_token)0; }
pi_token pi_token_eos(const pi_model * model) { return (pi_token)0; }
pi_token pi_token_eot(const pi_model * model) { return (pi_token)0; }
pi_token pi_token_nl(const pi_model * model) { return (pi_token)0; }
pi_token pi_token_pad(const pi_model * model) { return (pi_token)0; }
bool pi_token_is_eog(const pi_model * model, pi_token token) { return (bool)0; }
bool pi_vocab_add_bos(const pi_model * model) { return (bool)0; }
bool pi_vocab_add_eos(const pi_model * model) { return (bool)0; }
const char * pi_vocab_type(const pi_model * model) { return nullptr; }
}
