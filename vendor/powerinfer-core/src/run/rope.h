// rope.h - rotary position embedding, llama ("normal") and NeoX orderings.
//
// Within each head, the pairs (x[2i], x[2i+1]) for i < n_rot/2 are rotated by the angle
// theta_i = pos * base^(-2i / n_rot) (scaled as the model's rope.scaling says); dimensions past
// n_rot are left alone. This is the ordering GGUF llama files expect: the converters permute the
// Q and K rows of Hugging Face checkpoints (which rotate the two halves, "NeoX" style) so that
// adjacent pairs rotate here.
#pragma once

#include <cstdint>

namespace pi {

struct llm_model;

// cos and sin of every pair's angle for n_tok positions: cos_out[t * n_rot/2 + i]. The angles are
// the same in every layer and head, so the forward pass computes them once per batch.
// YaRN's magnitude correction is folded into both tables.
void rope_table(const llm_model & m, const int32_t * pos, int64_t n_tok, float * cos_out, float * sin_out);

// Rotates n_heads heads of head_dim values (x is [n_heads][head_dim]) with one token's tables.
void rope_apply(float * x, int n_heads, int head_dim, int n_rot, const float * cos_t, const float * sin_t);

// The NeoX ordering (falcon, whose converters keep Hugging Face's layout): pair i is
// (x[i], x[i + n_rot/2]), with the same angles.
void rope_apply_neox(float * x, int n_heads, int head_dim, int n_rot, const float * cos_t, const float * sin_t);

}  // namespace pi
