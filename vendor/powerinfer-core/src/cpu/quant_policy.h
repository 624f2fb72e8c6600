// quant_policy.h - which type each tensor of a model gets when the model is quantized
// (pi_model_quantize), and the file-type id recorded in general.file_type.
#pragma once

#include <cstdint>
#include <string>

namespace pi {

// True for the types a whole model can be quantized to: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
bool is_model_target_type(int32_t type);
// "F32, F16, ..." for error messages.
const char * model_target_type_list();

// llama.cpp's file-type id (general.file_type) for a model quantized uniformly to type:
// F32 0, F16 1, Q4_0 2, Q4_1 3, Q8_0 7, Q5_0 8, Q5_1 9, Q2_K 10, Q3_K_S 11, Q4_K_S 14, Q5_K_S 16,
// Q6_K 18, BF16 32. The K-quant ids are the "_S" ones: every matrix gets the one type (the "_M"
// mixes put some matrices at a higher type). -1 for a type that is not a model target.
int32_t file_type_for(int32_t type);

struct tensor_choice {
    int32_t     type;    // the type to write
    bool        convert; // false: copy the source bytes unchanged
    std::string reason;  // why the type differs from the target ("" when it is the target or copied as-is)
};

// The choice for one tensor. is_output_head: output.weight, or token_embd.weight when the model
// ties them (no output.weight). Rules:
//  - 1-D tensors, integer tensors, empty tensors, norms, MoE routers and names not ending in
//    ".weight" are copied;
//  - a type we cannot read is copied (with a reason);
//  - the output head is copied when quantize_output is false, and otherwise gets at least Q6_K
//    (the logits are the most sensitive product), as llama.cpp's quantizer does;
//  - a row length (ne0) that is not a multiple of the type's block takes the nearest type that
//    fits: Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then Q8_0, then F16;
//  - a tensor already in the chosen type is copied (no second rounding).
tensor_choice choose_tensor_type(const std::string & name, int32_t src_type, int32_t n_dims,
                                 int64_t ne0, int32_t target, bool is_output_head,
                                 bool quantize_output);

}  // namespace pi
