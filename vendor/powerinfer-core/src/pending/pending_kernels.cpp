// PENDING (kernels helper): placeholders so the library links while the real code is written.
// Delete this file when the real definitions exist. Nothing here may ship.
#include "core/status.h"
#include "powerinfer.h"
#include <cstring>

extern "C" {
pi_status pi_cpu_set_isa(int32_t isa) { return pi::fail(PI_ERR_INTERNAL, "%s: not written yet", __func__); }
int32_t pi_cpu_get_isa(void) { return (int32_t)0; }
pi_status pi_dequantize_row(int32_t type, const void * src, float * dst, int64_t n) { return pi::fail(PI_ERR_INTERNAL, "%s: not written yet", __func__); }
pi_status pi_quantize_row(int32_t type, const float * src, void * dst, int64_t n) { return pi::fail(PI_ERR_INTERNAL, "%s: not written yet", __func__); }
pi_status pi_matvec(int32_t type, const void * W, int64_t n_rows, int64_t n_cols, const float * x, float * y) { return pi::fail(PI_ERR_INTERNAL, "%s: not written yet", __func__); }
pi_quantize_params pi_quantize_default_params(void) { pi_quantize_params p; std::memset(&p, 0, sizeof(p)); p.struct_size = sizeof(p); return p; }
pi_status pi_model_quantize(const char * src_path, const char * dst_path, const pi_quantize_params * params) { return pi::fail(PI_ERR_INTERNAL, "%s: not written yet", __func__); }
}

#include "cpu/kernels.h"
namespace pi {
bool kernel_supports(int32_t) { return false; }
size_t act_bytes(int32_t, int64_t) { return 0; }
void act_prepare(int32_t, const float *, int64_t, void *) {}
void matvec(int32_t, const void *, size_t, const void *, int64_t, float *, int64_t, int64_t) {}
void matvec_rows(int32_t, const void *, size_t, const void *, int64_t, const int32_t *, int64_t, float *) {}
void matmul(int32_t, const void *, size_t, const void *, size_t, int64_t, int64_t, float *, int64_t, int64_t, int64_t) {}
void dequantize(int32_t, const void *, float *, int64_t) {}
bool quantize(int32_t, const float *, void *, int64_t) { return false; }
float dot_f32(const float *, const float *, int64_t) { return 0; }
float dot_f16_f32(const uint16_t *, const float *, int64_t) { return 0; }
void axpy_f16_f32(float *, float, const uint16_t *, int64_t) {}
void axpy_f32(float *, float, const float *, int64_t) {}
}  // namespace pi
