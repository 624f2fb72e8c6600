/*
 * powerinfer.h - the one public header of libpowerinfer.
 *
 * Conventions (read these once, they hold for every function below):
 *  - Handles are opaque: pi_model (weights + vocabulary, read-only once loaded, shareable between
 *    contexts) and pi_context (KV cache, scratch buffers, thread pool; one thread at a time).
 *  - Every call that can fail returns a pi_status. PI_OK is 0, errors are negative. On failure
 *    pi_last_error() (thread-local) holds a message naming the cause, and for files the path.
 *  - Params structs are filled by their *_default_params() function, then changed by the caller and
 *    passed by pointer. Fields are only ever appended; struct_size lets the library tell versions.
 *  - The library never exits, never aborts on bad input and never prints to stdout. Diagnostics go
 *    to the log callback (default: stderr, filtered by pi_log_set_level).
 *  - Calls that fill a caller's buffer report the size they needed in *n_out; when the buffer is too
 *    small they return PI_ERR_BUFFER_TOO_SMALL and write nothing past the buffer.
 *  - Strings returned as const char * are owned by the handle they came from and live as long as it.
 *
 * This header is parsed by the Python binding (tools/gen_cdef.py): keep every declaration on
 * plain C lines, and put preprocessor lines on their own lines.
 */
#ifndef POWERINFER_H
#define POWERINFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define PI_API __declspec(dllexport)
#else
#define PI_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a declaration below changes in a way that breaks callers. */
#define PI_ABI_VERSION 1

typedef int32_t pi_token;
typedef int32_t pi_pos;

typedef struct pi_model pi_model;
typedef struct pi_context pi_context;

/* ---------------------------------------------------------------------------------------------
 * Status, errors, logging, build information
 * ------------------------------------------------------------------------------------------- */

typedef enum pi_status {
    PI_OK                    =   0,
    PI_ERR_INVALID_ARGUMENT  =  -1, /* a NULL handle, a bad size, an id out of range            */
    PI_ERR_IO                =  -2, /* the file cannot be opened, read, mapped or written        */
    PI_ERR_FORMAT            =  -3, /* malformed or truncated file contents                      */
    PI_ERR_UNSUPPORTED       =  -4, /* a valid file using something we do not implement          */
    PI_ERR_OUT_OF_MEMORY     =  -5,
    PI_ERR_CONTEXT_FULL      =  -6, /* the tokens do not fit in the context window               */
    PI_ERR_BUFFER_TOO_SMALL  =  -7, /* see *n_out for the size needed                            */
    PI_ERR_NOT_COMPILED      =  -8, /* a backend that this build does not contain                */
    PI_ERR_ABORTED           =  -9,
    PI_ERR_INTERNAL          = -10  /* a bug: please report it with the message                  */
} pi_status;

typedef enum pi_log_level {
    PI_LOG_DEBUG = 0,
    PI_LOG_INFO  = 1,
    PI_LOG_WARN  = 2,
    PI_LOG_ERROR = 3,
    PI_LOG_NONE  = 4
} pi_log_level;

/* text is one message without a trailing newline; it is only valid during the call. */
typedef void (*pi_log_callback)(int32_t level, const char * text, void * user_data);

/* Returns a static name for a status ("PI_ERR_FORMAT"). */
PI_API const char * pi_status_str(pi_status status);
/* The message of the last failure on this thread ("" if none). Valid until the next failing call. */
PI_API const char * pi_last_error(void);
/* NULL restores the default (stderr). Messages below the level set by pi_log_set_level are dropped. */
PI_API void pi_log_set(pi_log_callback callback, void * user_data);
PI_API void pi_log_set_level(int32_t level);

PI_API const char * pi_version(void);
PI_API int32_t pi_abi_version(void);
/* A JSON object: library version, backends built, SIMD paths built and supported by this CPU,
 * the path in use. Static storage. */
PI_API const char * pi_system_info(void);

/* Sizes and offsets of the public structs as this build sees them, for the binding's drift test:
 * returns the value for a name such as "pi_model_params" (sizeof) or "pi_model_params.n_threads"
 * (offsetof), or -1 for an unknown name. */
PI_API int64_t pi_struct_layout(const char * name);

/* ---------------------------------------------------------------------------------------------
 * Tensor types (ids are GGUF's)
 * ------------------------------------------------------------------------------------------- */

typedef enum pi_type {
    PI_TYPE_F32  = 0,
    PI_TYPE_F16  = 1,
    PI_TYPE_Q4_0 = 2,
    PI_TYPE_Q4_1 = 3,
    PI_TYPE_Q5_0 = 6,
    PI_TYPE_Q5_1 = 7,
    PI_TYPE_Q8_0 = 8,
    PI_TYPE_Q8_1 = 9,
    PI_TYPE_Q2_K = 10,
    PI_TYPE_Q3_K = 11,
    PI_TYPE_Q4_K = 12,
    PI_TYPE_Q5_K = 13,
    PI_TYPE_Q6_K = 14,
    PI_TYPE_Q8_K = 15,
    PI_TYPE_I8   = 24,
    PI_TYPE_I16  = 25,
    PI_TYPE_I32  = 26,
    PI_TYPE_I64  = 27,
    PI_TYPE_F64  = 28,
    PI_TYPE_BF16 = 30
} pi_type;

/* Static name of a type ("Q4_K"), or NULL for an id we do not know. */
PI_API const char * pi_type_name(int32_t type);
/* Elements per block and bytes per block; 0 for an unknown id. */
PI_API int64_t pi_type_block_size(int32_t type);
PI_API int64_t pi_type_block_bytes(int32_t type);

/* ---------------------------------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------------------------------- */

typedef enum pi_sparse_mode {
    PI_SPARSE_AUTO      = 0, /* predictor when the file has predictors, else dense */
    PI_SPARSE_DENSE     = 1, /* ignore predictors                                  */
    PI_SPARSE_PREDICTOR = 2, /* PowerInfer's behaviour                             */
    PI_SPARSE_ORACLE    = 3  /* dense gate, keep exactly the neurons that fire     */
} pi_sparse_mode;

/* Called during loading with progress in [0, 1]; return false to abort (PI_ERR_ABORTED). */
typedef bool (*pi_progress_callback)(float progress, void * user_data);

typedef struct pi_model_params {
    uint32_t             struct_size;      /* sizeof(pi_model_params), set by the defaults      */
    int32_t              n_threads;        /* threads used while loading; 0 = all cores         */
    int32_t              n_gpu_layers;     /* dense layers on the GPU; -1 = all (GPU builds)    */
    int32_t              sparse_mode;      /* pi_sparse_mode                                    */
    float                sparse_threshold; /* NaN = the file's value, or the env override       */
    uint64_t             vram_budget;      /* bytes; 0 = free VRAM minus a margin               */
    const char *         gpu_index_path;   /* PowerInfer .generated.gpuidx file, or NULL        */
    pi_progress_callback progress_callback;
    void *               progress_user_data;
    bool                 vocab_only;       /* read metadata and vocabulary, never the weights   */
    bool                 use_mmap;         /* map the file; false = read the weights into RAM   */
                                           /* (2 MB pages where the OS has them: faster decode) */
    bool                 use_mlock;
} pi_model_params;

PI_API pi_model_params pi_model_default_params(void);

/* Loads a GGUF (or PowerInfer PWRI) file. On success *out owns the model; free it with pi_model_free. */
PI_API pi_status pi_model_load(const char * path, const pi_model_params * params, pi_model ** out);
PI_API void      pi_model_free(pi_model * model);

/* ---- GPU split of the sparse FFN ----------------------------------------------------------------
 * The hot neurons' rows of ffn_up, ffn_gate and ffn_down_t go to a device within capacity bytes
 * (0: no limit beyond the device's memory), and each sparse layer's FFN then computes its active hot
 * rows there and its cold rows on the CPU, adding the two down projections. Devices: "cpu-standin"
 * (a CPU stand-in with buffers of its own and explicit copies, so that the split runs and is tested
 * on machines without a GPU) and "cuda" / "cuda:N" (CUDA builds). hot_ids holds, layer after
 * layer, the ascending ids of each layer's hot neurons, n_hot[layer] of them (n_layer entries).
 * A NULL device, or every n_hot zero, removes the split; a new call replaces the old one; on
 * failure the model keeps no split. Only sparse layers in PowerInfer's layout (ffn_down_t) split.
 * Call while no context of this model is evaluating. */
PI_API pi_status    pi_model_offload_ffn(pi_model * model, const char * device, uint64_t capacity,
                                         const int32_t * hot_ids, const int64_t * n_hot);
/* The split's device name (NULL: none), the device bytes it uses, and per layer the number of hot
 * neurons and their bytes. */
PI_API const char * pi_model_offload_device(const pi_model * model);
PI_API uint64_t     pi_model_offload_bytes(const pi_model * model);
PI_API pi_status    pi_model_offload_layer(const pi_model * model, int32_t layer, int64_t * n_hot, uint64_t * bytes);

/* File facts. */
PI_API uint32_t     pi_model_gguf_version(const pi_model * model);
PI_API bool         pi_model_is_sparse_file(const pi_model * model); /* magic was PWRI */
PI_API uint64_t     pi_model_alignment(const pi_model * model);
PI_API uint64_t     pi_model_data_offset(const pi_model * model);    /* file offset of tensor data */

/* Metadata: every key of the file, in file order, each value rendered as a string
 * (numbers in decimal, booleans "true"/"false", arrays as a JSON-style list). */
PI_API int32_t      pi_model_meta_count(const pi_model * model);
PI_API const char * pi_model_meta_key(const pi_model * model, int32_t i);
PI_API const char * pi_model_meta_value(const pi_model * model, int32_t i);
/* GGUF value type of key i (0..12), and for arrays the element type and length. */
PI_API int32_t      pi_model_meta_type(const pi_model * model, int32_t i);
PI_API int32_t      pi_model_meta_array_type(const pi_model * model, int32_t i);
PI_API uint64_t     pi_model_meta_array_length(const pi_model * model, int32_t i);
/* Index of a key, or -1. */
PI_API int32_t      pi_model_meta_find(const pi_model * model, const char * key);

typedef struct pi_tensor_info {
    const char * name;
    int32_t      type;       /* pi_type */
    int32_t      n_dims;
    int64_t      ne[4];      /* ne[0] is the contiguous dimension; unused dims are 1 */
    uint64_t     offset;     /* from the start of the data section, as stored in the file */
    uint64_t     n_bytes;
} pi_tensor_info;

PI_API int32_t   pi_model_tensor_count(const pi_model * model);
PI_API pi_status pi_model_tensor_info(const pi_model * model, int32_t i, pi_tensor_info * out);

/* Hyper-parameters (0 for a vocab-only model where the file does not say). */
PI_API const char * pi_model_arch(const pi_model * model);
PI_API int32_t  pi_model_n_vocab(const pi_model * model);
PI_API int32_t  pi_model_n_ctx_train(const pi_model * model);
PI_API int32_t  pi_model_n_embd(const pi_model * model);
PI_API int32_t  pi_model_n_layer(const pi_model * model);
PI_API int32_t  pi_model_n_head(const pi_model * model);
PI_API int32_t  pi_model_n_head_kv(const pi_model * model);
PI_API int32_t  pi_model_n_ff(const pi_model * model);
PI_API uint64_t pi_model_n_params(const pi_model * model);
PI_API uint64_t pi_model_size_bytes(const pi_model * model);
/* The sparse FFN as loaded: the mode (never PI_SPARSE_AUTO; PI_SPARSE_DENSE for a vocab-only
 * model), the predictor threshold, and whether layer il's FFN runs the sparse path (ReLU). */
PI_API int32_t  pi_model_sparse_mode(const pi_model * model);
PI_API float    pi_model_sparse_threshold(const pi_model * model);
PI_API bool     pi_model_layer_is_sparse(const pi_model * model, int32_t il);

/* ---------------------------------------------------------------------------------------------
 * Vocabulary
 * ------------------------------------------------------------------------------------------- */

typedef enum pi_token_attr {
    PI_TOKEN_ATTR_UNDEFINED    = 0,
    PI_TOKEN_ATTR_UNKNOWN      = 1 << 0,
    PI_TOKEN_ATTR_UNUSED       = 1 << 1,
    PI_TOKEN_ATTR_NORMAL       = 1 << 2,
    PI_TOKEN_ATTR_CONTROL      = 1 << 3,
    PI_TOKEN_ATTR_USER_DEFINED = 1 << 4,
    PI_TOKEN_ATTR_BYTE         = 1 << 5,
    PI_TOKEN_ATTR_NORMALIZED   = 1 << 6,
    PI_TOKEN_ATTR_LSTRIP       = 1 << 7,
    PI_TOKEN_ATTR_RSTRIP       = 1 << 8,
    PI_TOKEN_ATTR_SINGLE_WORD  = 1 << 9
} pi_token_attr;

/* text need not be NUL-terminated. add_special adds BOS/EOS as the vocabulary's flags say;
 * parse_special turns control and user-defined token texts into their ids. */
PI_API pi_status pi_tokenize(const pi_model * model, const char * text, int32_t text_len,
                             pi_token * tokens, int32_t n_tokens_max,
                             bool add_special, bool parse_special, int32_t * n_out);
/* The bytes of one token. Control tokens give "" unless special is true. */
PI_API pi_status pi_token_to_piece(const pi_model * model, pi_token token, char * buf, int32_t buf_size,
                                   bool special, int32_t * n_out);
/* The bytes of a token sequence (no NUL is written). remove_special drops a leading BOS and a
 * trailing EOS; unparse_special renders control tokens as their text. */
PI_API pi_status pi_detokenize(const pi_model * model, const pi_token * tokens, int32_t n_tokens,
                               char * buf, int32_t buf_size, bool remove_special, bool unparse_special,
                               int32_t * n_out);

PI_API const char * pi_token_text(const pi_model * model, pi_token token);
PI_API float        pi_token_score(const pi_model * model, pi_token token);
PI_API int32_t      pi_token_attrs(const pi_model * model, pi_token token); /* pi_token_attr bits */
/* Special ids, -1 when the vocabulary has none. */
PI_API pi_token     pi_token_bos(const pi_model * model);
PI_API pi_token     pi_token_eos(const pi_model * model);
PI_API pi_token     pi_token_eot(const pi_model * model);
PI_API pi_token     pi_token_nl(const pi_model * model);
PI_API pi_token     pi_token_pad(const pi_model * model);
/* End of generation: EOS, EOT and the chat end tokens of this vocabulary. */
PI_API bool         pi_token_is_eog(const pi_model * model, pi_token token);
PI_API bool         pi_vocab_add_bos(const pi_model * model);
PI_API bool         pi_vocab_add_eos(const pi_model * model);
/* "spm", "bpe", "wpm" or "none". */
PI_API const char * pi_vocab_type(const pi_model * model);

/* ---------------------------------------------------------------------------------------------
 * Contexts: KV cache and decoding
 * ------------------------------------------------------------------------------------------- */

typedef struct pi_context_params {
    uint32_t struct_size;     /* sizeof(pi_context_params), set by the defaults  */
    uint32_t n_ctx;           /* context window in tokens; 0 = the model's own   */
    uint32_t n_batch;         /* most tokens one pi_decode call may take         */
    int32_t  n_threads;       /* threads for single-token decode; 0 = all cores  */
    int32_t  n_threads_batch; /* threads for prompt batches; 0 = all cores       */
    int32_t  kv_type;         /* PI_TYPE_F16 (default) or PI_TYPE_F32            */
    bool     logits_all;      /* keep logits of every position of each batch     */
    bool     embeddings;      /* keep the final hidden states                    */
} pi_context_params;

PI_API pi_context_params pi_context_default_params(void);

PI_API pi_status pi_context_new(pi_model * model, const pi_context_params * params, pi_context ** out);
PI_API void      pi_context_free(pi_context * ctx);
PI_API uint32_t  pi_context_n_ctx(const pi_context * ctx);
PI_API uint32_t  pi_context_n_batch(const pi_context * ctx);
PI_API pi_status pi_context_set_threads(pi_context * ctx, int32_t n_threads, int32_t n_threads_batch);

/* Evaluates n_tokens tokens at positions pos[i] (NULL = consecutive, starting at pi_kv_pos(ctx)).
 * want_logits[i] != 0 keeps the logits of position i (NULL = only the last, or all with logits_all).
 * Returns PI_ERR_CONTEXT_FULL, with nothing changed, if a position is >= n_ctx, and
 * PI_ERR_INVALID_ARGUMENT for n_tokens > n_batch or a token id out of range. */
PI_API pi_status pi_decode(pi_context * ctx, const pi_token * tokens, const pi_pos * pos,
                           int32_t n_tokens, const int8_t * want_logits);
/* Logits (n_vocab floats) of the i-th kept output of the last pi_decode call, in order; i = -1 is
 * the last kept one. NULL if there is no such output. Valid until the next pi_decode. */
PI_API float *   pi_get_logits(pi_context * ctx, int32_t i);
PI_API int32_t   pi_n_outputs(const pi_context * ctx);
/* Final hidden state (n_embd floats, after the output norm) of the i-th kept output; needs
 * embeddings = true. */
PI_API float *   pi_get_embeddings(pi_context * ctx, int32_t i);

/* Number of positions held in the KV cache. */
PI_API pi_pos    pi_kv_pos(const pi_context * ctx);
/* Forgets every position >= pos (prefix reuse). pos > pi_kv_pos is an error. */
PI_API pi_status pi_kv_truncate(pi_context * ctx, pi_pos pos);

/* Saves and restores the KV cache and the last logits. */
PI_API size_t    pi_state_size(const pi_context * ctx);
PI_API pi_status pi_state_save(const pi_context * ctx, uint8_t * dst, size_t dst_size, size_t * n_out);
PI_API pi_status pi_state_load(pi_context * ctx, const uint8_t * src, size_t src_size);

typedef struct pi_timings {
    double  t_load_ms;
    double  t_prompt_ms;  /* time in batches of more than one token */
    double  t_decode_ms;  /* time in single-token batches           */
    int32_t n_prompt_tokens;
    int32_t n_decode_tokens;
} pi_timings;

PI_API pi_status pi_context_timings(const pi_context * ctx, pi_timings * out);
PI_API void      pi_context_reset_timings(pi_context * ctx);

/* Sparse FFN statistics of a context (ReLU models: layers whose FFN runs the sparse path), summed
 * over the tokens evaluated since the last reset. A neuron "fires" for a token when its hidden
 * value h is not 0. Per layer:
 *   predicted density = n_computed / (n_tokens * n_ff)   actual density = n_true / (n_tokens * n_ff)
 *   recall = n_fired / n_true                           precision = n_fired / n_computed
 * n_true is known in dense and oracle modes, for layers without predictors, and in predictor mode
 * when measure_truth is on (the gate and up projections are then also computed densely, which
 * costs what a dense FFN costs); else it is -1. */
typedef struct pi_sparse_layer_stats {
    int64_t n_tokens;    /* tokens whose FFN ran in this layer's sparse path                  */
    int64_t n_ff;        /* neurons in the layer                                              */
    int64_t n_computed;  /* summed over those tokens: neurons computed (predicted active)     */
    int64_t n_fired;     /* ... computed neurons that fired                                   */
    int64_t n_true;      /* ... neurons that fired among all n_ff; -1 when not measured       */
} pi_sparse_layer_stats;

/* Time of the forward passes since the last reset, by stage (every model). */
typedef struct pi_stage_times {
    double t_attention_ms;  /* norms, Q/K/V/O projections, RoPE, attention          */
    double t_predictor_ms;  /* fc1, fc2 and the active-set gathers                   */
    double t_ffn_ms;        /* the rest of the FFN (dense or sparse)                 */
    double t_other_ms;      /* embeddings, RoPE tables, output head                  */
} pi_stage_times;

/* Sets what the statistics measure and resets them. count_neurons keeps, per layer, how often each
 * neuron fired (all neurons when n_true is known, else among the computed ones). */
PI_API pi_status pi_context_sparse_stats_config(pi_context * ctx, bool measure_truth, bool count_neurons);
PI_API pi_status pi_context_sparse_stats(const pi_context * ctx, int32_t layer, pi_sparse_layer_stats * out);
/* counts[i] (n_ff of them) = how many tokens neuron i of layer fired for; needs count_neurons. */
PI_API pi_status pi_context_neuron_counts(const pi_context * ctx, int32_t layer, int64_t * counts, int64_t n_ff);
PI_API pi_status pi_context_stage_times(const pi_context * ctx, pi_stage_times * out);
PI_API void      pi_context_reset_sparse_stats(pi_context * ctx);

/* Records the training data of activity predictors (powerinfer_py.tools.train_predictor): from this
 * call on, for each token the context evaluates, up to capacity tokens, every sparse layer's
 * predictor input (n_embd floats: the residual before the FFN norm; the layer input for falcon) is
 * copied to x[token][layer][0..n_embd) and whether each of its neurons fired (h != 0) to
 * fired[token][layer][0..n_ff) as 0/1 bytes. While recording, every neuron is computed (the FFN
 * runs densely) so that `fired` is exact in every mode. Other layers' slots are left untouched.
 * x == NULL or fired == NULL stops recording. */
PI_API pi_status pi_context_record_ffn(pi_context * ctx, float * x, uint8_t * fired, int64_t capacity);
/* Tokens recorded since the last pi_context_record_ffn. */
PI_API int64_t   pi_context_n_recorded(const pi_context * ctx);

/* ---------------------------------------------------------------------------------------------
 * Low-level kernels, exposed for tests and tools
 * ------------------------------------------------------------------------------------------- */

typedef enum pi_isa {
    PI_ISA_AUTO   = 0, /* the best path this CPU supports */
    PI_ISA_SCALAR = 1,
    PI_ISA_AVX2   = 2,
    PI_ISA_AVX512 = 3,
    PI_ISA_NEON   = 4
} pi_isa;

/* Chooses the SIMD path for this process (the environment variable POWERINFER_ISA=scalar|avx2|
 * avx512 sets it at start). PI_ERR_UNSUPPORTED if the CPU or the build lacks it. */
PI_API pi_status pi_cpu_set_isa(int32_t isa);
PI_API int32_t   pi_cpu_get_isa(void);

/* n must be a multiple of the type's block size. */
PI_API pi_status pi_dequantize_row(int32_t type, const void * src, float * dst, int64_t n);
PI_API pi_status pi_quantize_row(int32_t type, const float * src, void * dst, int64_t n);
/* y[r] = dot(row r of W, x) for the n_rows rows of W (each n_cols elements of type). The activation
 * x is quantized inside as the fast path would (so results match the engine, not exact f32). */
PI_API pi_status pi_matvec(int32_t type, const void * W, int64_t n_rows, int64_t n_cols,
                           const float * x, float * y);
/* y[k] = dot(row rows[k] of W, x) for k < n_ids, every rows[k] in [0, n_rows): the row-subset path
 * of the sparse FFN, with x quantized as in pi_matvec. */
PI_API pi_status pi_matvec_rows(int32_t type, const void * W, int64_t n_rows, int64_t n_cols,
                                const float * x, const int32_t * rows, int64_t n_ids, float * y);
/* Y[b * n_rows + r] = dot(row r of W, row b of X) for the n_b activations X (n_b x n_cols floats):
 * the batched path of prompt processing, each activation quantized as in pi_matvec. */
PI_API pi_status pi_matmul(int32_t type, const void * W, int64_t n_rows, int64_t n_cols,
                           const float * X, int64_t n_b, float * Y);

/* out[b * n_cols + c] = sum over r < n_rows of P[b * n_rows + r] * V[r][c] for b < n_b: attention's
 * value product, V being n_rows rows of n_cols F16 or F32 values (one per cached position). The
 * terms are added in order of r, one fma each, so every ISA gives the same bits. */
PI_API pi_status pi_weighted_rows(int32_t type, const void * V, int64_t n_rows, int64_t n_cols,
                                  const float * P, int64_t n_b, float * out);

/* Writes a copy of the GGUF file at src_path to dst_path with every 2-D weight quantized to type
 * (token embeddings and 1-D tensors as llama.cpp's quantizer treats them), keeping every metadata
 * key and the PWRI magic. */
typedef struct pi_quantize_params {
    uint32_t struct_size;
    int32_t  type;       /* the target pi_type                       */
    int32_t  n_threads;  /* 0 = all cores                            */
    bool     quantize_output; /* also quantize output.weight         */
    /* Called on the calling thread as tensors are converted, with the fraction done in [0, 1];
     * return false to stop (PI_ERR_ABORTED, nothing written). NULL: no reports. */
    pi_progress_callback progress_callback;
    void *               progress_user_data;
} pi_quantize_params;

PI_API pi_quantize_params pi_quantize_default_params(void);
PI_API pi_status pi_model_quantize(const char * src_path, const char * dst_path, const pi_quantize_params * params);

/* ---------------------------------------------------------------------------------------------
 * Sampling
 *
 * A pi_sampler turns one row of logits into a token. The chain, in order: logit bias, the
 * caller's mask of allowed tokens (grammars), repetition penalties over the last penalty_last_n
 * accepted tokens, then greedy (temperature == 0), a plain draw (temperature < 0), mirostat 1 or 2
 * (after temperature; replaces the truncations), or top_k -> typical_p -> top_p -> min_p ->
 * temperature -> draw. The logits passed in are never modified. One thread at a time.
 * ------------------------------------------------------------------------------------------- */

typedef struct pi_sampler pi_sampler;

typedef struct pi_sampler_params {
    uint32_t struct_size;       /* sizeof(pi_sampler_params), set by the defaults           */
    float    temperature;       /* 0 = greedy (argmax), < 0 = draw without truncation        */
    int32_t  top_k;             /* <= 0 = off                                                */
    float    top_p;             /* >= 1 = off                                                */
    float    min_p;             /* <= 0 = off                                                */
    float    typical_p;         /* >= 1 = off                                                */
    int32_t  penalty_last_n;    /* accepted tokens the penalties look at; 0 = off, -1 = all  */
    float    repeat_penalty;    /* 1 = off; divides positive logits, multiplies negative ones */
    float    frequency_penalty; /* subtracted once per occurrence                            */
    float    presence_penalty;  /* subtracted once if the token occurred                     */
    int32_t  mirostat;          /* 0 = off, 1 or 2                                           */
    float    mirostat_tau;      /* target surprise in bits                                   */
    float    mirostat_eta;      /* learning rate                                             */
    uint32_t seed;              /* the random stream; same seed and inputs, same tokens      */
} pi_sampler_params;

PI_API pi_sampler_params pi_sampler_default_params(void);
PI_API pi_status pi_sampler_new(int32_t n_vocab, const pi_sampler_params * params, pi_sampler ** out);
PI_API void      pi_sampler_free(pi_sampler * sampler);
/* Replaces the additive bias table (n pairs; n = 0 clears it). */
PI_API pi_status pi_sampler_set_logit_bias(pi_sampler * sampler, const pi_token * tokens, const float * bias, int32_t n);
/* Records a token in the penalty history (prompt tokens too, as the caller sees fit). */
PI_API pi_status pi_sampler_accept(pi_sampler * sampler, pi_token token);
/* Clears the penalty history and mirostat's state; the random stream goes on. */
PI_API void      pi_sampler_reset(pi_sampler * sampler);
/* logits: n_vocab floats. allowed: NULL, or n_vocab bytes where 0 forbids the token. */
PI_API pi_status pi_sampler_sample(pi_sampler * sampler, const float * logits, const uint8_t * allowed, pi_token * out);

/* ---------------------------------------------------------------------------------------------
 * Sparse FFN operators, exposed for tests, benchmarks and tools
 *
 * The FFN of one token computed only for a set of active neurons, as with PowerInfer's files:
 * ffn_up / ffn_gate / ffn_down_t each hold one row of n_embd values per neuron (n_ff rows, all of
 * one pi_type), ffn_down_t being the transposed down projection. For the active list `active`
 * (n_active neuron ids in [0, n_ff), any order) the hidden values are h[k] = act(gate_k, up_k)
 * with up_k = dot(up row active[k], x), and the output is
 *     y = sum over k with h[k] != 0 of h[k] * (row active[k] of ffn_down_t).
 * The list is a sequence, not a set: a repeated id adds its row once per occurrence; the order
 * changes only the order of float sums. The threads split y's columns (each y[c] is summed in list
 * order on one thread), so results do not depend on n_threads. n_threads: 0 = all cores; a pool
 * of threads is started for the call.
 * ------------------------------------------------------------------------------------------- */

typedef enum pi_ffn_act {
    PI_FFN_RELU_GATE_UP = 0, /* h = ReLU(gate) * up        (llama: ReluLLaMA, ProSparse) */
    PI_FFN_RELU_BOTH    = 1, /* h = ReLU(gate) * ReLU(up)  (bamboo)                      */
    PI_FFN_RELU_UP      = 2  /* h = ReLU(up), no gate      (falcon, opt)                 */
} pi_ffn_act;

/* Active ids from n values: ascending i with values[i] >= threshold (strict = false: predictor
 * scores, PowerInfer's rule) or values[i] > threshold (strict = true: the oracle on the gate
 * pre-activation, threshold 0). ids holds n; *n_ids receives the count. */
PI_API pi_status pi_sparse_gather(const float * values, int64_t n, float threshold, bool strict,
                                  int32_t * ids, int64_t * n_ids);
/* y[0..n_embd) = sum over k < n_active with h[k] != 0 of h[k] * row active[k] of down_t
 * (n_ff rows of n_embd values of type; h compact: h[k] belongs to active[k]). y is overwritten;
 * n_active = 0 gives zeros. Every type pi_dequantize_row reads; n_embd a multiple of its block.
 * The kernel pi_sparse_down_kernel names does the sum: the float kernels round as float sums do;
 * "avx512-vnni-int8" (Q4_0, Q8_0) rounds h[k] * (block scale) to int8 per block of 4 rows. */
PI_API pi_status pi_sparse_down(int32_t type, const void * down_t, int64_t n_ff, int64_t n_embd,
                                const int32_t * active, const float * h, int64_t n_active,
                                float * y, int32_t n_threads);
/* The name of the down-projection kernel for type under the SIMD path in use ("scalar",
 * "avx2-float", "avx512-float", "avx512-vnni-int8"), or NULL when type has none. */
PI_API const char * pi_sparse_down_kernel(int32_t type);
/* The hidden values alone: h[k] = act(gate_k, up_k) for k < n_active (h: n_active floats), the
 * first half of pi_sparse_ffn, on the same threads' split of the list. */
PI_API pi_status pi_sparse_hidden(int32_t act, int32_t type, const void * up, const void * gate,
                                  int64_t n_ff, int64_t n_embd, const float * x,
                                  const int32_t * active, int64_t n_active, float * h,
                                  int32_t n_threads);
/* The whole sparse FFN of one token x (n_embd floats): h as above for act (gate NULL for
 * PI_FFN_RELU_UP), then y = the sparse down projection. x is quantized for up and gate as in
 * pi_matvec_rows. h: NULL, or n_active floats that receive the hidden values. */
PI_API pi_status pi_sparse_ffn(int32_t act, int32_t type, const void * up, const void * gate,
                               const void * down_t, int64_t n_ff, int64_t n_embd, const float * x,
                               const int32_t * active, int64_t n_active, float * h, float * y,
                               int32_t n_threads);

#ifdef __cplusplus
}
#endif

#endif /* POWERINFER_H */
