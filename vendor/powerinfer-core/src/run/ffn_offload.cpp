// ffn_offload.cpp - the GPU split of the sparse FFN (ffn_offload.h): building the device's compact
// matrices, and the hybrid step of each token.
#include "run/ffn_offload.h"

#include "core/status.h"
#include "core/types.h"
#include "cpu/kernels.h"
#include "run/context.h"
#include "run/ffn_parts.h"
#include "run/linear.h"
#include "sparse/sparse_ffn.h"

#include <cstring>
#include <vector>

namespace pi {

using namespace ffn_parts;

uint64_t ffn_offload::bytes() const {
    uint64_t b = 0;
    for (const ffn_offload_layer & l : layers) b += l.bytes;
    return b;
}

ffn_offload::~ffn_offload() {
    for (ffn_offload_layer & l : layers) {
        if (!dev) break;
        dev->release(const_cast<void *>(l.rows.up));
        dev->release(const_cast<void *>(l.rows.gate));
        dev->release(const_cast<void *>(l.rows.down_t));
        dev->release(const_cast<float *>(l.rows.up_bias));
        dev->release(const_cast<void *>(l.pred.fc1));
        dev->release(const_cast<void *>(l.pred.fc2));
    }
}

namespace {

// The rows ids[0..n) of w gathered on the host, then one upload. nullptr when n = 0.
void * upload_rows(device & dev, const llm_weight & w, const int32_t * ids, int64_t n, uint64_t * bytes,
                   pi_status * st) {
    *st = PI_OK;
    if (n == 0 || !w.data) return nullptr;
    const size_t rb = (size_t)type_row_bytes(w.type, w.n_cols);
    std::vector<uint8_t> staging(rb * (size_t)n);
    for (int64_t k = 0; k < n; k++) std::memcpy(staging.data() + rb * (size_t)k, w.data + (size_t)ids[k] * w.row_bytes, rb);
    void * p = dev.alloc(staging.size());
    if (!p) {
        *st = PI_ERR_OUT_OF_MEMORY;
        return nullptr;
    }
    *bytes += dev.footprint(staging.size());
    *st = dev.upload(p, staging.data(), staging.size());
    return p;
}

// A whole matrix, one upload.
const void * upload_matrix(device & dev, const llm_weight & w, uint64_t * bytes, pi_status * st) {
    const size_t size = w.row_bytes * (size_t)w.n_rows;
    void * p = dev.alloc(size);
    if (!p) {
        *st = PI_ERR_OUT_OF_MEMORY;
        return nullptr;
    }
    *bytes += dev.footprint(size);
    *st = dev.upload(p, w.data, size);
    return p;
}

// A prompt's cold rows: the hidden values of every token's cold neurons (cold[cold_off[t] ..
// cold_off[t + 1]) for token t) through the union of the tokens' cold sets, each row of up and
// gate read once for all tokens (matmul_rows), as ffn_sparse.cpp's union path does. The batched
// products give each token the bits its own row products give it, so h is what the one-token
// path computes.
void cold_hidden_union(pi_context * ctx, const llm_layer & L, int64_t n_tok, int nth, const float * xin0,
                       const std::vector<int32_t> & cold, const std::vector<int64_t> & cold_off, std::vector<float> & h) {
    const llm_model & m  = *ctx->llm;
    forward_buffers & b  = ctx->buf;
    const int64_t     E  = m.hp.n_embd, FF = m.hp.n_ff;
    int32_t *         U  = b.sp_ids.data();
    uint8_t *         in = b.sp_union.data();
    std::memset(in, 0, (size_t)FF);
    for (int32_t id : cold) in[id] = 1;
    thread_local std::vector<int32_t> where;  // neuron id -> its column in the union
    where.resize((size_t)FF);
    int64_t nU = 0;
    for (int64_t i = 0; i < FF; i++) {
        if (!in[i]) continue;
        where[(size_t)i] = (int32_t)nU;
        U[nU++] = (int32_t)i;
    }
    if (nU == 0) return;
    act_set acts;
    const llm_weight * gu_w[2] = {&L.w_up, &L.w_gate};
    act_set_init(&acts, b.act_mem.data(), b.act_row_max, ctx->n_batch, E, gu_w, gated(m) ? 2 : 1);
    each_token(*ctx->pool, nth, n_tok, [&](int64_t t) { act_prepare_row(&acts, t, xin0 + t * E); });
    float * u = b.up.data();    // [n_tok][nU]
    float * g = b.gate.data();  // [n_tok][nU] (gated models)
    ctx->pool->parallel_for(nth, nU, [&](int, int64_t k0, int64_t k1) {
        size_t s_up = 0, s_gate = 0;
        const uint8_t * a_up = act_for(acts, L.w_up, &s_up);
        matmul_rows(L.w_up.type, L.w_up.data, L.w_up.row_bytes, a_up, s_up, n_tok, E, U, k0, k1, u, nU);
        if (gated(m)) {
            const uint8_t * a_gate = act_for(acts, L.w_gate, &s_gate);
            matmul_rows(L.w_gate.type, L.w_gate.data, L.w_gate.row_bytes, a_gate, s_gate, n_tok, E, U, k0, k1, g, nU);
        }
    });
    for (int64_t t = 0; t < n_tok; t++) {
        for (int64_t k = cold_off[(size_t)t]; k < cold_off[(size_t)t + 1]; k++) {
            const int32_t id = cold[(size_t)k];
            const int64_t j  = t * nU + where[(size_t)id];
            h[(size_t)k] = hidden_act(m.ffn_act, gated(m) ? g[j] : 0.0f, u[j], bias_of(L, id));
        }
    }
}

}  // namespace

pi_status ffn_offload_build(const llm_model & m, const char * dev_name, uint64_t capacity, const int32_t * hot_ids,
                            const int64_t * n_hot, std::unique_ptr<ffn_offload> * out) {
    out->reset();
    std::unique_ptr<ffn_offload> off(new ffn_offload());
    PI_TRY(device_create(dev_name, capacity, &off->dev));
    off->capacity = capacity;
    const int64_t FF = m.hp.n_ff;
    off->layers.resize(m.layers.size());
    const int32_t * ids = hot_ids;
    for (size_t il = 0; il < m.layers.size(); il++) {
        const int64_t n = n_hot ? n_hot[il] : 0;
        const llm_layer & L = m.layers[il];
        ffn_offload_layer & ol = off->layers[il];
        if (n < 0 || n > FF) return fail(PI_ERR_INVALID_ARGUMENT, "layer %zu: %lld hot neurons (n_ff = %lld)", il, (long long)n, (long long)FF);
        if (n == 0) continue;
        if (!m.ffn_is_sparse(L)) {
            return fail(PI_ERR_UNSUPPORTED, "layer %zu: a dense SwiGLU FFN has no hot neurons to offload (only ReLU / "
                        "sparse layers split; n_gpu_layers is for dense layers)", il);
        }
        if (!L.w_down_t.data) {
            return fail(PI_ERR_UNSUPPORTED, "layer %zu stores ffn_down, not ffn_down_t: a neuron's down projection is a "
                        "column there, not a row; export the model in PowerInfer's layout (powerinfer-py export)", il);
        }
        for (const llm_weight * wt : {&L.w_up, &L.w_gate, &L.w_down_t, &L.fc1, &L.fc2}) {  // rows and predictor
            if (wt->data && !off->dev->supports(wt->type)) {
                return fail(PI_ERR_UNSUPPORTED, "layer %zu: %s has type %s, which device %s does not compute", il,
                            wt->name ? wt->name : "a weight", type_get(wt->type).name, off->dev->name());
            }
        }
        for (int64_t k = 0; k < n; k++) {
            if (ids[k] < 0 || ids[k] >= FF || (k > 0 && ids[k] <= ids[k - 1])) {
                return fail(PI_ERR_INVALID_ARGUMENT, "layer %zu: hot neuron ids must be ascending, distinct and below "
                            "n_ff = %lld (entry %lld is %d)", il, (long long)FF, (long long)k, (int)ids[k]);
            }
        }
        ol.hot_ids.assign(ids, ids + n);
        ol.hot_index.assign((size_t)FF, -1);
        for (int64_t k = 0; k < n; k++) ol.hot_index[(size_t)ids[k]] = (int32_t)k;
        device_ffn_rows & r = ol.rows;
        r.n_rows    = n;
        r.n_embd    = m.hp.n_embd;
        r.act       = m.ffn_act == LLM_FFN_RELU_BOTH ? FFN_RELU_BOTH : m.ffn_act == LLM_FFN_RELU_UP ? FFN_RELU_UP
                                                                                                 : FFN_RELU_GATE_UP;
        r.up_type   = L.w_up.type;
        r.gate_type = L.w_gate.type;
        r.down_type = L.w_down_t.type;
        pi_status st;
        r.up = upload_rows(*off->dev, L.w_up, ids, n, &ol.bytes, &st);
        if (st == PI_OK && gated(m)) r.gate = upload_rows(*off->dev, L.w_gate, ids, n, &ol.bytes, &st);
        if (st == PI_OK) r.down_t = upload_rows(*off->dev, L.w_down_t, ids, n, &ol.bytes, &st);
        if (st == PI_OK && L.ffn_up_b) {
            std::vector<float> b((size_t)n);
            for (int64_t k = 0; k < n; k++) b[(size_t)k] = L.ffn_up_b[ids[k]];
            void * p = off->dev->alloc(sizeof(float) * (size_t)n);
            if (!p) st = PI_ERR_OUT_OF_MEMORY;
            else {
                ol.bytes += off->dev->footprint(sizeof(float) * (size_t)n);
                st = off->dev->upload(p, b.data(), sizeof(float) * (size_t)n);
                r.up_bias = static_cast<const float *>(p);
            }
        }
        if (st == PI_OK && L.fc1.data) {
            device_predictor & pr = ol.pred;
            pr.n_embd   = m.hp.n_embd;
            pr.hidden   = L.fc1.n_rows;
            pr.n_ff     = FF;
            pr.fc1_type = L.fc1.type;
            pr.fc2_type = L.fc2.type;
            pr.fc1      = upload_matrix(*off->dev, L.fc1, &ol.bytes, &st);
            if (st == PI_OK) pr.fc2 = upload_matrix(*off->dev, L.fc2, &ol.bytes, &st);
        }
        if (st != PI_OK) {
            // The device said why (its budget); say which layer it was.
            return fail(st, "offloading layer %zu's %lld hot neurons to %s: %s", il, (long long)n, off->dev->name(),
                        pi_last_error());
        }
        ids += n;
    }
    *out = std::move(off);
    return PI_OK;
}

double ffn_offload_run(pi_context * ctx, const llm_layer & L, int il, int32_t n_tok, int nth) {
    const llm_model &   m    = *ctx->llm;
    const int64_t       E    = m.hp.n_embd, FF = m.hp.n_ff;
    forward_buffers &   b    = ctx->buf;
    thread_pool &       pool = *ctx->pool;
    sparse_stats &      st   = ctx->stats;
    ffn_offload &       off  = *const_cast<ffn_offload *>(m.offload);
    const ffn_offload_layer & ol = off.layers[(size_t)il];
    const token_acts a = carve(b);
    const bool predictor = uses_predictor(m, L);
    const bool oracle    = m.sparse_mode == PI_SPARSE_ORACLE;

    double t_pred = 0.0;
    float * S = b.sp_scores.data();
    if (predictor) {  // on the device when it holds this layer's predictor, else on the CPU
        stage_clock clock;
        bool done = false;
        if (ol.pred.fc1) {
            std::lock_guard<std::mutex> lock(off.busy);
            done = true;
            for (int64_t t = 0; t < n_tok && done; t++) {
                done = off.dev->predict(ol.pred, b.x.data() + t * E, S + t * FF) == PI_OK;
            }
            if (!done) PI_LOG_E("%s: the predictor of layer %d failed (%s); it ran on the CPU", off.dev->name(), il, pi_last_error());
        }
        if (!done) predictor_scores(ctx, L, n_tok, nth, S);
        t_pred = clock.lap();
    }

    sparse_ffn_weights w;
    w.act       = (ffn_act)ol.rows.act;
    w.n_embd    = E;
    w.up_type   = L.w_up.type;
    w.up        = L.w_up.data;
    w.up_bias   = L.ffn_up_b;
    if (gated(m)) {
        w.gate_type = L.w_gate.type;
        w.gate      = L.w_gate.data;
    }
    // 1. Every token's active list, ascending (predicted, firing for the oracle, or every neuron),
    //    split into cold ids (CPU) and compact hot rows (device). Lists are concatenated, token t's
    //    at [*_off[t], *_off[t + 1]); each entry keeps its position in the token's active list so
    //    that h can be put back in list order for the statistics.
    thread_local std::vector<int32_t> act, cold, cold_pos, hot, hot_pos;
    thread_local std::vector<int64_t> act_off, cold_off, hot_off;
    thread_local std::vector<float>   h_cold, h_hot, h_all, y_cold, y_hot;
    act.clear(); cold.clear(); cold_pos.clear(); hot.clear(); hot_pos.clear();
    act_off.assign(1, 0); cold_off.assign(1, 0); hot_off.assign(1, 0);
    const float * xin0 = nullptr;
    for (int64_t t = 0; t < n_tok; t++) {
        const float * xin = ffn_input(ctx, L, t);  // rows of one [n_tok][n_embd] buffer
        if (t == 0) xin0 = xin;
        const int32_t * ids = b.sp_ids.data();
        int64_t         n   = 0;
        if (predictor) {
            n = gather_ge(S + t * FF, FF, m.sparse_threshold, b.sp_ids.data());
        } else if (oracle) {
            float * s = b.gate.data();
            if (gated(m)) {
                act_prepare(L.w_gate.type, xin, E, a.gate);
                matvec_all(pool, nth, L.w_gate, a.gate, s);
            } else {
                act_prepare(L.w_up.type, xin, E, a.up);
                matvec_all(pool, nth, L.w_up, a.up, s);
                for (int64_t i = 0; i < FF; i++) s[i] += bias_of(L, i);
            }
            n = gather_gt(s, FF, 0.0f, b.sp_ids.data());
        } else {
            ids = b.sp_all.data();
            n   = FF;
        }
        act.insert(act.end(), ids, ids + n);
        act_off.push_back((int64_t)act.size());
        for (int64_t k = 0; k < n; k++) {
            const int32_t j = ol.hot_index[(size_t)ids[k]];
            if (j >= 0) {
                hot.push_back(j);
                hot_pos.push_back((int32_t)k);
            } else {
                cold.push_back(ids[k]);
                cold_pos.push_back((int32_t)k);
            }
        }
        hot_off.push_back((int64_t)hot.size());
        cold_off.push_back((int64_t)cold.size());
    }
    h_cold.resize(cold.size() + 1); h_hot.resize(hot.size() + 1); h_all.resize((size_t)FF);
    y_cold.resize((size_t)(n_tok * E)); y_hot.resize((size_t)(n_tok * E));

    // 2-4. The device takes every token's hot rows at once; the CPU does the cold ones meanwhile,
    //      token by token; then the device's results.
    {
        std::lock_guard<std::mutex> lock(off.busy);
        pi_status ds = off.dev->ffn_rows_begin(ol.rows, xin0, n_tok, hot.data(), hot_off.data());
        if (n_tok == 1) {
            act_prepare(L.w_up.type, xin0, E, a.up);
            if (gated(m)) act_prepare(L.w_gate.type, xin0, E, a.gate);
            sparse_ffn_hidden(&pool, nth, w, a.up, a.gate, cold.data(), (int64_t)cold.size(), h_cold.data(), b.sp_g.data());
        } else {
            cold_hidden_union(ctx, L, n_tok, nth, xin0, cold, cold_off, h_cold);
        }
        for (int64_t t = 0; t < n_tok; t++) {
            const int64_t c0 = cold_off[(size_t)t], nc = cold_off[(size_t)t + 1] - c0;
            sparse_down(&pool, nth, L.w_down_t.type, L.w_down_t.data, E, cold.data() + c0, h_cold.data() + c0, nc,
                        y_cold.data() + t * E);
        }
        const pi_status de = off.dev->ffn_rows_end(h_hot.data(), y_hot.data());
        if (ds == PI_OK) ds = de;
        if (ds != PI_OK) {
            // A device that fails mid-run (a driver error) must not leave a wrong answer: the hot
            // rows are done on the CPU from the model's own weights, and the failure is logged
            // (the decode cannot return it from here).
            PI_LOG_E("%s failed on layer %d (%s); its hot rows ran on the CPU", off.dev->name(), il, pi_last_error());
            std::vector<int32_t> ids(hot.size());
            for (size_t k = 0; k < hot.size(); k++) ids[k] = ol.hot_ids[(size_t)hot[k]];
            for (int64_t t = 0; t < n_tok; t++) {
                const int64_t h0 = hot_off[(size_t)t], nh = hot_off[(size_t)t + 1] - h0;
                act_prepare(L.w_up.type, xin0 + t * E, E, a.up);
                if (gated(m)) act_prepare(L.w_gate.type, xin0 + t * E, E, a.gate);
                sparse_ffn_hidden(&pool, nth, w, a.up, a.gate, ids.data() + h0, nh, h_hot.data() + h0, b.sp_g.data());
                sparse_down(&pool, nth, L.w_down_t.type, L.w_down_t.data, E, ids.data() + h0, h_hot.data() + h0, nh,
                            y_hot.data() + t * E);
            }
        }
    }

    // 5. Per token: statistics, as on the CPU path (before x changes: recording keeps the
    //    predictor's input), then x += y_cold + y_hot.
    for (int64_t t = 0; t < n_tok; t++) {
        const int64_t a0 = act_off[(size_t)t], n = act_off[(size_t)t + 1] - a0;
        for (int64_t k = cold_off[(size_t)t]; k < cold_off[(size_t)t + 1]; k++) h_all[(size_t)cold_pos[(size_t)k]] = h_cold[(size_t)k];
        for (int64_t k = hot_off[(size_t)t]; k < hot_off[(size_t)t + 1]; k++) h_all[(size_t)hot_pos[(size_t)k]] = h_hot[(size_t)k];
        const int64_t fired = count_nonzero(h_all.data(), n);
        int64_t truth = predictor ? -1 : fired;
        if (st.recording() || (truth < 0 && st.measure_truth)) {  // every neuron, densely, on the CPU
            const float * xin = xin0 + t * E;
            act_prepare(L.w_up.type, xin, E, a.up);
            if (gated(m)) act_prepare(L.w_gate.type, xin, E, a.gate);
            float * g = b.gate.data(), * u = b.up.data();
            if (gated(m)) matvec_all(pool, nth, L.w_gate, a.gate, g);
            matvec_all(pool, nth, L.w_up, a.up, u);
            for (int64_t i = 0; i < FF; i++) g[i] = hidden_act(m.ffn_act, gated(m) ? g[i] : 0.0f, u[i], bias_of(L, i));
            truth = count_nonzero(g, FF);
            st.count_row(il, g);
            st.record(il, t, b.x.data() + t * E, g);
        } else {
            st.count_list(il, act.data() + a0, h_all.data(), n);
        }
        st.add(il, n, fired, truth);

        float * x = b.x.data() + t * E;
        const float * yc = y_cold.data() + t * E, * yh = y_hot.data() + t * E;
        for (int64_t c = 0; c < E; c++) x[c] += yc[c] + yh[c];
    }
    return t_pred;
}

}  // namespace pi
