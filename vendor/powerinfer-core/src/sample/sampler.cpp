// sampler.cpp - turning one row of logits into the next token.
//
// The chain, in order (the order llama.cpp's samplers use, so settings carry over):
//   logit bias -> disallowed tokens (grammar mask) -> repetition penalties over the last n tokens
//   -> greedy (temperature 0) | plain draw (temperature < 0)
//      | top_k -> typical -> top_p -> min_p -> temperature -> draw
//      | temperature -> mirostat 1 or 2 (they replace the truncations) -> draw
// Everything runs on a private copy of the logits, so the caller's row stays intact (logprobs are
// read from it). The work is a few O(n_vocab) passes: a heap of the top_k (or of mirostat 1's top
// 100, top_p's 128), a radix select for longer heads (a large top_k or mirostat 1's k), vectorized
// exps for normalizers and for mirostat 2, which needs no candidate list at all; then sorts of
// short lists. Only typical sampling sorts the whole vocabulary.
// benchmarks/bench_sampler.py measures each chain on SmolLM2's logits.
#include "core/status.h"
#include "cpu/exp_poly.h"
#include "powerinfer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <new>
#include <random>
#include <vector>

// The whole-row passes (exps, sums) are built three times on x86-64 Linux, for AVX-512, AVX2 and the
// baseline, and the loader picks one for this CPU (GCC/Clang function multiversioning): the rest
// of the library is compiled for the portable baseline, whose 4-wide SSE would make these passes
// the sampler's largest cost. (CMakeLists.txt compiles this file with -fno-trapping-math, without
// which the float selects of these loops do not vectorize.)
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#define PI_ROW_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define PI_ROW_CLONES
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

// e[i] = exp(w[i] - mx) for i < n (w[i] <= mx), 0 for -inf entries (masked tokens). One pass
// that vectorizes: the polynomial exp of cpu/exp_poly.h on max(w[i] - mx, -80), branch-free (a
// library expf call per token costs about 20x more).
PI_ROW_CLONES void exp_row(const float * __restrict w, int32_t n, float mx, float * __restrict e) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    for (int32_t k = 0; k < n; k++) {
        float p;
        PI_EXP_POLY(std::max(w[k] - mx, -80.0f), p);
        e[k] = p * (float)(w[k] != neg_inf);  // a multiply, not a select: it vectorizes
    }
}

// w[i] *= f (a temperature's inverse: one multiply per token rather than a divide).
PI_ROW_CLONES void scale_row(float * w, int32_t n, float f) {
    for (int32_t i = 0; i < n; i++) w[i] *= f;
}

// Sum of e[0..n) in eight running sums (vector lanes) rather than one long dependency chain.
PI_ROW_CLONES double sum_row(const float * e, int32_t n) {
    float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) lanes[j] += e[i + j];
    double sum = 0.0;
    for (; i < n; i++) sum += e[i];
    for (int j = 0; j < 8; j++) sum += lanes[j];
    return sum;
}

// Normalized probabilities over cands (max subtracted for stability). The exps run as one
// vectorized pass over a scratch row: a library expf per candidate costs about 20x more, and
// mirostat and top_p can keep tens of thousands of candidates.
void softmax(std::vector<candidate> & cands, std::vector<float> & scratch) {
    const int32_t n = (int32_t)cands.size();
    float mx = -std::numeric_limits<float>::infinity();
    for (const candidate & c : cands) mx = std::max(mx, c.logit);
    scratch.resize(2 * (size_t)n);
    float * lg = scratch.data();
    float * e  = lg + n;
    for (int32_t i = 0; i < n; i++) lg[i] = cands[i].logit;
    exp_row(lg, n, mx, e);
    const float inv = (float)(1.0 / sum_row(e, n));
    for (int32_t i = 0; i < n; i++) cands[i].p = e[i] * inv;
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
    std::vector<float>      scratch;  // exp values of a row (softmax, normalizers, mirostat)
    std::vector<uint32_t>   keys;     // mirostat 1's radix select
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

// True if any of w[i..i+16) exceeds floor: one vector compare, so that the scan below skips the
// long stretches of logits that cannot enter the heap without a branch per token.
inline bool any_above(const float * w, float floor) {
    int hit = 0;
    for (int j = 0; j < 16; j++) hit |= w[j] > floor;
    return hit != 0;
}

// The k largest of w[0..n) (ignoring -inf) into cands, in one pass with a min-heap of k entries:
// after the first few hundred tokens almost every logit fails the comparison with the heap's
// smallest, so this costs about one vector compare per 16 tokens.
void top_k_from(const float * w, int32_t n, int32_t k, std::vector<candidate> & cands) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    cands.clear();
    auto worse = [](const candidate & a, const candidate & b) { return by_logit_desc(a, b); };  // min-heap
    int32_t i = 0;
    for (; i < n && (int32_t)cands.size() < k; i++)
        if (w[i] != neg_inf) cands.push_back({i, w[i], 0.0f});
    std::make_heap(cands.begin(), cands.end(), worse);
    float floor_logit = cands.empty() ? neg_inf : cands.front().logit;
    auto offer = [&](int32_t j) {
        if (w[j] > floor_logit) {
            std::pop_heap(cands.begin(), cands.end(), worse);
            cands.back() = {j, w[j], 0.0f};
            std::push_heap(cands.begin(), cands.end(), worse);
            floor_logit = cands.front().logit;
        }
    };
    for (; i < n && i % 16 != 0; i++) offer(i);
    for (; i + 16 <= n; i += 16)
        if (any_above(w + i, floor_logit))
            for (int32_t j = i; j < i + 16; j++) offer(j);
    for (; i < n; i++) offer(i);
}

// Sorts cands by logit, descending.
void sort_desc(std::vector<candidate> & cands) { std::sort(cands.begin(), cands.end(), by_logit_desc); }

// Locally typical sampling: keep the tokens whose surprise is closest to the entropy, until their
// mass reaches typical_p.
void keep_typical(std::vector<candidate> & cands, float typical_p, std::vector<float> & scratch) {
    if (typical_p >= 1.0f || cands.size() <= 1) return;
    softmax(cands, scratch);
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
void keep_top_p(std::vector<candidate> & cands, float top_p, std::vector<float> & scratch) {
    if (top_p >= 1.0f || cands.size() <= 1) return;
    softmax(cands, scratch);
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

// log of the softmax normalizer of a raw row (masked -inf tokens contribute nothing); leaves
// exp(w[i] - max) in scratch and the max in *mx_out.
double log_normalizer_row(const float * w, int32_t n, std::vector<float> & scratch, float * mx_out = nullptr) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int32_t i = 0; i < n; i++) mx = w[i] > mx ? w[i] : mx;  // (std::max would not inline here)
    scratch.resize(n);
    exp_row(w, n, mx, scratch.data());
    if (mx_out) *mx_out = mx;
    return (double)mx + std::log(sum_row(scratch.data(), n));
}

// Candidates taken before a truncation that needs only the head of the list (top_p alone): a
// heap pass for the first, a radix select for the second (SmolLM2's nucleus at top_p 0.95 holds
// 1 to 669 tokens over a story, most under 128).
constexpr int32_t kHeadSmall = 128, kHeadLarge = 1024;

// Draws from a row of weights e[0..n) (0 = not allowed) in id order: returns the token and its
// probability among the allowed ones in *p, or -1 when every weight is 0.
pi_token draw_from_row(const float * e, int32_t n, std::mt19937 & rng, double * p) {
    const double total = sum_row(e, n);
    if (!(total > 0.0)) return -1;
    const double u = uniform01(rng) * total;
    double acc = 0.0;
    pi_token tok = -1;
    for (int32_t k = 0; k < n; k++) {
        if (e[k] == 0.0f) continue;
        tok = k;  // the last allowed token, should rounding leave u at the very top
        acc += e[k];
        if (u < acc) break;
    }
    *p = e[tok] / total;
    return tok;
}

// Mirostat 2 over a whole row w (already divided by the temperature): keep the tokens whose
// surprise -log2 p is at most mu (p_i >= 2^-mu, so e_i >= z 2^-mu with e_i = exp(w_i - max) and
// z their sum), at least the most likely one; draw among them by e_i; move mu toward tau by the
// surprise of the drawn token under the kept (renormalized) distribution. A few linear passes
// over the row (exps, floor, kept mass, the walk to the drawn token), no candidate list, no sort.
pi_token sample_mirostat_v2(pi_sampler * s, const float * w, int32_t n) {
    float mx = 0.0f;
    const double log_z = log_normalizer_row(w, n, s->scratch, &mx);
    float *       e    = s->scratch.data();
    const float   thr  = (float)std::exp(log_z - (double)mx - (double)s->mu * std::log(2.0));
    for (int32_t i = 0; i < n; i++) e[i] = e[i] >= thr ? e[i] : 0.0f;
    double   p   = 1.0;
    pi_token tok = draw_from_row(e, n, s->rng, &p);
    if (tok < 0) {  // nothing reaches the floor (it lies above the best token): keep the best
        top_k_from(w, n, 1, s->cands);
        tok = s->cands[0].id;
        p   = 1.0;
    }
    s->mu -= s->p.mirostat_eta * (float)(-std::log2(p) - s->p.mirostat_tau);
    return tok;
}

// Zeroes e[i] where w[i] < kth and returns how many w[i] exceed kth; when the tokens at or
// above kth number exactly keep (no ties past the k-th), it returns keep and e is done.
PI_ROW_CLONES int32_t count_row(const float * __restrict w, int32_t n, float kth, float * __restrict e, int32_t keep) {
    int32_t above = 0, at_or_above = 0;
    for (int32_t i = 0; i < n; i++) {
        above += w[i] > kth;
        at_or_above += w[i] >= kth;
        e[i] *= (float)(w[i] >= kth);
    }
    return at_or_above == keep ? keep : above;
}

// The k-th largest of w[0..n) (1 <= k <= n) by a radix select: floats mapped to unsigned keys
// of the same order, a histogram of their top 11 bits, then a selection inside the one bucket that
// holds the k-th. Two passes over the row instead of std::nth_element on a copy (about 8x faster
// on a 49k vocabulary, where mirostat 1 needs it for every token once mu has grown).
float kth_largest(const float * w, int32_t n, int32_t k, std::vector<uint32_t> & tmp) {
    auto key = [](float v) {
        uint32_t b;
        std::memcpy(&b, &v, 4);
        return b & 0x80000000u ? ~b : b | 0x80000000u;
    };
    constexpr int kBits = 11;
    int32_t hist[1 << kBits] = {};
    for (int32_t i = 0; i < n; i++) hist[key(w[i]) >> (32 - kBits)]++;
    int32_t bucket = (1 << kBits) - 1, above = 0;  // above: how many lie in higher buckets
    while (above + hist[bucket] < k) above += hist[bucket--];
    tmp.clear();
    for (int32_t i = 0; i < n; i++)
        if ((int32_t)(key(w[i]) >> (32 - kBits)) == bucket) tmp.push_back(key(w[i]));
    const int32_t r = k - above;  // the r-th largest inside the bucket
    std::nth_element(tmp.begin(), tmp.begin() + (r - 1), tmp.end(), std::greater<uint32_t>());
    const uint32_t kb = tmp[r - 1];
    const uint32_t b  = kb & 0x80000000u ? kb & 0x7fffffffu : ~kb;
    float v;
    std::memcpy(&v, &b, 4);
    return v;
}

// The k largest of w[0..n) (ignoring -inf), unsorted, into cands, by a radix select of the k-th
// value and one collecting pass: for a k of several hundred this beats top_k_from's heap, whose
// replacements then cost log k each (measured on SmolLM2's logits: the heap wins at k = 100, the
// select at 512).
void top_k_select(const float * w, int32_t n, int32_t k, std::vector<candidate> & cands, std::vector<uint32_t> & keys) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    const float kth = kth_largest(w, n, k, keys);
    cands.clear();
    for (int32_t i = 0; i < n; i++)
        if (w[i] > kth) cands.push_back({i, w[i], 0.0f});
    if (kth == neg_inf) return;
    for (int32_t i = 0; i < n && (int32_t)cands.size() < k; i++)  // ties at the k-th value: lowest ids
        if (w[i] == kth) cands.push_back({i, w[i], 0.0f});
}

// Mirostat 1 over a whole row w (already divided by the temperature): estimate the Zipf exponent
// from the top 100 probabilities, derive the k whose expected surprise is mu, keep the top k,
// draw, and move mu toward the target surprise tau. The top 100 come from a heap pass
// (top_k_from); a larger k from a radix select and a draw over the row itself.
pi_token sample_mirostat_v1(pi_sampler * s, const float * w, int32_t n) {
    std::vector<candidate> & cands = s->cands;
    top_k_from(w, n, std::min<int32_t>(100, n), cands);
    sort_desc(cands);
    const size_t m = cands.size();
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
    const int32_t keep = k < (double)n ? (int32_t)k : n;
    if ((size_t)keep <= m) {
        cands.resize(keep);
        softmax(cands, s->scratch);
        const size_t idx = draw(cands, s->rng);
        s->mu -= s->p.mirostat_eta * (float)(-std::log2((double)cands[idx].p) - s->p.mirostat_tau);
        return cands[idx].id;
    }
    // Beyond the first 100 (k reaches the whole vocabulary once mu has grown): the k-th largest
    // logit by a radix select, then a draw over the row restricted to the logits above it
    // (ties at the k-th value by lowest id), as mirostat 2 draws.
    const float kth = kth_largest(w, n, keep, s->keys);
    std::vector<float> & e = s->scratch;
    e.resize(n);
    exp_row(w, n, cands[0].logit, e.data());  // cands[0]: the best token (m >= 1 here)
    const int32_t above = count_row(w, n, kth, e.data(), keep);
    if (above < keep) {  // ties at the k-th value beyond the k: keep the lowest ids
        for (int32_t i = 0, ties = keep - above; i < n; i++) {
            if (w[i] != kth) continue;
            if (ties > 0) ties--;
            else e[i] = 0.0f;
        }
    }
    double p = 1.0;
    const pi_token tok = draw_from_row(e.data(), n, s->rng, &p);  // never -1: keep >= 1 and the best is kept
    s->mu -= s->p.mirostat_eta * (float)(-std::log2(p) - s->p.mirostat_tau);
    return tok;
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
        if (p.top_k < 256) top_k_from(w, n, p.top_k, cands);  // (both give the same set)
        else              top_k_select(w, n, p.top_k, cands, s->keys);
    } else if (p.temperature > 0.0f && p.mirostat != 0) {  // mirostat replaces the truncations
        if (p.temperature != 1.0f) scale_row(w, n, 1.0f / p.temperature);
        *out = p.mirostat == 2 ? sample_mirostat_v2(s, w, n) : sample_mirostat_v1(s, w, n);
        return PI_OK;
    } else if (truncating && p.typical_p >= 1.0f && p.top_p < 1.0f && (top_p_done = true)) {
        // top_p without top_k: the nucleus of real logits mostly lies within the top 128 (a heap
        // pass), else within the top 1024 (a radix select); check the mass against the full
        // normalizer and use the full list only when neither head holds it.
        const double log_z = log_normalizer_row(w, n, s->scratch);
        bool found = false;
        for (int32_t head : {kHeadSmall, kHeadLarge}) {
            if (head >= n) head = n;
            if (head <= 256) top_k_from(w, n, head, cands);
            else             top_k_select(w, n, head, cands, s->keys);
            sort_desc(cands);
            double cum = 0.0;
            size_t keep = 0;
            while (keep < cands.size() && cum < p.top_p) cum += std::exp((double)cands[keep++].logit - log_z);
            if (cum >= p.top_p || head == n) {
                cands.resize(std::max<size_t>(keep, 1));
                found = true;
                break;
            }
        }
        if (!found) {
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
        softmax(cands, s->scratch);
        *out = cands[draw(cands, s->rng)].id;
        return PI_OK;
    }
    keep_typical(cands, p.typical_p, s->scratch);
    if (!top_p_done) keep_top_p(cands, p.top_p, s->scratch);
    keep_min_p(cands, p.min_p);
    // The draw walks the list in order; a short list is put in a fixed order (by logit) so that a
    // seed gives the same token whatever partial sorting happened before.
    if (cands.size() <= 1024) sort_desc(cands);
    for (candidate & c : cands) c.logit /= p.temperature;
    softmax(cands, s->scratch);
    *out = cands[draw(cands, s->rng)].id;
    return PI_OK;
}

}  // extern "C"
