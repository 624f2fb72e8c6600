// vocab.h - a model's vocabulary and its tokenizer (SentencePiece-style "llama", byte-level BPE
// "gpt2" or WordPiece "bert"), built from the tokenizer.ggml.* metadata of a GGUF file by vocab_load (vocab_load.cpp).
//
// Behaviour follows llama.cpp's tokenizer exactly (the tests compare with its vectors):
//  - control/unknown token texts are turned into ids only with parse_special, user-defined ones
//    always (they are split out before anything else);
//  - SPM: a space is prepended to each text run that follows a special token or starts the text
//    (add_space_prefix), spaces become U+2581, pieces merge by score, unknown bytes use <0xNN>;
//  - BPE: the pre-tokenizer named by tokenizer.ggml.pre splits the text into words, each word's
//    bytes are mapped to GPT-2's printable characters and merged by rank.
#pragma once

#include "powerinfer.h"
#include "vocab/text_index.h"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace pi {

struct spm_memo;

enum vocab_kind { VOCAB_SPM, VOCAB_BPE, VOCAB_WPM };

// Pre-tokenizer rule sets (see pretokenize.cpp for each one's regular expressions).
enum pre_kind {
    PRE_NONE,            // SPM: no pre-tokenizer
    PRE_DEFAULT,
    PRE_LLAMA3,          // llama-bpe and friends: digits in groups of up to three
    PRE_QWEN2,           // llama3 shape, single digits
    PRE_QWEN35,          // qwen2 shape, combining marks kept with letters
    PRE_GPT2,            // gpt-2, mpt, olmo, gpt-neox, ...
    PRE_STARCODER,       // single digits split first, then gpt2 (starcoder, refact, command-r, smollm)
    PRE_FALCON,
    PRE_DEEPSEEK_LLM,
    PRE_DEEPSEEK_CODER,
    PRE_PORO,            // poro-chat, bloom, gpt3-finnish
    PRE_GEMMA4,          // runs of newlines and runs of everything else; no byte-level mapping
};

class vocab {
public:
    vocab_kind  kind = VOCAB_SPM;
    pre_kind    pre  = PRE_NONE;
    std::string model_name;  // tokenizer.ggml.model
    std::string pre_name;    // tokenizer.ggml.pre

    std::vector<std::string> texts;   // [n_vocab] token text as stored
    std::vector<float>       scores;  // [n_vocab]
    std::vector<int32_t>     attrs;   // [n_vocab] pi_token_attr bits
    std::vector<std::string> pieces;  // [n_vocab] bytes a token stands for (special tokens: their text)

    pi_token bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, sep = -1, pad = -1, nl = -1, mask = -1;
    std::vector<pi_token> eog;        // sorted end-of-generation ids
    bool add_bos = false, add_eos = false, add_space_prefix = false;
    bool ignore_merges = false;       // BPE: a word that is a whole token is taken as it is
    // BPE variants (Gemma 4): spaces written as U+2581 before merging, and tokens holding raw
    // UTF-8 (bytes outside tokens as <0xNN>) instead of GPT-2's byte-level characters.
    bool escape_spaces = false;
    bool byte_encode   = true;
    // SPM: no token has U+2581 after another character except in a leading run of U+2581, so no
    // merge crosses the point before a U+2581 that follows another character; the text can be
    // tokenized word by word (and repeated words looked up) with the same result.
    bool spm_words_independent = false;
    // WPM (BERT) normalizer options and the longest token text in bytes.
    bool wpm_lowercase = true, wpm_strip_accents = true;
    size_t max_token_len = 0;

    text_index  by_text;              // token text -> id
    pair_index  merges;               // BPE (left id, right id) -> rank, merged id
    // Merges whose sides are not both tokens (rare): "left right" text -> rank.
    std::unordered_map<std::string, int32_t> merges_by_text;
    std::vector<pi_token> specials;   // control/user-defined/unknown ids, longest text first

    int32_t n_vocab() const { return (int32_t)texts.size(); }
    bool valid(pi_token t) const { return t >= 0 && t < n_vocab(); }
    bool is_eog(pi_token t) const;

    // Appends the ids of text to out.
    void tokenize(const char * text, size_t n, bool add_special, bool parse_special,
                  std::vector<pi_token> * out) const;
    // Bytes of one token; control/unknown tokens give "" unless special. lstrip drops one leading
    // space (the SPM space prefix).
    void token_to_piece(pi_token t, bool special, bool lstrip, std::string * out) const;
    // Bytes of a sequence (see pi_detokenize).
    void detokenize(const pi_token * toks, size_t n, bool remove_special, bool unparse_special,
                    std::string * out) const;

    // Tokenizes one escaped SPM text run (word by word when spm_words_independent).
    void spm_run(const std::string & run, spm_memo * memo, std::vector<pi_token> * out) const;

    // Used by the tokenizer sessions.
    pi_token byte_token(uint8_t b) const;  // SPM <0xNN> (or the byte itself as a token)
};

// One text run through each tokenizer (tokenize_spm.cpp, tokenize_bpe.cpp).
void spm_tokenize_run(const vocab & v, const char * escaped, size_t n, std::vector<pi_token> * out);
void wpm_tokenize_run(const vocab & v, const char * text, size_t n, std::vector<pi_token> * out);
struct bpe_cache;
void bpe_tokenize_run(const vocab & v, const char * text, size_t n, bpe_cache * cache,
                      std::vector<pi_token> * out);

}  // namespace pi
