// device.h - the interface between the forward pass and a device that holds part of the model:
// its own memory, explicit copies, and the one operation the hybrid FFN sends it (the hot rows of
// a layer). Backends live apart: backend/standin_device.cpp (a CPU stand-in with separate buffers,
// so that the placement and merge logic run and are tested on machines without a GPU) and, in CUDA
// builds, src/cuda/.
//
// The hybrid FFN of one token (run/ffn_offload.cpp): the active neurons are split into hot ones,
// whose rows of up, gate and ffn_down_t the device holds as compact matrices (row k of each is
// neuron hot_ids[k]), and cold ones, which stay on the CPU. ffn_rows_begin hands the device the
// FFN input and the compact indices of the active hot neurons; the CPU then computes the cold
// rows; ffn_rows_end waits for the device and gives its part of the down projection, which is
// added to the CPU's. Devices run asynchronously (CUDA on its stream, the stand-in on a thread
// of its own), so the two halves overlap.
#pragma once

#include "powerinfer.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace pi {

// One layer's hot rows in device memory.
struct device_ffn_rows {
    int64_t      n_rows    = 0;        // hot neurons of the layer
    int64_t      n_embd    = 0;
    int32_t      act       = 0;        // sparse_ffn.h ffn_act
    int32_t      up_type   = 0, gate_type = 0, down_type = 0;
    const void * up        = nullptr;  // [n_rows] rows of n_embd (device memory)
    const void * gate      = nullptr;  // null without a gate (falcon)
    const void * down_t    = nullptr;  // [n_rows] rows of n_embd
    const float * up_bias  = nullptr;  // [n_rows] compact like the rows (falcon), or null
};

// One layer's activity predictor in device memory: scores = fc2 · ReLU(fc1 · x).
struct device_predictor {
    int64_t      n_embd = 0, hidden = 0, n_ff = 0;
    int32_t      fc1_type = 0, fc2_type = 0;
    const void * fc1 = nullptr;  // [hidden] rows of n_embd
    const void * fc2 = nullptr;  // [n_ff] rows of hidden
};

class device {
  public:
    virtual ~device() = default;
    virtual const char * name() const = 0;
    // Whether its FFN kernels read weights of this type.
    virtual bool supports(int32_t type) const = 0;
    // Bytes this device may still allocate for the model (its budget minus what is allocated).
    virtual uint64_t available() const = 0;
    // Device memory; nullptr (with the reason in pi_last_error) when the budget or memory is short.
    virtual void * alloc(size_t bytes) = 0;
    // What an allocation of bytes takes from the budget (rounded up to the device's alignment).
    virtual size_t footprint(size_t bytes) const = 0;
    virtual void   release(void * p) = 0;
    virtual pi_status upload(void * dst, const void * src, size_t bytes) = 0;
    // The hot part of n_tok tokens' FFN (one token while decoding, a prompt's tokens at once).
    // x: the FFN inputs (host, [n_tok][n_embd]); token t's active hot neurons are the compact
    // indices (rows of w) idx[off[t] .. off[t + 1]). Between begin and end the host buffers x, idx
    // and off stay untouched.
    virtual pi_status ffn_rows_begin(const device_ffn_rows & w, const float * x, int64_t n_tok, const int32_t * idx,
                                     const int64_t * off) = 0;
    // Waits for the device and copies out h (off[n_tok] floats, the hidden values in idx order) and
    // y ([n_tok][n_embd]: token t's sum over its k of h[k] * down_t row idx[k]).
    virtual pi_status ffn_rows_end(float * h, float * y) = 0;
    // scores (n_ff floats, host) = the predictor of x (n_embd floats, host); returns when done
    // (the CPU needs the active set before either half of the FFN can start).
    virtual pi_status predict(const device_predictor & p, const float * x, float * scores) = 0;
};

// The device named name ("cpu-standin", or "cuda" / "cuda:N" in CUDA builds) with a budget of
// capacity bytes (0: no limit beyond the device's memory). *out is null on failure.
pi_status device_create(const char * name, uint64_t capacity, std::unique_ptr<device> * out);

// The CPU stand-in (backend/standin_device.cpp).
std::unique_ptr<device> standin_device_create(uint64_t capacity);

#if defined(PI_HAVE_CUDA)
// The CUDA device of ordinal index (src/cuda/cuda_device.cu); capacity 0: its free memory less a
// margin.
pi_status cuda_device_create(int index, uint64_t capacity, std::unique_ptr<device> * out);
#endif

}  // namespace pi
