// quant_k_fit.h - choosing the scales and codes of one K-quant super-block of 256 values.
//
// Every K-quant stores a super-block as
//     x_i ~ d * sc_j * q_i - dmin * mn_j        (sub-block j holds value i)
// with integer codes q_i in [qmin, qmax], integer sub-block scales sc_j in [sc_lo, sc_hi] and
// mins mn_j in [0, mn_hi] (mins only for the "affine" types Q2_K / Q4_K / Q5_K), and two half
// precision super-block factors d and dmin. fit_superblock picks all of them to make the squared
// error small, in three steps:
//   1. each sub-block gets its best real scale (and min) by a grid of starting scales, each
//      followed by a least-squares refit of the scale (and min) for the codes it produced;
//   2. d and dmin are set so the largest sub-block scale and min fit the integer range, rounded
//      to half precision; each sub-block then tries the integer scale/min pairs around its real
//      values and keeps the one whose re-rounded codes give the smallest error;
//   3. d and dmin are refitted by least squares for the chosen integers, and step 2's choice is
//      repeated; the best of these rounds (error measured with the stored half values) is kept.
// The packers in quant_k.cpp only place the integers into each format's bytes.
#pragma once

#include <cstdint>

namespace pi {

struct kquant_spec {
    int  sub_len;   // values per sub-block (16 or 32)
    bool affine;    // has mins (dmin, mn_j)
    int  qmin, qmax;
    int  sc_lo, sc_hi;  // integer range of sub-block scales
    int  mn_hi;         // integer range of mins is [0, mn_hi] (affine only)
};

struct kquant_fit {
    uint16_t d, dmin;   // IEEE half, as stored
    int      sc[16];    // per sub-block (the first 256 / sub_len are used)
    int      mn[16];
    int      q[256];
};

void fit_superblock(const float * x, const kquant_spec & spec, kquant_fit * out);

}  // namespace pi
