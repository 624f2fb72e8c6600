// model.h - what a pi_model holds: the open file, the vocabulary and (unless vocab-only) the
// architecture's hyper-parameters and weights.
#pragma once

#include "gguf/gguf.h"
#include "run/ffn_offload.h"
#include "powerinfer.h"

#include <memory>
#include <string>
#include <vector>

namespace pi {
class vocab;       // vocab/vocab.h
struct llm_model;  // model/llm.h: hyper-parameters and weight views of one architecture

// Reads the architecture's hyper-parameters and binds its weight tensors (model/llm_load.cpp).
// Fails with the tensor or key at fault named.
pi_status llm_load(const gguf_file & file, const pi_model_params & params, llm_model ** out);
void      llm_free(llm_model * m);
struct llm_deleter { void operator()(llm_model * m) const { llm_free(m); } };

// Builds the vocabulary from tokenizer.ggml.* metadata (vocab/vocab_load.cpp).
// *out is null (and PI_OK returned) when the file has no tokenizer.ggml.model key.
pi_status vocab_load(const gguf_file & file, vocab ** out);
void      vocab_free(vocab * v);
struct vocab_deleter { void operator()(vocab * v) const { vocab_free(v); } };

}  // namespace pi

struct pi_model {
    pi_model_params                                  params;
    std::unique_ptr<pi::gguf_file>                   file;
    std::unique_ptr<pi::vocab, pi::vocab_deleter>    vocab;  // null if the file has no tokenizer
    std::unique_ptr<pi::llm_model, pi::llm_deleter>  llm;    // null for vocab-only loads
    std::string                                      arch;   // general.architecture
    std::vector<std::string>                         meta_values;  // rendered once at load
    std::unique_ptr<pi::ffn_offload>                 offload;  // hot FFN rows on a device, or null
};
