// ffn_sparse.cpp - the FFN step of ReLU / sparse-layout llama-family models (see ffn_sparse.h).
//
// Three paths, one result. Whichever runs, token t's output is the sum over its active neurons i
// (predicted, or firing for the oracle) with h_i != 0 of h_i * down row i, each h_i computed by the
// same dot kernel on the same prepared activation, and the rows summed in ascending neuron order:
//   token   one token (decoding): its active rows only (sparse_ffn_hidden, sparse_down), or every
//           row and then the mask when the predictor marks so many that this costs less.
//   union   a batch: the rows of the union U of the tokens' active sets, each read once for all
//           tokens (matmul_rows), h zeroed where a neuron is not in the token's own set.
//   dense   a batch (or dense mode): every row (the batched products), h masked the same way.
// ffn_batch picks union or dense by a cost model (kGatherCost below).
#include "run/ffn_sparse.h"

#include "run/ffn_offload.h"
#include "run/ffn_parts.h"

#include "cpu/kernels.h"
#include "run/linear.h"
#include "run/norm.h"
#include "sparse/sparse_ffn.h"

#include <cstring>

namespace pi {
namespace {

// A row read through a list of ids costs about this much more than the same row read in the
// dense row order (scattered rows defeat the hardware prefetcher; measured with
// benchmarks/bench_sparse_ffn.py). The union path (and one token's active rows) runs when
// |U| * kGatherCost < n_ff.
constexpr double kGatherCost = 1.25;

}  // namespace

// The helpers shared with run/ffn_offload.cpp (declared in run/ffn_parts.h).
namespace ffn_parts {

const float * ffn_input(pi_context * ctx, const llm_layer & L, int64_t t) {
    forward_buffers &   b  = ctx->buf;
    const llm_hparams & hp = ctx->llm->hp;
    const int64_t       E  = hp.n_embd;
    if (ctx->llm->arch_kind == LLM_ARCH_FALCON) return b.xf.data() + t * E;
    rmsnorm(b.xn.data() + t * E, b.x.data() + t * E, L.ffn_norm, E, hp.rms_eps);
    return b.xn.data() + t * E;
}

void matvec_all(thread_pool & pool, int nth, const llm_weight & w, const void * xq, float * y) {
    pool.parallel_for_grain(nth, w.n_rows, kRowGrain, [&](int, int64_t r0, int64_t r1) {
        matvec(w.type, w.data, w.row_bytes, xq, w.n_cols, y + r0, r0, r1);
    });
}

int64_t count_nonzero(const float * h, int64_t n) {
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) c += h[i] != 0.0f;
    return c;
}

token_acts carve(forward_buffers & b) {
    uintptr_t p = reinterpret_cast<uintptr_t>(b.sp_act.data());
    p = (p + 63) & ~static_cast<uintptr_t>(63);
    uint8_t * base = reinterpret_cast<uint8_t *>(p);
    return {base, base + b.sp_act_row, base + 2 * b.sp_act_row, base + 3 * b.sp_act_row};
}

void down_compact(pi_context * ctx, int nth, const llm_layer & L, const token_acts & a, const int32_t * ids,
                  const float * h, int64_t n, float * y) {
    const llm_hparams & hp = ctx->llm->hp;
    forward_buffers &   b  = ctx->buf;
    if (L.w_down_t.data) {
        sparse_down(ctx->pool.get(), nth, L.w_down_t.type, L.w_down_t.data, hp.n_embd, ids, h, n, y);
        return;
    }
    // Dense-layout ffn_down ([n_ff] -> [n_embd], rows of n_ff): scatter h back to neuron order.
    float * hf = b.sp_hfull.data();
    std::memset(hf, 0, sizeof(float) * hp.n_ff);
    for (int64_t k = 0; k < n; k++) hf[ids[k]] = h[k];
    act_prepare(L.w_down.type, hf, hp.n_ff, a.down);
    matvec_all(*ctx->pool, nth, L.w_down, a.down, y);
}

void predictor_scores(pi_context * ctx, const llm_layer & L, int64_t n_tok, int nth, float * S) {
    forward_buffers & b    = ctx->buf;
    thread_pool &     pool = *ctx->pool;
    const int64_t     E = ctx->llm->hp.n_embd, H = L.fc1.n_rows, NB = ctx->n_batch;
    float *           P = b.sp_pred.data();  // [n_tok][H]
    act_set acts;
    const llm_weight * fc1_w[1] = {&L.fc1};
    act_set_init(&acts, b.act_mem.data(), b.act_row_max, NB, E, fc1_w, 1);
    each_token(pool, nth, n_tok, [&](int64_t t) { act_prepare_row(&acts, t, b.x.data() + t * E); });
    proj p1;
    p1.w = &L.fc1; p1.acts = &acts; p1.y = P; p1.ldy = H;
    project(pool, nth, &p1, 1, n_tok);
    const llm_weight * fc2_w[1] = {&L.fc2};
    act_set_init(&acts, b.act_mem.data(), b.act_row_max, NB, H, fc2_w, 1);
    each_token(pool, nth, n_tok, [&](int64_t t) {
        float * pt = P + t * H;
        for (int64_t j = 0; j < H; j++) pt[j] = relu(pt[j]);
        act_prepare_row(&acts, t, pt);
    });
    proj p2;
    p2.w = &L.fc2; p2.acts = &acts; p2.y = S; p2.ldy = L.fc2.n_rows;
    project(pool, nth, &p2, 1, n_tok);
}

}  // namespace ffn_parts

namespace {

using namespace ffn_parts;

// The FFN inputs of the n_tok tokens, prepared in acts for gate (if any) and up.
void ffn_inputs(pi_context * ctx, const llm_layer & L, int64_t n_tok, int nth, act_set & acts) {
    const llm_weight * gu_w[2] = {&L.w_up, &L.w_gate};
    act_set_init(&acts, ctx->buf.act_mem.data(), ctx->buf.act_row_max, ctx->n_batch, ctx->llm->hp.n_embd, gu_w,
                 gated(*ctx->llm) ? 2 : 1);
    each_token(*ctx->pool, nth, n_tok, [&](int64_t t) { act_prepare_row(&acts, t, ffn_input(ctx, L, t)); });
}

// x[t] += down(h[t]) for the n_tok rows of H ([n_tok][n_ff], neuron order; zeros contribute nothing).
void down_rows(pi_context * ctx, const llm_layer & L, int64_t n_tok, int nth, float * H) {
    forward_buffers & b  = ctx->buf;
    const int64_t E = ctx->llm->hp.n_embd, FF = ctx->llm->hp.n_ff;
    float * x = b.x.data();
    if (L.w_down.data) {
        act_set acts;
        const llm_weight * down_w[1] = {&L.w_down};
        act_set_init(&acts, b.act_mem.data(), b.act_row_max, ctx->n_batch, FF, down_w, 1);
        each_token(*ctx->pool, nth, n_tok, [&](int64_t t) { act_prepare_row(&acts, t, H + t * FF); });
        proj down;
        down.w = &L.w_down; down.acts = &acts; down.y = b.tmp.data(); down.ldy = E; down.residual = x;
        project(*ctx->pool, nth, &down, 1, n_tok);
        return;
    }
    // ffn_down_t: the sparse down kernel over all n_ff rows (rows with h = 0 are skipped).
    for (int64_t t = 0; t < n_tok; t++) {
        float * y = b.tmp.data() + t * E;
        sparse_down(ctx->pool.get(), nth, L.w_down_t.type, L.w_down_t.data, E, b.sp_all.data(), H + t * FF, FF, y);
        for (int64_t c = 0; c < E; c++) x[t * E + c] += y[c];
    }
}

// Predictor or oracle FFN of one token (decoding): x += y.
double ffn_token(pi_context * ctx, const llm_layer & L, int il, int nth) {
    const llm_model &   m  = *ctx->llm;
    const llm_hparams & hp = m.hp;
    forward_buffers &   b  = ctx->buf;
    thread_pool &       pool = *ctx->pool;
    sparse_stats &      st = ctx->stats;
    const int64_t E = hp.n_embd, FF = hp.n_ff;
    const token_acts a = carve(b);

    const float * xin = ffn_input(ctx, L, 0);
    act_prepare(L.w_up.type, xin, E, a.up);
    if (gated(m)) act_prepare(L.w_gate.type, xin, E, a.gate);

    int32_t *       ids = b.sp_ids.data();
    const int32_t * act_ids = ids;
    int64_t         n = 0;
    float *         s = b.sp_scores.data();
    double          t_pred = 0.0;
    if (uses_predictor(m, L)) {
        stage_clock clock;
        predictor_scores(ctx, L, 1, nth, s);
        n = gather_ge(s, FF, m.sparse_threshold, ids);
        t_pred = clock.lap();
    } else if (m.sparse_mode == PI_SPARSE_ORACLE) {  // the neurons whose ReLU fires
        if (gated(m)) {
            matvec_all(pool, nth, L.w_gate, a.gate, s);
        } else {
            matvec_all(pool, nth, L.w_up, a.up, s);
            for (int64_t i = 0; i < FF; i++) s[i] += bias_of(L, i);
        }
        n = gather_gt(s, FF, 0.0f, ids);
    } else {  // predictor mode on a layer without predictors: every neuron
        act_ids = b.sp_all.data();
        n       = FF;
    }

    sparse_ffn_weights w;
    w.act       = m.ffn_act == LLM_FFN_RELU_BOTH ? FFN_RELU_BOTH : m.ffn_act == LLM_FFN_RELU_UP ? FFN_RELU_UP
                                                                                              : FFN_RELU_GATE_UP;
    w.n_embd    = E;
    w.up_type   = L.w_up.type;
    w.up        = L.w_up.data;
    w.up_bias   = L.ffn_up_b;
    if (gated(m)) {
        w.gate_type = L.w_gate.type;
        w.gate      = L.w_gate.data;
    }
    float * h = b.sp_h.data();
    const int64_t computed = n;
    int64_t truth = -1;
    if (uses_predictor(m, L) && (double)n * kGatherCost >= (double)FF) {
        // So many neurons predicted that reading every row in order costs less: the dense
        // products, then the predictor's mask (the same bits per neuron: the same dot kernel).
        float * g = b.gate.data(), * u = b.up.data();
        if (gated(m)) matvec_all(pool, nth, L.w_gate, a.gate, g);
        matvec_all(pool, nth, L.w_up, a.up, u);
        truth = 0;
        for (int64_t i = 0; i < FF; i++) {
            const float hv = hidden_act(m.ffn_act, gated(m) ? g[i] : 0.0f, u[i], bias_of(L, i));
            truth += hv != 0.0f;
            h[i] = s[i] >= m.sparse_threshold ? hv : 0.0f;
            g[i] = hv;  // every neuron's h, for the neuron counts below
        }
        act_ids = b.sp_all.data();
        n       = FF;
    } else {
        sparse_ffn_hidden(&pool, nth, w, a.up, a.gate, act_ids, n, h, b.sp_g.data());
    }

    // Statistics: the oracle's and the full list's computed set holds every firing neuron.
    const int64_t fired = count_nonzero(h, n);
    if (!uses_predictor(m, L)) truth = fired;
    if (st.recording() || (truth < 0 && st.measure_truth)) {  // every neuron, densely
        float * g = b.gate.data(), * u = b.up.data();  // one token's dense gate and up
        if (gated(m)) matvec_all(pool, nth, L.w_gate, a.gate, g);
        matvec_all(pool, nth, L.w_up, a.up, u);
        for (int64_t i = 0; i < FF; i++) g[i] = hidden_act(m.ffn_act, gated(m) ? g[i] : 0.0f, u[i], bias_of(L, i));
        truth = count_nonzero(g, FF);
        st.count_row(il, g);
        st.record(il, 0, b.x.data(), g);
    } else if (act_ids == b.sp_all.data() && uses_predictor(m, L)) {
        st.count_row(il, b.gate.data());  // the dense branch above kept every neuron's h there
    } else {
        st.count_list(il, act_ids, h, n);
    }
    st.add(il, computed, fired, truth);

    float * y = b.tmp.data();
    down_compact(ctx, nth, L, a, act_ids, h, n, y);
    float * x = b.x.data();
    for (int64_t c = 0; c < E; c++) x[c] += y[c];
    return t_pred;
}

// A batch of n_tok > 1 tokens, or dense mode: see the top of the file.
double ffn_batch(pi_context * ctx, const llm_layer & L, int il, int32_t n_tok, int nth) {
    const llm_model &   m  = *ctx->llm;
    const llm_hparams & hp = m.hp;
    forward_buffers &   b  = ctx->buf;
    thread_pool &       pool = *ctx->pool;
    sparse_stats &      st = ctx->stats;
    const int64_t FF = hp.n_ff;
    float * g = b.gate.data();  // [n_tok][n_ff] gate, then h (dense); the union path packs it
    float * u = b.up.data();    // [n_tok][n_ff] up
    float * S = b.sp_scores.data();

    // Which neurons each token keeps: kept(t, i). The predictor runs first: it uses the act_set
    // slots that the FFN inputs take next.
    const bool predictor = uses_predictor(m, L);
    const bool oracle    = m.sparse_mode == PI_SPARSE_ORACLE;
    const float thr      = m.sparse_threshold;
    double t_pred = 0.0;
    if (predictor) {
        stage_clock clock;
        predictor_scores(ctx, L, n_tok, nth, S);
        t_pred = clock.lap();
    }
    act_set acts;
    ffn_inputs(ctx, L, n_tok, nth, acts);
    // The oracle selects by the sign of the gate (or of up + bias without a gate), computed densely.
    const bool has_gate = gated(m);
    proj gate, up;
    gate.w = &L.w_gate; gate.acts = &acts; gate.y = g; gate.ldy = FF;
    up.w = &L.w_up; up.acts = &acts; up.y = u; up.ldy = FF;
    if (oracle) project(pool, nth, has_gate ? &gate : &up, 1, n_tok);
    auto kept = [&](int64_t t, int64_t i) {
        if (predictor) return S[t * FF + i] >= thr;
        if (oracle) return has_gate ? g[t * FF + i] > 0.0f : u[t * FF + i] + bias_of(L, i) > 0.0f;
        return true;
    };

    // The union of the active sets, ascending.
    int32_t * U  = b.sp_ids.data();
    int64_t   nU = FF;
    if (predictor || oracle) {
        uint8_t * in = b.sp_union.data();
        std::memset(in, 0, (size_t)FF);
        for (int64_t t = 0; t < n_tok; t++)
            for (int64_t i = 0; i < FF; i++) in[i] |= kept(t, i);
        nU = 0;
        for (int64_t i = 0; i < FF; i++)
            if (in[i]) U[nU++] = (int32_t)i;
    }

    // (without a gate the oracle has computed up densely already: the dense path only adds ReLU)
    const bool union_pays = (predictor || (oracle && has_gate)) && (double)nU * kGatherCost < (double)FF;
    if (!st.measure_truth && !st.recording() && union_pays) {
        // Union path: up (and gate) on the rows of U, each read once for the batch; packed
        // [n_tok][nU] in u (and g when the predictor chose, else g keeps the oracle's dense gate).
        float * gu = predictor && has_gate ? g : nullptr;
        pool.parallel_for(nth, nU, [&](int, int64_t k0, int64_t k1) {
            size_t s_up = 0, s_gate = 0;
            const uint8_t * a_up = act_for(acts, L.w_up, &s_up);
            const uint8_t * a_gate = act_for(acts, L.w_gate, &s_gate);
            matmul_rows(L.w_up.type, L.w_up.data, L.w_up.row_bytes, a_up, s_up, n_tok, hp.n_embd, U, k0, k1, u, nU);
            if (gu) {
                matmul_rows(L.w_gate.type, L.w_gate.data, L.w_gate.row_bytes, a_gate, s_gate, n_tok, hp.n_embd, U,
                            k0, k1, gu, nU);
            }
        });
        // h[t][k] into u (packed), zero where token t does not keep neuron U[k].
        each_token(pool, nth, n_tok, [&](int64_t t) {
            float * ut = u + t * nU;
            int64_t computed = 0;
            for (int64_t k = 0; k < nU; k++) {
                const int64_t i = U[k];
                const bool keep = kept(t, i);
                computed += keep;
                const float gv = !has_gate ? 0.0f : predictor ? g[t * nU + k] : g[t * FF + i];
                ut[k] = keep ? hidden_act(m.ffn_act, gv, ut[k], bias_of(L, i)) : 0.0f;
            }
            b.sp_count[t] = computed;
        });
        for (int64_t t = 0; t < n_tok; t++) {
            const float * ht = u + t * nU;
            const int64_t fired = count_nonzero(ht, nU);
            st.add(il, b.sp_count[t], fired, predictor ? -1 : fired);
            st.count_list(il, U, ht, nU);
        }
        // Down: scattered back to neuron order, then as the dense path does (zeros cost little
        // there: the down_t kernel skips them, the dense ffn_down must read every row anyway).
        float * Hs = g;  // [n_tok][n_ff], free now
        each_token(pool, nth, n_tok, [&](int64_t t) {
            float * ht = Hs + t * FF;
            std::memset(ht, 0, sizeof(float) * FF);
            for (int64_t k = 0; k < nU; k++) ht[U[k]] = u[t * nU + k];
        });
        down_rows(ctx, L, n_tok, nth, Hs);
        return t_pred;
    }

    // Dense path: every row, h masked by each token's own set.
    if (!oracle) {
        proj gu[2] = {up, gate};
        project(pool, nth, gu, has_gate ? 2 : 1, n_tok);
    } else if (has_gate) {
        project(pool, nth, &up, 1, n_tok);  // the oracle computed the gate
    }
    const bool flags = st.count_neurons || st.recording();
    each_token(pool, nth, n_tok, [&](int64_t t) {
        float * gt = g + t * FF;
        float * ut = u + t * FF;
        int64_t computed = 0, truth = 0;
        for (int64_t i = 0; i < FF; i++) {
            const bool keep = kept(t, i);  // (reads the oracle's gate before it is overwritten)
            const float hv = hidden_act(m.ffn_act, has_gate ? gt[i] : 0.0f, ut[i], bias_of(L, i));
            computed += keep;
            truth += hv != 0.0f;
            gt[i] = keep ? hv : 0.0f;
            if (flags) ut[i] = hv != 0.0f ? 1.0f : 0.0f;  // up is spent: keep whether i fired
        }
        b.sp_count[t] = computed;
        b.sp_count[n_tok + t] = truth;
    });
    for (int64_t t = 0; t < n_tok; t++) {  // every neuron was computed: the truth is known
        st.add(il, b.sp_count[t], count_nonzero(g + t * FF, FF), b.sp_count[n_tok + t]);
        st.count_row(il, u + t * FF);
        st.record(il, t, b.x.data() + t * hp.n_embd, u + t * FF);
    }
    down_rows(ctx, L, n_tok, nth, g);
    return t_pred;
}

}  // namespace

double ffn_sparse(pi_context * ctx, const llm_layer & L, int il, int32_t n_tok, int nth) {
    if (ctx->llm->offload && ctx->llm->offload->layer_split(il)) return ffn_offload_run(ctx, L, il, n_tok, nth);
    if (n_tok == 1 && ctx->llm->sparse_mode != PI_SPARSE_DENSE) return ffn_token(ctx, L, il, nth);
    return ffn_batch(ctx, L, il, n_tok, nth);
}

}  // namespace pi
