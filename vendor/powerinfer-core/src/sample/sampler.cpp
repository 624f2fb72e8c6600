// sampler.cpp - turning one row of logits into the next token.
//
// The chain, in order (the order llama.cpp's samplers use, so settings carry over):
//   logit bias -> disallowed tokens (grammar mask) -> repetition penalties over the last n tokens
//   -> greedy (temperature 0) | plain draw (temperature < 0)
//      | top_k -> typical -> top_p -> min_p -> temperature -> draw
//      | temperature -> mirostat 1 or 2 (they replace the truncations) -> draw
// Everything runs on a private copy of the logits, so the caller's row stays intact (logprobs are
// read from it). The work is one O(n_vocab) pass (a heap of the top_k, or of the top 512 for top_p
// and mirostat 2, with a vectorized exp pass for their normalizer) plus sorts of short lists; only
// typical sampling sorts the whole vocabulary. Measured on SmolLM2's 49152 logits: about 20 us for
// greedy or the default chain, 0.3 ms for top_p without top_k.
#include "core/status.h"
#include "powerinfer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <new>
#include <random>
#include <vector>

// GCC will not if-convert the clamp in fast_exp_nonpos (and so not vectorize the row loop) while
// it must preserve floating-point traps; no-trapping-math changes no result.
#if defined(__GNUC__) && !defined(__clang__)
#define PI_VECTORIZE_FP __attribute__((optimize("no-trapping-math")))
#else
#define PI_VECTORIZE_FP
#endif

namespace {

struct candidate {
    pi_token id;
    float    logit;
    float    p;  // probability, valid after softmax()
};

bool by_logit_desc(const candidate & a, const candidate & b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// exp(x) for x <= 0, with 0 below -30: such terms are under 1e-13 each, far below float precision
// of a sum that contains exp(0) = 1, and skipping them keeps full-vocabulary passes cheap.
inline float exp_or_zero(float x) { return x < -30.0f ? 0.0f : std::exp(x); }

// Normalized probabilities over cands (max subtracted for stability).
void softmax(std::vector<candidate> & cands) {
    float mx = -std::numeric_limits<float>::infinity();
    for (const candidate & c : cands) mx = std::max(mx, c.logit);
    double sum = 0.0;
    for (candidate & c : cands) {
        c.p = exp_or_zero(c.logit - mx);
        sum += c.p;
    }
    const float inv = (float)(1.0 / sum);
    for (candidate & c : cands) c.p *= inv;
}

}  // namespace

struct pi_sampler {
    pi_sampler_params       p;
    int32_t                 n_vocab = 0;
    std::vector<float>      bias;     // [n_vocab], empty when no bias was set
    std::vector<pi_token>   bias_ids; // tokens with a non-zero bias
    std::deque<pi_token>    history;  // accepted tokens, the last penalty_last_n of them
    std::vector<int32_t>    counts;   // [n_vocab] scratch, all zero between calls
    std::vector<float>      work;     // [n_vocab] the adjusted logits
    std::vector<candidate>  cands;
    std::vector<float>      scratch;  // [n_vocab] exp values of a row
    std::mt19937            rng;
    float                   mu = 0.0f; // mirostat's running surprise target
};

namespace {

// A uniform double in [0, 1) from 53 random bits: the same on every platform for a given seed.
double uniform01(std::mt19937 & rng) {
    uint64_t a = rng() >> 5, b = rng() >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

// Draws one candidate by probability (softmax must have run). Returns its index in cands.
size_t draw(std::vector<candidate> & cands, std::mt19937 & rng) {
    double u = uniform01(rng), acc = 0.0, total = 0.0;
    for (const candidate & c : cands) total += c.p;
    u *= total;
    for (size_t i = 0; i < cands.size(); i++) {
        acc += cands[i].p;
        if (u < acc) return i;
    }
    return cands.size() - 1;  // rounding left u at the very top
}

bool penalties_on(const pi_sampler_params & p) {
    return p.penalty_last_n != 0 &&
           (p.repeat_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f);
}

void apply_penalties(pi_sampler * s) {
    if (!penalties_on(s->p) || s->history.empty()) return;
    for (pi_token t : s->history) s->counts[t]++;
    for (pi_token t : s->history) {
        int32_t c = s->counts[t];
        if (c == 0) continue;  // already handled (a repeated token)
        float & l = s->work[t];
        // Dividing a positive logit and multiplying a negative one both make the token less likely.
        if (l <= 0.0f) l *= s->p.repeat_penalty;
        else           l /= s->p.repeat_penalty;
        l -= (float)c * s->p.frequency_penalty + s->p.presence_penalty;
        s->counts[t] = 0;
    }
}

// The k largest of w[0..n) (ignoring -inf) into cands, in one pass with a min-heap of k entries:
// after the first few hundred tokens almost every logit fails the comparison with the heap's
// smallest, so this costs about one compare per token.
void top_k_from(const float * w, int32_t n, int32_t k, std::vector<candidate> & cands) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    cands.clear();
    auto worse = [](const candidate & a, const candidate & b) { return by_logit_desc(a, b); };  // min-heap
    int32_t i = 0;
    for (; i < n && (int32_t)cands.size() < k; i++)
        if (w[i] != neg_inf) cands.push_back({i, w[i], 0.0f});
    std::make_heap(cands.begin(), cands.end(), worse);
    float floor_logit = cands.empty() ? neg_inf : cands.front().logit;
    for (; i < n; i++) {
        if (w[i] > floor_logit) {
            std::pop_heap(cands.begin(), cands.end(), worse);
            cands.back() = {i, w[i], 0.0f};
            std::push_heap(cands.begin(), cands.end(), worse);
            floor_logit = cands.front().logit;
        }
    }
}

// Sorts cands by logit, descending.
void sort_desc(std::vector<candidate> & cands) { std::sort(cands.begin(), cands.end(), by_logit_desc); }

// Locally typical sampling: keep the tokens whose surprise is closest to the entropy, until their
// mass reaches typical_p.
void keep_typical(std::vector<candidate> & cands, float typical_p) {
    if (typical_p >= 1.0f || cands.size() <= 1) return;
    softmax(cands);
    double entropy = 0.0;
    for (const candidate & c : cands)
        if (c.p > 0.0f) entropy -= c.p * std::log((double)c.p);
    std::vector<std::pair<double, size_t>> order(cands.size());
    for (size_t i = 0; i < cands.size(); i++) {
        double surprise = cands[i].p > 0.0f ? -std::log((double)cands[i].p) : 1e30;
        order[i] = {std::fabs(surprise - entropy), i};
    }
    std::sort(order.begin(), order.end());
    double cum = 0.0;
    size_t keep = 0;
    while (keep < order.size()) {
        cum += cands[order[keep].second].p;
        keep++;
        if (cum >= typical_p) break;
    }
    std::vector<candidate> kept(keep);
    for (size_t i = 0; i < keep; i++) kept[i] = cands[order[i].second];
    cands.swap(kept);
}

// Nucleus: the smallest set of most likely tokens whose mass reaches top_p. Sorts only as much of
// the list as it needs (the mass is usually reached within the first few hundred tokens).
void keep_top_p(std::vector<candidate> & cands, float top_p) {
    if (top_p >= 1.0f || cands.size() <= 1) return;
    softmax(cands);
    size_t m = std::min<size_t>(cands.size(), 256);
    for (;;) {
        if (m < cands.size()) std::nth_element(cands.begin(), cands.begin() + m, cands.end(), by_logit_desc);
        std::sort(cands.begin(), cands.begin() + m, by_logit_desc);
        double cum = 0.0;
        for (size_t i = 0; i < m; i++) {
            cum += cands[i].p;
            if (cum >= top_p) {
                cands.resize(i + 1);
                return;
            }
        }
        if (m == cands.size()) return;
        m = std::min(cands.size(), m * 4);
    }
}

// Keeps tokens at least min_p times as likely as the most likely one.
void keep_min_p(std::vector<candidate> & cands, float min_p) {
    if (min_p <= 0.0f || cands.size() <= 1) return;
    float mx = -std::numeric_limits<float>::infinity();
    for (const candidate & c : cands) mx = std::max(mx, c.logit);
    const float floor_logit = mx + std::log(min_p);
    size_t w = 0;
    for (size_t i = 0; i < cands.size(); i++)
        if (cands[i].logit >= floor_logit) cands[w++] = cands[i];
    cands.resize(std::max<size_t>(w, 1));
}

// exp(x) for x <= 0 by 2^t = 2^i * 2^f (i = trunc(t), f in (-1, 0]) with a degree-7 Taylor
// polynomial for 2^f: relative error under 2e-6, and branch-free, so the loop over a whole
// vocabulary row vectorizes (a library expf call per token costs about 20x more).
PI_VECTORIZE_FP inline float fast_exp_nonpos(float x) {
    x = x > -80.0f ? x : -80.0f;
    const float t = x * 1.4426950409f;  // log2(e)
    const int32_t i = (int32_t)t;       // toward zero: f = t - i lies in (-1, 0]
    const float f = t - (float)i;
    float p = 1.525273e-5f;
    p = p * f + 1.540353e-4f;
    p = p * f + 1.333355e-3f;
    p = p * f + 9.618129e-3f;
    p = p * f + 5.550411e-2f;
    p = p * f + 2.402265e-1f;
    p = p * f + 6.931472e-1f;
    p = p * f + 1.0f;
    const uint32_t bits = (uint32_t)(i + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

// log of the softmax normalizer of a raw row (masked -inf tokens contribute nothing).
PI_VECTORIZE_FP double log_normalizer_row(const float * w, int32_t n, std::vector<float> & scratch) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int32_t i = 0; i < n; i++) mx = w[i] > mx ? w[i] : mx;  // (std::max would not inline here)
    scratch.resize(n);
    float * e = scratch.data();
    for (int32_t i = 0; i < n; i++) e[i] = fast_exp_nonpos(w[i] - mx);
    // Eight running sums (vector lanes) instead of one long dependency chain.
    float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) lanes[j] += e[i + j];
    double sum = 0.0;
    for (; i < n; i++) sum += e[i];
    for (int j = 0; j < 8; j++) sum += lanes[j];
    return (double)mx + std::log(sum);
}

// Candidates taken by a heap pass before a truncation that needs only the head of the list.
constexpr int32_t kHead = 512;

void draw_and_update_mu(pi_sampler * s, pi_token * out) {
    std::vector<candidate> & cands = s->cands;
    if (cands.size() <= 1024) sort_desc(cands);
    softmax(cands);
    size_t idx = draw(cands, s->rng);
    double surprise = -std::log2((double)cands[idx].p);
    s->mu -= s->p.mirostat_eta * (float)(surprise - s->p.mirostat_tau);
    *out = cands[idx].id;
}

// Mirostat 1: estimate the Zipf exponent from the top 100 probabilities, derive the k whose
// expected surprise is mu, keep the top k, draw, and move mu toward the target surprise tau.
pi_token sample_mirostat_v1(pi_sampler * s) {
    std::vector<candidate> & cands = s->cands;
    const size_t m = std::min<size_t>(100, cands.size());
    if (m < cands.size()) std::nth_element(cands.begin(), cands.begin() + m, cands.end(), by_logit_desc);
    std::sort(cands.begin(), cands.begin() + m, by_logit_desc);
    double sum_ti_bi = 0.0, sum_ti_sq = 0.0;
    for (size_t i = 0; i + 1 < m; i++) {
        double t_i = std::log((double)(i + 2) / (double)(i + 1));
        double b_i = (double)cands[i].logit - (double)cands[i + 1].logit;  // log(p_i / p_{i+1})
        sum_ti_bi += t_i * b_i;
        sum_ti_sq += t_i * t_i;
    }
    double s_hat = sum_ti_sq > 0.0 ? sum_ti_bi / sum_ti_sq : 1.0;
    double eps_hat = s_hat - 1.0;
    double k = (std::fabs(eps_hat) < 1e-9)
                   ? (double)s->n_vocab
                   : std::pow((eps_hat * std::pow(2.0, (double)s->mu)) / (1.0 - std::pow((double)s->n_vocab, -eps_hat)),
                              1.0 / s_hat);
    if (!(k >= 1.0)) k = 1.0;  // also catches NaN
    size_t keep = k < (double)cands.size() ? (size_t)k : cands.size();
    if (keep > m) std::nth_element(cands.begin() + m, cands.begin() + keep, cands.end(), by_logit_desc);
    cands.resize(keep);
    pi_token t;
    draw_and_update_mu(s, &t);
    return t;
}

}  // namespace

extern "C" {

pi_sampler_params pi_sampler_default_params(void) {
    pi_sampler_params p;
    std::memset(&p, 0, sizeof(p));
    p.struct_size       = sizeof(pi_sampler_params);
    p.temperature       = 0.8f;
    p.top_k             = 40;
    p.top_p             = 0.95f;
    p.min_p             = 0.05f;
    p.typical_p         = 1.0f;
    p.penalty_last_n    = 64;
    p.repeat_penalty    = 1.0f;
    p.frequency_penalty = 0.0f;
    p.presence_penalty  = 0.0f;
    p.mirostat          = 0;
    p.mirostat_tau      = 5.0f;
    p.mirostat_eta      = 0.1f;
    p.seed              = 0;
    return p;
}

pi_status pi_sampler_new(int32_t n_vocab, const pi_sampler_params * params, pi_sampler ** out) {
    if (!out) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_sampler_new: out is NULL");
    *out = nullptr;
    if (!params) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_sampler_new: params is NULL");
    if (n_vocab <= 0) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_sampler_new: n_vocab is %d", n_vocab);
    if (params->mirostat < 0 || params->mirostat > 2)
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_sampler_new: mirostat must be 0, 1 or 2 (got %d)", params->mirostat);
    if (params->repeat_penalty <= 0.0f)
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_sampler_new: repeat_penalty must be > 0 (got %g)",
                        (double)params->repeat_penalty);
    pi_sampler * s = new (std::nothrow) pi_sampler();
    if (!s) return pi::fail(PI_ERR_OUT_OF_MEMORY, "pi_sampler_new: out of memory");
    s->p = pi_sampler_default_params();
    // Copy only the fields the caller's version of the struct has.
    size_t n = std::min<size_t>(params->struct_size ? params->struct_size : sizeof(pi_sampler_params),
                                sizeof(pi_sampler_params));
    std::memcpy(&s->p, params, n);
    s->p.struct_size = sizeof(pi_sampler_params);
    s->n_vocab = n_vocab;
    try {
        s->counts.assign(n_vocab, 0);
        s->work.resize(n_vocab);
        s->cands.reserve(n_vocab);
    } catch (const std::bad_alloc &) {
        delete s;
        return pi::fail(PI_ERR_OUT_OF_MEMORY, "pi_sampler_new: out of memory for %d tokens", n_vocab);
    }
    s->rng.seed(s->p.seed);
    s->mu = 2.0f * s->p.mirostat_tau;
    *out = s;
    return PI_OK;
}

void pi_sampler_free(pi_sampler * s) { delete s; }

pi_status pi_sampler_set_logit_bias(pi_sampler * s, const pi_token * tokens, const float * bias, int32_t n) {
    if (!s || n < 0 || (n > 0 && (!tokens || !bias)))
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_sampler_set_logit_bias: bad arguments");
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->n_vocab)
            return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_sampler_set_logit_bias: token %d out of range [0, %d)",
                            tokens[i], s->n_vocab);
    s->bias.assign(n > 0 ? s->n_vocab : 0, 0.0f);
    s->bias_ids.clear();
    for (int32_t i = 0; i < n; i++) {
        if (s->bias[tokens[i]] == 0.0f) s->bias_ids.push_back(tokens[i]);
        s->bias[tokens[i]] += bias[i];
    }
    return PI_OK;
}

pi_status pi_sampler_accept(pi_sampler * s, pi_token token) {
    if (!s) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_sampler_accept: sampler is NULL");
    if (token < 0 || token >= s->n_vocab)
        return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_sampler_accept: token %d out of range [0, %d)", token, s->n_vocab);
    if (s->p.penalty_last_n == 0) return PI_OK;
    s->history.push_back(token);
    size_t cap = s->p.penalty_last_n < 0 ? (size_t)1 << 20 : (size_t)s->p.penalty_last_n;
    while (s->history.size() > cap) s->history.pop_front();
    return PI_OK;
}

void pi_sampler_reset(pi_sampler * s) {
    if (!s) return;
    s->history.clear();
    s->mu = 2.0f * s->p.mirostat_tau;
}

pi_status pi_sampler_sample(pi_sampler * s, const float * logits, const uint8_t * allowed, pi_token * out) {
    if (!s || !logits || !out) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_sampler_sample: NULL argument");
    const int32_t n = s->n_vocab;
    const float neg_inf = -std::numeric_limits<float>::infinity();
    float * w = s->work.data();
    std::memcpy(w, logits, sizeof(float) * (size_t)n);
    for (pi_token t : s->bias_ids) w[t] += s->bias[t];
    if (allowed) {
        bool any = false;
        for (int32_t i = 0; i < n; i++) {
            if (!allowed[i]) w[i] = neg_inf;
            else any = true;
        }
        if (!any) return pi::fail(PI_ERR_INVALID_ARGUMENT, "pi_sampler_sample: the mask allows no token");
    }
    apply_penalties(s);

    const pi_sampler_params & p = s->p;
    if (p.temperature == 0.0f) {  // greedy: argmax, lowest id on ties (a top-1 pass)
        top_k_from(w, n, 1, s->cands);
        *out = s->cands[0].id;
        return PI_OK;
    }

    std::vector<candidate> & cands = s->cands;
    const bool truncating = p.temperature > 0.0f && p.mirostat == 0;
    bool top_p_done = false;  // the head-of-list path below already applied top_p
    if (truncating && p.top_k > 0 && p.top_k < n) {
        top_k_from(w, n, p.top_k, cands);
    } else if (p.temperature > 0.0f && p.mirostat == 2) {
        // Mirostat 2 drops the tokens whose surprise -log2 p exceeds mu (in logit space: below
        // log_z - mu ln 2), keeps at least the most likely one, draws, and moves mu toward tau.
        // Two linear passes: the normalizer, then the tokens at or above the floor.
        if (p.temperature != 1.0f)
            for (int32_t i = 0; i < n; i++) w[i] /= p.temperature;
        const double log_z       = log_normalizer_row(w, n, s->scratch);
        const float  floor_logit = (float)(log_z - (double)s->mu * std::log(2.0));
        cands.clear();
        for (int32_t i = 0; i < n; i++)
            if (w[i] >= floor_logit && w[i] != neg_inf) cands.push_back({i, w[i], 0.0f});
        if (cands.empty()) top_k_from(w, n, 1, cands);
        draw_and_update_mu(s, out);
        return PI_OK;
    } else if (truncating && p.typical_p >= 1.0f && p.top_p < 1.0f && (top_p_done = true)) {
        // top_p without top_k: the nucleus of real logits lies within the top kHead; check the mass
        // against the full normalizer and use the full list only when it does not.
        const double log_z = log_normalizer_row(w, n, s->scratch);
        top_k_from(w, n, std::min<int32_t>(kHead, n), cands);
        sort_desc(cands);
        double cum = 0.0;
        size_t keep = 0;
        while (keep < cands.size() && cum < p.top_p) cum += std::exp((double)cands[keep++].logit - log_z);
        if (cum >= p.top_p || (int32_t)cands.size() == n) {
            cands.resize(std::max<size_t>(keep, 1));
        } else {
            top_p_done = false;
            cands.clear();
            for (int32_t i = 0; i < n; i++)
                if (w[i] != neg_inf) cands.push_back({i, w[i], 0.0f});
        }
    } else {
        cands.clear();
        for (int32_t i = 0; i < n; i++)
            if (w[i] != neg_inf) cands.push_back({i, w[i], 0.0f});
    }

    if (p.temperature < 0.0f) {  // a plain draw from the unmodified distribution
        softmax(cands);
        *out = cands[draw(cands, s->rng)].id;
        return PI_OK;
    }
    if (p.mirostat != 0) {
        for (candidate & c : cands) c.logit /= p.temperature;
        *out = sample_mirostat_v1(s);  // mirostat 2 took the head-of-list path above
        return PI_OK;
    }
    keep_typical(cands, p.typical_p);
    if (!top_p_done) keep_top_p(cands, p.top_p);
    keep_min_p(cands, p.min_p);
    // The draw walks the list in order; a short list is put in a fixed order (by logit) so that a
    // seed gives the same token whatever partial sorting happened before.
    if (cands.size() <= 1024) sort_desc(cands);
    for (candidate & c : cands) c.logit /= p.temperature;
    softmax(cands);
    *out = cands[draw(cands, s->rng)].id;
    return PI_OK;
}

}  // extern "C"
