// vocab_load.cpp - builds a pi::vocab from a GGUF file's tokenizer.ggml.* keys.
//
// Besides what the keys say directly, some facts are inferred from token texts the way llama.cpp
// infers them (the vocabulary files do not carry them): the end-of-turn and fill-in-the-middle
// tokens, the end-of-generation set, and that those tokens are control tokens even when the file
// marks them otherwise (which changes how text containing them is tokenized).
#include "core/status.h"
#include "model/model.h"
#include "vocab/unicode.h"
#include "vocab/vocab.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <new>

namespace pi {
namespace {

struct pre_name { const char * name; pre_kind kind; bool ignore_merges; bool add_bos; };

// tokenizer.ggml.pre values and the rule set each selects.
const pre_name k_pre_names[] = {
    {"default", PRE_DEFAULT, false, false},
    {"llama3", PRE_LLAMA3, true, true}, {"llama-v3", PRE_LLAMA3, true, true}, {"llama-bpe", PRE_LLAMA3, true, true},
    {"falcon3", PRE_LLAMA3, true, true}, {"falcon-h1", PRE_LLAMA3, true, true}, {"pixtral", PRE_LLAMA3, true, true},
    {"midm-2.0", PRE_LLAMA3, true, true}, {"lfm2", PRE_LLAMA3, true, true},
    {"dbrx", PRE_LLAMA3, false, false}, {"smaug-bpe", PRE_LLAMA3, false, false},
    {"chatglm-bpe", PRE_LLAMA3, false, false}, {"glm4", PRE_LLAMA3, true, false}, {"glm5", PRE_LLAMA3, true, false},
    {"deepseek-llm", PRE_DEEPSEEK_LLM, false, false},
    {"deepseek-coder", PRE_DEEPSEEK_CODER, false, false},
    {"falcon", PRE_FALCON, false, false},
    {"gpt-2", PRE_GPT2, false, false}, {"phi-2", PRE_GPT2, false, false}, {"mpt", PRE_GPT2, false, false},
    {"olmo", PRE_GPT2, false, false}, {"gpt-neox", PRE_GPT2, false, false}, {"jais", PRE_GPT2, false, false},
    {"jina-es", PRE_GPT2, false, false}, {"jina-de", PRE_GPT2, false, false}, {"jina-v2-es", PRE_GPT2, false, false},
    {"jina-v2-de", PRE_GPT2, false, false}, {"jina-v1-en", PRE_GPT2, false, false},
    {"jina-v2-code", PRE_GPT2, false, false}, {"roberta-bpe", PRE_GPT2, false, false},
    {"gigachat", PRE_GPT2, false, false}, {"mellum", PRE_GPT2, false, false}, {"exaone4", PRE_GPT2, false, false},
    {"trillion", PRE_GPT2, false, false}, {"granite-docling", PRE_GPT2, false, false},
    {"starcoder", PRE_STARCODER, false, false}, {"refact", PRE_STARCODER, false, false},
    {"command-r", PRE_STARCODER, false, false}, {"smollm", PRE_STARCODER, false, false},
    {"codeshell", PRE_STARCODER, false, false}, {"exaone", PRE_STARCODER, false, false},
    {"minerva-7b", PRE_STARCODER, false, false},
    {"qwen2", PRE_QWEN2, false, false}, {"deepseek-r1-qwen", PRE_QWEN2, false, false},
    {"stablelm2", PRE_QWEN2, false, false}, {"megrez", PRE_QWEN2, false, false}, {"hunyuan", PRE_QWEN2, false, false},
    {"qwen35", PRE_QWEN35, false, false},
    {"gemma4", PRE_GEMMA4, false, true},
    {"poro-chat", PRE_PORO, false, false}, {"bloom", PRE_PORO, false, false}, {"gpt3-finnish", PRE_PORO, false, false},
};

// Token texts that mark the end of a turn, in the order we prefer them for the EOT id.
const char * const k_eot_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
    "[EOT]", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "<end_of_utterance>",
};
// Token texts that end generation.
const char * const k_eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
    "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~[",
};
// Fill-in-the-middle token texts (prefix, suffix, middle, pad, repo, file separator).
const char * const k_fim_pre[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
                                  "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"};
const char * const k_fim_suf[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>",
                                  "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"};
const char * const k_fim_mid[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>",
                                  "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"};
const char * const k_fim_pad[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
const char * const k_fim_rep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
const char * const k_fim_sep[] = {"<|file_sep|>"};

template <size_t N>
pi_token first_present(const vocab & v, const char * const (&texts)[N]) {
    for (const char * t : texts) {
        int32_t id = v.by_text.find(t, std::char_traits<char>::length(t));
        if (id >= 0) return id;
    }
    return -1;
}

void read_id(const gguf_file & f, const char * key, const vocab & v, pi_token * id) {
    uint32_t x = 0;
    if (!f.get_u32(key, &x)) {
        int32_t s = 0;
        if (f.get_i32(key, &s) && s < 0) *id = -1;  // some files write -1 for "none"
        return;
    }
    if ((int64_t)x >= v.n_vocab()) {
        PI_LOG_W("%s: %s = %u is outside the vocabulary (%d tokens); ignored", f.path.c_str(), key, x, v.n_vocab());
        return;
    }
    *id = (pi_token)x;
}

int32_t attr_of_type(int32_t type) {
    switch (type) {
        case 1: return PI_TOKEN_ATTR_NORMAL;
        case 2: return PI_TOKEN_ATTR_UNKNOWN;
        case 3: return PI_TOKEN_ATTR_CONTROL;
        case 4: return PI_TOKEN_ATTR_USER_DEFINED;
        case 5: return PI_TOKEN_ATTR_UNUSED;
        case 6: return PI_TOKEN_ATTR_BYTE;
        default: return PI_TOKEN_ATTR_UNDEFINED;
    }
}

void make_control(vocab & v, pi_token id) {
    if (id >= 0 && !(v.attrs[id] & PI_TOKEN_ATTR_CONTROL)) {
        PI_LOG_D("vocab: token %d '%s' looks like a control token; treating it as one", id, v.texts[id].c_str());
        v.attrs[id] |= PI_TOKEN_ATTR_CONTROL;
    }
}

// The text-inferred special tokens and the end-of-generation set.
void infer_specials(vocab & v, const gguf_file & f) {
    if (v.eot < 0) { v.eot = first_present(v, k_eot_texts); make_control(v, v.eot); }
    if (v.eom < 0) { v.eom = v.by_text.find("<|eom_id|>"); make_control(v, v.eom); }
    pi_token fim[6] = {-1, -1, -1, -1, -1, -1};
    const char * keys[6] = {"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id",
                            "tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.fim_pad_token_id",
                            "tokenizer.ggml.fim_rep_token_id", "tokenizer.ggml.fim_sep_token_id"};
    for (int i = 0; i < 6; i++) read_id(f, keys[i], v, &fim[i]);
    if (fim[0] < 0) { fim[0] = first_present(v, k_fim_pre); make_control(v, fim[0]); }
    if (fim[1] < 0) { fim[1] = first_present(v, k_fim_suf); make_control(v, fim[1]); }
    if (fim[2] < 0) { fim[2] = first_present(v, k_fim_mid); make_control(v, fim[2]); }
    if (fim[3] < 0) { fim[3] = first_present(v, k_fim_pad); make_control(v, fim[3]); }
    if (fim[4] < 0) { fim[4] = first_present(v, k_fim_rep); make_control(v, fim[4]); }
    if (fim[5] < 0) { fim[5] = first_present(v, k_fim_sep); make_control(v, fim[5]); }

    std::vector<pi_token> eog;
    for (int i = 3; i < 6; i++) if (fim[i] >= 0) eog.push_back(fim[i]);
    for (const char * t : k_eog_texts) {
        int32_t id = v.by_text.find(t, std::char_traits<char>::length(t));
        if (id >= 0) { eog.push_back(id); make_control(v, id); }
    }
    // gpt-oss channel markers are always rendered.
    for (const char * t : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
        int32_t id = v.by_text.find(t, std::char_traits<char>::length(t));
        if (id >= 0) v.attrs[id] = PI_TOKEN_ATTR_USER_DEFINED;
    }
    for (pi_token id : {v.eos, v.eot, v.eom}) if (id >= 0) eog.push_back(id);
    std::sort(eog.begin(), eog.end());
    eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
    v.eog = eog;
}

// Attributes llama.cpp sets by model name (the files lack them).
void name_based_attrs(vocab & v, const gguf_file & f) {
    std::string name, arch;
    f.get_str("general.name", &name);
    f.get_str("general.architecture", &arch);
    for (char & c : name) c = (char)std::tolower((unsigned char)c);
    auto set = [&](const char * text, int32_t bit, bool on) {
        int32_t id = v.by_text.find(text, std::char_traits<char>::length(text));
        if (id < 0) return;
        v.attrs[id] = on ? (v.attrs[id] | bit) : (v.attrs[id] & ~bit);
    };
    auto has = [](const std::string & s, const char * sub) { return s.find(sub) != std::string::npos; };
    if (has(v.pre_name, "jina-v2-de") || has(v.pre_name, "jina-v2-es") || has(v.pre_name, "jina-v2-code") ||
        has(arch, "nomic-bert-moe") || has(arch, "jina-bert-v3")) {
        set("<mask>", PI_TOKEN_ATTR_LSTRIP, true);
    } else if (has(name, "phi-3") || has(name, "phi3")) {
        for (pi_token id : v.specials) v.attrs[id] |= PI_TOKEN_ATTR_RSTRIP;
        set("</s>", PI_TOKEN_ATTR_RSTRIP, true);
        for (const char * t : {"<unk>", "<s>", "<|endoftext|>"}) set(t, PI_TOKEN_ATTR_RSTRIP, false);
    }
}

void build_pieces(vocab & v) {
    v.pieces.resize(v.texts.size());
    for (size_t id = 0; id < v.texts.size(); id++) {
        const std::string & t = v.texts[id];
        int32_t a = v.attrs[id];
        std::string & p = v.pieces[id];
        if (a & (PI_TOKEN_ATTR_UNKNOWN | PI_TOKEN_ATTR_CONTROL | PI_TOKEN_ATTR_USER_DEFINED)) {
            p = t;
        } else if (a & PI_TOKEN_ATTR_NORMAL) {
            if (v.kind != VOCAB_BPE || v.escape_spaces) {
                for (size_t i = 0; i < t.size(); i++) {  // U+2581 back to a space
                    if (i + 2 < t.size() + 0 && (uint8_t)t[i] == 0xE2 && (uint8_t)t[i + 1] == 0x96 && (uint8_t)t[i + 2] == 0x81) {
                        p.push_back(' ');
                        i += 2;
                    } else {
                        p.push_back(t[i]);
                    }
                }
            } else {
                std::vector<uint32_t> cps;
                utf8_decode(t.data(), t.size(), &cps);
                for (uint32_t cp : cps) {
                    int b = bpe_char_to_byte(cp);
                    if (b >= 0) { p.push_back((char)b); continue; }
                    // Not a byte-level character: say so visibly, as llama.cpp does.
                    std::string u;
                    utf8_append(cp, &u);
                    p += "[UNK_BYTE_0x";
                    for (unsigned char c : u) p += strprintf("%02x", c);
                    p += t + "]";
                }
            }
        } else if ((a & PI_TOKEN_ATTR_BYTE) && (v.kind == VOCAB_SPM || !v.byte_encode) && t.size() >= 5) {
            p.push_back((char)std::strtol(t.substr(3, 2).c_str(), nullptr, 16));
        }
    }
}

pi_status load(const gguf_file & f, const std::string & model, vocab & v) {
    const char * path = f.path.c_str();
    v.model_name = model;
    if (model == "llama") {
        v.kind = VOCAB_SPM;
    } else if (model == "gpt2") {
        v.kind = VOCAB_BPE;
    } else if (model == "bert") {
        v.kind = VOCAB_WPM;
    } else if (model == "gemma4") {
        v.kind = VOCAB_BPE;  // SentencePiece-style BPE: raw UTF-8 tokens, spaces as U+2581
    } else {
        return fail(PI_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model = \"%s\" is not supported (supported: llama, gpt2, bert)",
                    path, model.c_str());
    }
    const std::vector<std::string> * toks = f.get_str_array("tokenizer.ggml.tokens");
    if (!toks || toks->empty()) return fail(PI_ERR_FORMAT, "%s: tokenizer.ggml.tokens is missing or empty", path);
    if (toks->size() > (size_t)INT32_MAX) return fail(PI_ERR_FORMAT, "%s: too many tokens", path);
    v.texts = *toks;
    const size_t n = v.texts.size();
    for (size_t i = 0; i < n; i++) {
        if (v.texts[i].empty()) v.texts[i] = "[EMPTY_" + std::to_string(i) + "]";
    }
    if (!f.get_f32_array("tokenizer.ggml.scores", &v.scores)) v.scores.assign(n, 0.0f);
    if (v.scores.size() != n) {
        return fail(PI_ERR_FORMAT, "%s: tokenizer.ggml.scores has %zu entries for %zu tokens", path, v.scores.size(), n);
    }
    std::vector<int32_t> types;
    if (f.get_i32_array("tokenizer.ggml.token_type", &types)) {
        if (types.size() != n) {
            return fail(PI_ERR_FORMAT, "%s: tokenizer.ggml.token_type has %zu entries for %zu tokens", path, types.size(), n);
        }
        v.attrs.resize(n);
        for (size_t i = 0; i < n; i++) v.attrs[i] = attr_of_type(types[i]);
    } else {
        v.attrs.assign(n, PI_TOKEN_ATTR_NORMAL);
    }
    v.by_text.build(v.texts);
    for (const std::string & t : v.texts) v.max_token_len = std::max(v.max_token_len, t.size());

    if (v.kind == VOCAB_SPM) {
        v.pre = PRE_NONE;
        v.spm_words_independent = true;
        for (const std::string & t : v.texts) {
            size_t i = 0;
            while (t.compare(i, 3, "\xe2\x96\x81") == 0) i += 3;
            if (t.find("\xe2\x96\x81", i) != std::string::npos) { v.spm_words_independent = false; break; }
        }
        v.bos = 1; v.eos = 2; v.unk = 0;
        v.add_bos = true; v.add_eos = false; v.add_space_prefix = true;
    } else if (v.kind == VOCAB_WPM) {
        v.pre = PRE_NONE;
        v.bos = 101; v.eos = -1; v.unk = 100; v.sep = 102; v.pad = 0; v.mask = 103;  // [CLS] [UNK] [SEP] [PAD] [MASK]
        v.add_bos = true; v.add_eos = false; v.add_space_prefix = false;
        if (!f.get_bool("tokenizer.ggml.normalizer.lowercase", &v.wpm_lowercase)) v.wpm_lowercase = true;
        v.wpm_strip_accents = v.wpm_lowercase;
        f.get_bool("tokenizer.ggml.normalizer.strip_accents", &v.wpm_strip_accents);
        f.get_str("tokenizer.ggml.pre", &v.pre_name);
    } else {
        v.bos = 11; v.eos = 11;
        v.add_bos = false; v.add_eos = false; v.add_space_prefix = false;
        if (model == "gemma4") {
            v.bos = v.eos = -1;
            v.pre_name = "gemma4";
        } else if (!f.get_str("tokenizer.ggml.pre", &v.pre_name) || v.pre_name.empty()) {
            PI_LOG_W("%s: no tokenizer.ggml.pre; using the default pre-tokenizer", path);
            v.pre_name = "default";
        }
        const pre_name * found = nullptr;
        for (const pre_name & p : k_pre_names) if (v.pre_name == p.name) found = &p;
        if (!found) {
            return fail(PI_ERR_UNSUPPORTED, "%s: unknown pre-tokenizer tokenizer.ggml.pre = \"%s\"", path, v.pre_name.c_str());
        }
        v.pre = found->kind;
        v.ignore_merges = found->ignore_merges;
        v.add_bos = found->add_bos;
        if (v.pre == PRE_GEMMA4) v.escape_spaces = true, v.byte_encode = false;

        const std::vector<std::string> * merges = f.get_str_array("tokenizer.ggml.merges");
        if (!merges) return fail(PI_ERR_FORMAT, "%s: a gpt2 tokenizer needs tokenizer.ggml.merges", path);
        v.merges.reserve(merges->size());
        for (size_t r = 0; r < merges->size(); r++) {
            const std::string & m = (*merges)[r];
            size_t sp = m.find(' ', 1);
            if (sp == std::string::npos) return fail(PI_ERR_FORMAT, "%s: merge %zu has no space: \"%s\"", path, r, m.c_str());
            int32_t a = v.by_text.find(m.data(), sp);
            int32_t b = v.by_text.find(m.data() + sp + 1, m.size() - sp - 1);
            if (a >= 0 && b >= 0) {
                std::string joined = m.substr(0, sp) + m.substr(sp + 1);
                v.merges.insert(a, b, {(int32_t)r, v.by_text.find(joined)});
            } else {
                v.merges_by_text.emplace(m, (int32_t)r);
            }
        }
    }
    read_id(f, "tokenizer.ggml.bos_token_id", v, &v.bos);
    read_id(f, "tokenizer.ggml.eos_token_id", v, &v.eos);
    read_id(f, "tokenizer.ggml.eot_token_id", v, &v.eot);
    read_id(f, "tokenizer.ggml.eom_token_id", v, &v.eom);
    read_id(f, "tokenizer.ggml.unknown_token_id", v, &v.unk);
    read_id(f, "tokenizer.ggml.seperator_token_id", v, &v.sep);
    read_id(f, "tokenizer.ggml.padding_token_id", v, &v.pad);
    read_id(f, "tokenizer.ggml.mask_token_id", v, &v.mask);
    for (pi_token * id : {&v.bos, &v.eos, &v.unk, &v.sep, &v.pad, &v.mask}) if (!v.valid(*id)) *id = -1;
    bool flag;
    if (f.get_bool("tokenizer.ggml.add_space_prefix", &flag)) v.add_space_prefix = flag;
    if (f.get_bool("tokenizer.ggml.add_bos_token", &flag)) v.add_bos = flag;
    if (v.pre == PRE_GEMMA4) v.add_bos = true;  // Gemma 4 always starts with BOS (as llama.cpp forces)
    if (f.get_bool("tokenizer.ggml.add_eos_token", &flag)) v.add_eos = flag;

    infer_specials(v, f);

    for (int32_t id = 0; id < (int32_t)n; id++) {
        if (v.attrs[id] & (PI_TOKEN_ATTR_CONTROL | PI_TOKEN_ATTR_USER_DEFINED | PI_TOKEN_ATTR_UNKNOWN)) v.specials.push_back(id);
    }
    std::stable_sort(v.specials.begin(), v.specials.end(),
                     [&](pi_token a, pi_token b) { return v.texts[a].size() > v.texts[b].size(); });
    name_based_attrs(v, f);
    build_pieces(v);
    if (v.kind == VOCAB_SPM) v.nl = v.byte_token('\n');
    else if (v.kind == VOCAB_BPE) v.nl = v.byte_encode ? v.by_text.find("\xc4\x8a", 2) : v.by_text.find("\n", 1);  // U+010A is '\n'
    if (v.nl < 0) v.nl = v.pad;
    PI_LOG_D("%s: vocabulary %s/%s, %zu tokens, %zu specials", path, model.c_str(), v.pre_name.c_str(), n, v.specials.size());
    return PI_OK;
}

}  // namespace

pi_status vocab_load(const gguf_file & file, vocab ** out) {
    *out = nullptr;
    std::string model;
    if (!file.get_str("tokenizer.ggml.model", &model) || model == "none" || model == "no_vocab") return PI_OK;
    vocab * v = new (std::nothrow) vocab();
    if (!v) return fail(PI_ERR_OUT_OF_MEMORY, "%s: out of memory for the vocabulary", file.path.c_str());
    pi_status st;
    try {
        st = load(file, model, *v);
    } catch (const std::bad_alloc &) {
        st = fail(PI_ERR_OUT_OF_MEMORY, "%s: out of memory while building the vocabulary", file.path.c_str());
    }
    if (st != PI_OK) { delete v; return st; }
    *out = v;
    return PI_OK;
}

void vocab_free(vocab * v) { delete v; }

}  // namespace pi
