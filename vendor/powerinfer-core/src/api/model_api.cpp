// model_api.cpp - the public model calls: load and free, file facts, metadata, tensor table.
#include "core/status.h"
#include "core/types.h"
#include "model/model.h"
#include "powerinfer.h"

#include <cmath>
#include <cstring>
#include <new>
#include <sys/stat.h>

namespace {

bool model_ok(const pi_model * m) { return m != nullptr; }

pi_status load_model(const char * path, const pi_model_params & params, pi_model ** out) {
    if (!path || !*path) return pi::fail(PI_ERR_INVALID_ARGUMENT, "model path is empty");
    struct stat st;
    if (::stat(path, &st) != 0) return pi::fail(PI_ERR_IO, "%s: no such file", path);
    if (S_ISDIR(st.st_mode)) return pi::fail(PI_ERR_IO, "%s: is a directory, not a model file", path);

    std::unique_ptr<pi_model> model(new pi_model());
    model->params = params;

    pi::gguf_open_options opts;
    opts.use_mmap  = params.use_mmap;
    opts.load_data = !params.vocab_only;
    PI_TRY(pi::gguf_file::open(path, opts, &model->file));
    const pi::gguf_file & file = *model->file;
    file.get_str("general.architecture", &model->arch);

    model->meta_values.reserve(file.kvs.size());
    for (size_t i = 0; i < file.kvs.size(); i++) model->meta_values.push_back(file.value_string(i));

    if (params.progress_callback && !params.progress_callback(0.0f, params.progress_user_data)) {
        return pi::fail(PI_ERR_ABORTED, "%s: loading aborted by the progress callback", path);
    }

    pi::vocab * vocab = nullptr;
    PI_TRY(pi::vocab_load(file, &vocab));
    model->vocab.reset(vocab);

    if (!params.vocab_only) {
        pi::llm_model * llm = nullptr;
        PI_TRY(pi::llm_load(file, params, &llm));
        model->llm.reset(llm);
    }
    if (params.progress_callback && !params.progress_callback(1.0f, params.progress_user_data)) {
        return pi::fail(PI_ERR_ABORTED, "%s: loading aborted by the progress callback", path);
    }
    *out = model.release();
    return PI_OK;
}

}  // namespace

extern "C" {

pi_model_params pi_model_default_params(void) {
    pi_model_params p;
    std::memset(&p, 0, sizeof(p));
    p.struct_size        = sizeof(pi_model_params);
    p.n_threads          = 0;
    p.n_gpu_layers       = 0;
    p.sparse_mode        = PI_SPARSE_AUTO;
    p.sparse_threshold   = NAN;
    p.vram_budget        = 0;
    p.gpu_index_path     = nullptr;
    p.progress_callback  = nullptr;
    p.progress_user_data = nullptr;
    p.vocab_only         = false;
    p.use_mmap           = true;
    p.use_mlock          = false;
    return p;
}

pi_status pi_model_load(const char * path, const pi_model_params * params, pi_model ** out) {
    if (!out) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_model_load: out is NULL");
    *out = nullptr;
    pi_model_params p = pi_model_default_params();
    if (params) {
        if (params->struct_size != sizeof(pi_model_params)) {
            return pi::fail(PI_ERR_INVALID_ARGUMENT,
                            "pi_model_load: params.struct_size is %u, this library expects %zu "
                            "(header and library differ)",
                            params->struct_size, sizeof(pi_model_params));
        }
        p = *params;
    }
    try {
        return load_model(path, p, out);
    } catch (const std::bad_alloc &) {
        return pi::fail(PI_ERR_OUT_OF_MEMORY, "%s: out of memory while loading", path ? path : "");
    } catch (const std::exception & e) {
        return pi::fail(PI_ERR_INTERNAL, "%s: %s", path ? path : "", e.what());
    }
}

void pi_model_free(pi_model * model) { delete model; }

uint32_t pi_model_gguf_version(const pi_model * m) { return model_ok(m) ? m->file->version : 0; }
bool     pi_model_is_sparse_file(const pi_model * m) { return model_ok(m) && m->file->sparse_magic; }
uint64_t pi_model_alignment(const pi_model * m) { return model_ok(m) ? m->file->alignment : 0; }
uint64_t pi_model_data_offset(const pi_model * m) { return model_ok(m) ? m->file->data_offset : 0; }

int32_t pi_model_meta_count(const pi_model * m) {
    return model_ok(m) ? static_cast<int32_t>(m->file->kvs.size()) : 0;
}

static const pi::gguf_kv * meta_at(const pi_model * m, int32_t i) {
    if (!model_ok(m) || i < 0 || static_cast<size_t>(i) >= m->file->kvs.size()) return nullptr;
    return &m->file->kvs[i];
}

const char * pi_model_meta_key(const pi_model * m, int32_t i) {
    const pi::gguf_kv * kv = meta_at(m, i);
    return kv ? kv->key.c_str() : nullptr;
}

const char * pi_model_meta_value(const pi_model * m, int32_t i) {
    return meta_at(m, i) ? m->meta_values[i].c_str() : nullptr;
}

int32_t pi_model_meta_type(const pi_model * m, int32_t i) {
    const pi::gguf_kv * kv = meta_at(m, i);
    return kv ? static_cast<int32_t>(kv->type) : -1;
}

int32_t pi_model_meta_array_type(const pi_model * m, int32_t i) {
    const pi::gguf_kv * kv = meta_at(m, i);
    return kv && kv->type == pi::GGUF_ARRAY ? static_cast<int32_t>(kv->arr_type) : -1;
}

uint64_t pi_model_meta_array_length(const pi_model * m, int32_t i) {
    const pi::gguf_kv * kv = meta_at(m, i);
    return kv && kv->type == pi::GGUF_ARRAY ? kv->arr_n : 0;
}

int32_t pi_model_meta_find(const pi_model * m, const char * key) {
    return model_ok(m) && key ? m->file->find_key(key) : -1;
}

int32_t pi_model_tensor_count(const pi_model * m) {
    return model_ok(m) ? static_cast<int32_t>(m->file->tensors.size()) : 0;
}

pi_status pi_model_tensor_info(const pi_model * m, int32_t i, pi_tensor_info * out) {
    if (!model_ok(m) || !out) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_model_tensor_info: NULL argument");
    if (i < 0 || static_cast<size_t>(i) >= m->file->tensors.size()) {
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_model_tensor_info: index %d out of range [0, %zu)", i,
                        m->file->tensors.size());
    }
    const pi::gguf_tensor & t = m->file->tensors[i];
    out->name   = t.name.c_str();
    out->type   = t.type;
    out->n_dims = t.n_dims;
    for (int d = 0; d < 4; d++) out->ne[d] = t.ne[d];
    out->offset  = t.offset;
    out->n_bytes = t.n_bytes;
    return PI_OK;
}

const char * pi_model_arch(const pi_model * m) { return model_ok(m) ? m->arch.c_str() : ""; }

}  // extern "C"
