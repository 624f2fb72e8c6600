// vocab_api.cpp - the public tokenizer calls of powerinfer.h over pi::vocab.
#include "core/status.h"
#include "model/model.h"
#include "powerinfer.h"
#include "vocab/vocab.h"

#include <cstring>
#include <new>
#include <string>
#include <vector>

namespace {

const pi::vocab * vocab_of(const pi_model * m) { return m ? m->vocab.get() : nullptr; }

pi_status need_vocab(const pi_model * m, const char * fn) {
    if (!m) return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: model is NULL", fn);
    if (!m->vocab) {
        return pi::fail(PI_ERR_UNSUPPORTED, "%s: %s has no tokenizer (no tokenizer.ggml.model key)", fn,
                        m->file ? m->file->path.c_str() : "the model");
    }
    return PI_OK;
}

// Copies bytes to a caller's buffer under the header's convention.
pi_status copy_out(const std::string & s, char * buf, int32_t buf_size, int32_t * n_out, const char * fn) {
    if (s.size() > (size_t)INT32_MAX) return pi::fail(PI_ERR_INVALID_ARGUMENT, "%s: result too large", fn);
    if (n_out) *n_out = (int32_t)s.size();
    if ((int64_t)s.size() > (int64_t)buf_size || (!buf && !s.empty())) {
        return pi::fail(PI_ERR_BUFFER_TOO_SMALL, "%s: needs %zu bytes, buffer has %d", fn, s.size(), buf_size);
    }
    if (!s.empty()) std::memcpy(buf, s.data(), s.size());
    return PI_OK;
}

}  // namespace

extern "C" {

int32_t pi_model_n_vocab(const pi_model * model) {
    const pi::vocab * v = vocab_of(model);
    return v ? v->n_vocab() : 0;
}

pi_status pi_tokenize(const pi_model * model, const char * text, int32_t text_len, pi_token * tokens,
                      int32_t n_tokens_max, bool add_special, bool parse_special, int32_t * n_out) {
    PI_TRY(need_vocab(model, "pi_tokenize"));
    if (text_len < 0 || (text_len > 0 && !text)) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_tokenize: bad text (len %d)", text_len);
    }
    if (n_tokens_max < 0 || (n_tokens_max > 0 && !tokens)) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_tokenize: bad output buffer (n_tokens_max %d)", n_tokens_max);
    }
    std::vector<pi_token> ids;
    try {
        model->vocab->tokenize(text, (size_t)text_len, add_special, parse_special, &ids);
    } catch (const std::bad_alloc &) {
        return pi::fail(PI_ERR_OUT_OF_MEMORY, "pi_tokenize: out of memory for %d bytes of text", text_len);
    }
    if (n_out) *n_out = (int32_t)ids.size();
    if ((int64_t)ids.size() > (int64_t)n_tokens_max) {
        return pi::fail(PI_ERR_BUFFER_TOO_SMALL, "pi_tokenize: %zu tokens, buffer holds %d", ids.size(), n_tokens_max);
    }
    if (!ids.empty()) std::memcpy(tokens, ids.data(), ids.size() * sizeof(pi_token));
    return PI_OK;
}

pi_status pi_token_to_piece(const pi_model * model, pi_token token, char * buf, int32_t buf_size, bool special,
                            int32_t * n_out) {
    PI_TRY(need_vocab(model, "pi_token_to_piece"));
    const pi::vocab & v = *model->vocab;
    if (!v.valid(token)) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_token_to_piece: token %d outside the vocabulary (%d)", token, v.n_vocab());
    }
    std::string piece;
    v.token_to_piece(token, special, false, &piece);
    return copy_out(piece, buf, buf_size, n_out, "pi_token_to_piece");
}

pi_status pi_detokenize(const pi_model * model, const pi_token * tokens, int32_t n_tokens, char * buf, int32_t buf_size,
                        bool remove_special, bool unparse_special, int32_t * n_out) {
    PI_TRY(need_vocab(model, "pi_detokenize"));
    const pi::vocab & v = *model->vocab;
    if (n_tokens < 0 || (n_tokens > 0 && !tokens)) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_detokenize: bad tokens (n %d)", n_tokens);
    }
    for (int32_t i = 0; i < n_tokens; i++) {
        if (!v.valid(tokens[i])) {
            return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_detokenize: token %d at %d outside the vocabulary (%d)",
                            tokens[i], i, v.n_vocab());
        }
    }
    std::string text;
    try {
        v.detokenize(tokens, (size_t)n_tokens, remove_special, unparse_special, &text);
    } catch (const std::bad_alloc &) {
        return pi::fail(PI_ERR_OUT_OF_MEMORY, "pi_detokenize: out of memory");
    }
    return copy_out(text, buf, buf_size, n_out, "pi_detokenize");
}

const char * pi_token_text(const pi_model * model, pi_token token) {
    const pi::vocab * v = vocab_of(model);
    return (v && v->valid(token)) ? v->texts[token].c_str() : nullptr;
}

float pi_token_score(const pi_model * model, pi_token token) {
    const pi::vocab * v = vocab_of(model);
    return (v && v->valid(token)) ? v->scores[token] : 0.0f;
}

int32_t pi_token_attrs(const pi_model * model, pi_token token) {
    const pi::vocab * v = vocab_of(model);
    return (v && v->valid(token)) ? v->attrs[token] : PI_TOKEN_ATTR_UNDEFINED;
}

pi_token pi_token_bos(const pi_model * model) { const pi::vocab * v = vocab_of(model); return v ? v->bos : -1; }
pi_token pi_token_eos(const pi_model * model) { const pi::vocab * v = vocab_of(model); return v ? v->eos : -1; }
pi_token pi_token_eot(const pi_model * model) { const pi::vocab * v = vocab_of(model); return v ? v->eot : -1; }
pi_token pi_token_nl(const pi_model * model) { const pi::vocab * v = vocab_of(model); return v ? v->nl : -1; }
pi_token pi_token_pad(const pi_model * model) { const pi::vocab * v = vocab_of(model); return v ? v->pad : -1; }

bool pi_token_is_eog(const pi_model * model, pi_token token) {
    const pi::vocab * v = vocab_of(model);
    return v && token >= 0 && v->is_eog(token);
}

bool pi_vocab_add_bos(const pi_model * model) { const pi::vocab * v = vocab_of(model); return v && v->add_bos; }
bool pi_vocab_add_eos(const pi_model * model) { const pi::vocab * v = vocab_of(model); return v && v->add_eos; }

const char * pi_vocab_type(const pi_model * model) {
    const pi::vocab * v = vocab_of(model);
    if (!v) return "none";
    return v->kind == pi::VOCAB_SPM ? "spm" : v->kind == pi::VOCAB_BPE ? "bpe" : "wpm";
}

}  // extern "C"
