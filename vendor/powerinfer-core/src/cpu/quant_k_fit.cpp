// quant_k_fit.cpp - the scale search of the K-quant quantizers (see quant_k_fit.h for the plan).
#include "cpu/quant_k_fit.h"

#include "core/types.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace pi {

namespace {

constexpr int kMaxSub = 16;
// Starting scales of the per-sub-block search: the extreme value maps to qrange * (1 + kGridStep * t)
// for t in [-kGridHalf, kGridHalf]; values past the edge are clipped (t > 0 keeps them all in range,
// t < 0 trades the extremes for a finer step everywhere else).
constexpr int   kGridHalf = 8;
constexpr float kGridStep = 0.025f;
constexpr int   kRefineRounds = 3;

// Nearest code for v, clamped to [qmin, qmax]. NaN maps to qmin.
// (Rounds half up: truncation of v - qmin + 0.5, which is non-negative; no libm call in the loop.)
inline int to_code(float v, int qmin, int qmax) {
    const float lo = static_cast<float>(qmin), hi = static_cast<float>(qmax);
    v = v > hi ? hi : v;
    v = v >= lo ? v : lo;
    return static_cast<int>(v - lo + 0.5f) + qmin;
}

// Codes for x ~ s * q - m; returns the squared error. s == 0 gives code 0 (clamped) everywhere.
float encode(const float * x, int n, float s, float m, int qmin, int qmax, int * q) {
    const float inv = s != 0.0f ? 1.0f / s : 0.0f;  // inv = 0 gives code 0 (clamped) everywhere
    float err = 0.0f;
    for (int i = 0; i < n; i++) {
        q[i] = to_code((x[i] + m) * inv, qmin, qmax);
        const float r = x[i] - (s * static_cast<float>(q[i]) - m);
        err += r * r;
    }
    return err;
}

// Best real (s, m >= 0) for x ~ s * q - m with q in [0, qmax]. Each starting scale gives codes;
// the least-squares (s, m) for those codes scores the candidate by its residual, which has a closed
// form (sum x^2 - s * sum xq - b * sum x at the optimum), so no second pass over x is needed.
void fit_sub_affine(const float * x, int n, int qmax, float * s_out, float * m_out) {
    float  lo = 0.0f, hi = x[0];  // the offset never goes above 0: mins are stored as m >= 0
    double sx = 0, sxx = 0;
    for (int i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        sx += x[i];
        sxx += static_cast<double>(x[i]) * x[i];
    }
    *s_out = 0.0f;
    *m_out = -lo;
    if (!(hi > lo)) return;
    *s_out      = (hi - lo) / static_cast<float>(qmax);
    double best = std::numeric_limits<double>::infinity();
    for (int t = -kGridHalf; t <= kGridHalf; t++) {
        const float s0  = (hi - lo) / (static_cast<float>(qmax) * (1.0f + kGridStep * static_cast<float>(t)));
        const float inv = 1.0f / s0;
        float sq = 0, sqq = 0, sxq = 0;  // sums over one sub-block: float is plenty
        for (int i = 0; i < n; i++) {
            const float q = static_cast<float>(to_code((x[i] - lo) * inv, 0, qmax));
            sq += q;
            sqq += q * q;
            sxq += x[i] * q;
        }
        // Least squares x ~ s * q + b; an offset b above zero is not storable, then b = 0.
        const double q1 = sq, q2 = sqq, xq = sxq;
        const double det = n * q2 - q1 * q1;
        if (!(det > 0)) continue;
        double s = (n * xq - q1 * sx) / det;
        double b = (sx - s * q1) / n;
        double err;
        if (b > 0) {
            b   = 0;
            s   = xq / q2;
            err = sxx - s * xq;
        } else {
            err = sxx - s * xq - b * sx;
        }
        if (s > 0 && err < best) {
            best   = err;
            *s_out = static_cast<float>(s);
            *m_out = static_cast<float>(-b);
        }
    }
}

// Best real s for x ~ s * q with q in [qmin, qmax] (qmin = -qmax - 1); candidates are scored by
// the least-squares residual sum x^2 - (sum xq)^2 / sum q^2 of their codes.
void fit_sub_symmetric(const float * x, int n, int qmin, int qmax, float * s_out) {
    float vmax = 0.0f;  // the value of largest magnitude, with its sign
    for (int i = 0; i < n; i++) {
        if (std::fabs(x[i]) > std::fabs(vmax)) vmax = x[i];
    }
    *s_out = 0.0f;
    if (vmax == 0.0f) return;
    double best_gain = -1;
    // The extreme value may land on the long side (qmin) or the short side (qmax) of the range.
    const float ends[2] = {static_cast<float>(qmin), static_cast<float>(qmax)};
    for (float end : ends) {
        for (int t = -kGridHalf; t <= kGridHalf; t++) {
            const float s0  = vmax / (end * (1.0f + kGridStep * static_cast<float>(t)));
            const float inv = 1.0f / s0;
            float sxq = 0, sqq = 0;
            for (int i = 0; i < n; i++) {
                const float q = static_cast<float>(to_code(x[i] * inv, qmin, qmax));
                sxq += x[i] * q;
                sqq += q * q;
            }
            if (sqq <= 0) continue;
            const double gain = static_cast<double>(sxq) * sxq / sqq;  // the residual is sum x^2 minus this
            if (gain > best_gain) {
                best_gain = gain;
                *s_out    = static_cast<float>(sxq / sqq);
            }
        }
    }
}

inline float half_round(float v) { return fp16_to_fp32(fp32_to_fp16(v)); }

// v rounded to half, but never to zero when v > 0, nor to infinity (values beyond the half range
// are clipped rather than turned into inf and NaN).
inline float half_round_nonzero(float v) {
    const float h = half_round(std::fmax(std::fmin(v, 65504.0f), -65504.0f));
    return (v > 0.0f && h == 0.0f) ? fp16_to_fp32(1) : h;
}

// The next half-precision value above the (positive, finite) half value v.
inline float half_next_up(float v) {
    const uint16_t h = fp32_to_fp16(v);
    return (h & 0x7c00) == 0x7c00 ? v : fp16_to_fp32(static_cast<uint16_t>(h + 1));
}

// Integer scale/min per sub-block for given d and dmin (already half-rounded): tries the integers
// on both sides of the real targets and keeps the pair with the smallest error. Returns the total.
float assign_integers(const float * x, const kquant_spec & spec, int n_sub, float d, float dmin,
                      const float * s_real, const float * m_real, kquant_fit * f) {
    float total = 0.0f;
    int   q[32];
    for (int j = 0; j < n_sub; j++) {
        const float * xj = x + j * spec.sub_len;
        int sc_c[2] = {0, 0}, mn_c[2] = {0, 0};
        int n_sc = 1, n_mn = 1;
        if (d != 0.0f) {
            const float r = std::floor(s_real[j] / d);
            const int   c = std::isfinite(r) ? static_cast<int>(std::fmax(std::fmin(r, 1e6f), -1e6f)) : 0;
            sc_c[0] = c < spec.sc_lo ? spec.sc_lo : (c > spec.sc_hi ? spec.sc_hi : c);
            sc_c[1] = c + 1 < spec.sc_lo ? spec.sc_lo : (c + 1 > spec.sc_hi ? spec.sc_hi : c + 1);
            n_sc    = sc_c[1] != sc_c[0] ? 2 : 1;
        }
        if (spec.affine && dmin != 0.0f) {
            const float r = std::floor(m_real[j] / dmin);
            const int   c = std::isfinite(r) ? static_cast<int>(std::fmax(std::fmin(r, 1e6f), -1e6f)) : 0;
            mn_c[0] = c < 0 ? 0 : (c > spec.mn_hi ? spec.mn_hi : c);
            mn_c[1] = c + 1 < 0 ? 0 : (c + 1 > spec.mn_hi ? spec.mn_hi : c + 1);
            n_mn    = mn_c[1] != mn_c[0] ? 2 : 1;
        }
        float best = std::numeric_limits<float>::infinity();
        for (int a = 0; a < n_sc; a++) {
            for (int b = 0; b < n_mn; b++) {
                const float S   = d * static_cast<float>(sc_c[a]);
                const float M   = dmin * static_cast<float>(mn_c[b]);
                const float err = encode(xj, spec.sub_len, S, M, spec.qmin, spec.qmax, q);
                if (err < best) {
                    best     = err;
                    f->sc[j] = sc_c[a];
                    f->mn[j] = mn_c[b];
                    std::memcpy(f->q + j * spec.sub_len, q, sizeof(int) * spec.sub_len);
                }
            }
        }
        total += best;
    }
    return total;
}

}  // namespace

void fit_superblock(const float * x, const kquant_spec & spec, kquant_fit * out) {
    const int n_sub = 256 / spec.sub_len;
    float     s_real[kMaxSub] = {0}, m_real[kMaxSub] = {0};

    // 1. Real scale (and min) per sub-block.
    for (int j = 0; j < n_sub; j++) {
        const float * xj = x + j * spec.sub_len;
        if (spec.affine) {
            fit_sub_affine(xj, spec.sub_len, spec.qmax, &s_real[j], &m_real[j]);
        } else {
            fit_sub_symmetric(xj, spec.sub_len, spec.qmin, spec.qmax, &s_real[j]);
        }
    }

    // 2. Super-block factors from the largest scale and min, then the integers.
    float s_top = 0.0f, m_top = 0.0f;
    for (int j = 0; j < n_sub; j++) {
        s_top = std::fmax(s_top, std::fabs(s_real[j]));
        m_top = std::fmax(m_top, m_real[j]);
    }
    // Tiny values: a factor that rounds to a half zero would erase the block, so the smallest
    // positive half (2^-24) is the floor; the next half up is tried too (the grid is coarse there).
    float d    = half_round_nonzero(s_top / static_cast<float>(spec.sc_hi));
    float dmin = spec.affine ? half_round_nonzero(m_top / static_cast<float>(spec.mn_hi)) : 0.0f;

    kquant_fit trial;
    std::memset(&trial, 0, sizeof(trial));
    float best = std::numeric_limits<float>::infinity();
    const float d_choices[2] = {d, half_next_up(d)};
    for (const float dc : d_choices) {
        const float err = assign_integers(x, spec, n_sub, dc, dmin, s_real, m_real, &trial);
        if (err < best) {
            best       = err;
            trial.d    = fp32_to_fp16(dc);
            trial.dmin = fp32_to_fp16(dmin);
            *out       = trial;
        }
    }
    d = fp16_to_fp32(out->d);
    trial = *out;

    // 3. Least-squares refit of d (and dmin) for the chosen integers; keep the best round.
    for (int round = 0; round < kRefineRounds; round++) {
        double saa = 0, sab = 0, sbb = 0, sxa = 0, sxb = 0;
        for (int i = 0; i < 256; i++) {
            const int    j = i / spec.sub_len;
            const double a = static_cast<double>(trial.sc[j]) * trial.q[i];
            const double b = trial.mn[j];
            saa += a * a;
            sab += a * b;
            sbb += b * b;
            sxa += x[i] * a;
            sxb += x[i] * b;
        }
        if (saa <= 0) break;
        double nd = sxa / saa, nm = dmin;
        if (spec.affine) {
            // x ~ d * a - dmin * b
            const double det = saa * sbb - sab * sab;
            if (det > 1e-12 * saa * sbb) {
                nd = (sxa * sbb - sab * sxb) / det;
                nm = -(saa * sxb - sab * sxa) / det;
            }
            if (!(det > 1e-12 * saa * sbb) || nm < 0) {
                nm = nm < 0 ? 0 : dmin;
                nd = (sxa + nm * sab) / saa;
            }
        }
        if (!std::isfinite(nd) || !std::isfinite(nm) || (spec.affine && nd <= 0)) break;
        d    = half_round_nonzero(static_cast<float>(nd));
        dmin = spec.affine ? half_round_nonzero(static_cast<float>(nm)) : 0.0f;
        const float err = assign_integers(x, spec, n_sub, d, dmin, s_real, m_real, &trial);
        trial.d    = fp32_to_fp16(d);
        trial.dmin = fp32_to_fp16(dmin);
        if (err < best) {
            best = err;
            *out = trial;
        }
    }
}

}  // namespace pi
