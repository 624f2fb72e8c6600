// cuda_device.cu - the CUDA device of the hybrid FFN (backend/device.h): device memory under a
// budget, uploads, and the hot-rows FFN of one token as two kernels on the device's own stream.
//
//   ffn_rows_begin  copies the tokens' inputs and their active hot rows' indices to the GPU
//                   (through pinned host buffers), launches hidden_kernel (one block per (token,
//                   active row) entry: the dot products of the row's up and gate with the token's
//                   x, then the activation) and down_kernel (one thread per output column and
//                   token: the sum over the token's rows of h_k * down_t[k][c], in list order),
//                   copies h and y back and records an event; it returns at once, so the CPU
//                   computes the cold rows meanwhile. A prompt is one call.
//   ffn_rows_end    waits on that event. The event is made with cudaEventBlockingSync: the host
//                   thread sleeps in the driver instead of spinning on a core the CPU half needs.
//
// Weights are read in their stored type (F32, F16, BF16, Q4_0, Q8_0) and dequantized per value;
// x stays f32, so the GPU's products are the exact dot products rounded once per partial sum (the
// CPU path rounds x to int8 blocks for quantized weights: the two agree to that rounding).
//
//   predict         the layer's predictor, fc1 then ReLU then fc2 (gemv_kernel, one block per row),
//                   scores copied back; synchronous: the active set decides both halves' work.
//
// Status: compiled and linked in CI; not yet run on a GPU (no GPU was lent to the sessions that
// wrote it). tests/test_offload_cuda.py compares it with the CPU stand-in when a GPU is present.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "backend/device.h"
#include "core/status.h"
#include "core/types.h"

namespace pi {

namespace {

constexpr int32_t kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ8_0 = 8, kBF16 = 30;

// Value j of a row of type t.
__device__ __forceinline__ float load_value(int32_t t, const uint8_t * row, int64_t j) {
    switch (t) {
        case kF32: return reinterpret_cast<const float *>(row)[j];
        case kF16: return __half2float(reinterpret_cast<const __half *>(row)[j]);
        case kBF16: {
            const uint32_t bits = (uint32_t)reinterpret_cast<const uint16_t *>(row)[j] << 16;
            return __uint_as_float(bits);
        }
        case kQ4_0: {
            const uint8_t * b = row + (j / 32) * 18;
            const float     d = __half2float(*reinterpret_cast<const __half *>(b));
            const int       i = (int)(j % 32);
            const uint8_t   q = b[2 + (i % 16)];
            return d * (float)((i < 16 ? (q & 0x0F) : (q >> 4)) - 8);
        }
        default: {  // kQ8_0
            const uint8_t * b = row + (j / 32) * 34;
            const float     d = __half2float(*reinterpret_cast<const __half *>(b));
            return d * (float)reinterpret_cast<const int8_t *>(b + 2)[j % 32];
        }
    }
}

__device__ __forceinline__ float block_sum(float v, float * shared) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = threadIdx.x < blockDim.x / 32 ? shared[threadIdx.x] : 0.0f;
    if (warp == 0) {
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    }
    return v;  // valid in thread 0
}

struct rows_args {
    int32_t         act, up_type, gate_type, down_type;
    int64_t         n_embd;
    size_t          up_rb, gate_rb, down_rb;
    const uint8_t * up;
    const uint8_t * gate;  // null without a gate
    const uint8_t * down_t;
    const float *   up_bias;  // compact, or null
};

// h[k] = act(gate row idx[k] . x_t, up row idx[k] . x_t), t = tok[k] the entry's token: one block
// per entry.
__global__ void hidden_kernel(rows_args a, const float * X, const int32_t * idx, const int32_t * tok, float * h) {
    __shared__ float shared[32];
    const int64_t   r  = idx[blockIdx.x];
    const float *   x  = X + (int64_t)tok[blockIdx.x] * a.n_embd;
    const uint8_t * ur = a.up + (size_t)r * a.up_rb;
    float u = 0.0f, g = 0.0f;
    for (int64_t j = threadIdx.x; j < a.n_embd; j += blockDim.x) {
        const float xj = x[j];
        u += load_value(a.up_type, ur, j) * xj;
        if (a.gate) g += load_value(a.gate_type, a.gate + (size_t)r * a.gate_rb, j) * xj;
    }
    u = block_sum(u, shared);
    __syncthreads();
    g = block_sum(g, shared);
    if (threadIdx.x == 0) {
        float v;
        if (a.act == 2) {  // FFN_RELU_UP: ReLU(up + b)
            v = fmaxf(u + (a.up_bias ? a.up_bias[r] : 0.0f), 0.0f);
        } else if (a.act == 1) {  // FFN_RELU_BOTH
            v = fmaxf(g, 0.0f) * fmaxf(u, 0.0f);
        } else {
            v = fmaxf(g, 0.0f) * u;
        }
        h[blockIdx.x] = v;
    }
}

// Y[t][c] = sum over token t's entries k with h[k] != 0 of h[k] * down_t row idx[k] [c], in list
// order: blockIdx.y is the token, off its entries' range.
__global__ void down_kernel(rows_args a, const int32_t * idx, const float * h, const int64_t * off, float * Y) {
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= a.n_embd) return;
    float * y = Y + (int64_t)blockIdx.y * a.n_embd;
    float acc = 0.0f;
    for (int64_t k = off[blockIdx.y]; k < off[blockIdx.y + 1]; k++) {
        const float hk = h[k];
        if (hk == 0.0f) continue;
        acc = fmaf(hk, load_value(a.down_type, a.down_t + (size_t)idx[k] * a.down_rb, c), acc);
    }
    y[c] = acc;
}

// y[r] = row r of W . x (ReLU'd when relu), one block per row: the predictor's two products.
__global__ void gemv_kernel(int32_t type, const uint8_t * W, size_t rb, int64_t n, const float * x, float * y,
                            bool relu) {
    __shared__ float shared[32];
    const uint8_t * row = W + (size_t)blockIdx.x * rb;
    float s = 0.0f;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += load_value(type, row, j) * x[j];
    s = block_sum(s, shared);
    if (threadIdx.x == 0) y[blockIdx.x] = relu ? fmaxf(s, 0.0f) : s;
}

pi_status cuda_fail(cudaError_t e, const char * what) {
    return fail(e == cudaErrorMemoryAllocation ? PI_ERR_OUT_OF_MEMORY : PI_ERR_INTERNAL, "CUDA %s: %s", what,
                cudaGetErrorString(e));
}

#define PI_CUDA(call, what)                             \
    do {                                                \
        const cudaError_t e_ = (call);                  \
        if (e_ != cudaSuccess) return cuda_fail(e_, what); \
    } while (0)

class cuda_device final : public device {
  public:
    cuda_device(int index, uint64_t capacity) : index_(index), capacity_(capacity) {
        std::snprintf(name_, sizeof(name_), "cuda:%d", index);
    }

    ~cuda_device() override {
        cudaSetDevice(index_);
        for (auto & kv : blocks_) cudaFree(kv.first);
        cudaFree(d_x_); cudaFree(d_idx_); cudaFree(d_tok_); cudaFree(d_off_); cudaFree(d_h_); cudaFree(d_y_); cudaFree(d_ph_);
        cudaFreeHost(p_x_); cudaFreeHost(p_idx_); cudaFreeHost(p_tok_); cudaFreeHost(p_off_); cudaFreeHost(p_h_);
        cudaFreeHost(p_y_);
        if (done_) cudaEventDestroy(done_);
        if (stream_) cudaStreamDestroy(stream_);
    }

    pi_status init() {
        PI_CUDA(cudaSetDevice(index_), "cudaSetDevice");
        PI_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
        PI_CUDA(cudaEventCreateWithFlags(&done_, cudaEventBlockingSync | cudaEventDisableTiming), "event");
        if (capacity_ == 0) {  // free memory, less a margin for the runtime and other users
            size_t free_b = 0, total_b = 0;
            PI_CUDA(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
            const uint64_t margin = 512ull << 20;
            capacity_ = free_b > margin ? free_b - margin : 0;
        }
        return PI_OK;
    }

    const char * name() const override { return name_; }

    bool supports(int32_t type) const override {
        return type == kF32 || type == kF16 || type == kBF16 || type == kQ4_0 || type == kQ8_0;
    }

    uint64_t available() const override { return capacity_ - used_; }

    size_t footprint(size_t bytes) const override { return bytes == 0 ? 256 : (bytes + 255) & ~(size_t)255; }

    void * alloc(size_t bytes) override {
        const size_t size = footprint(bytes);
        if (size > capacity_ - used_) {
            fail(PI_ERR_OUT_OF_MEMORY, "%s: %zu bytes asked, %llu left of the %llu-byte budget", name_, size,
                 (unsigned long long)(capacity_ - used_), (unsigned long long)capacity_);
            return nullptr;
        }
        void * p = nullptr;
        if (cudaSetDevice(index_) != cudaSuccess || cudaMalloc(&p, size) != cudaSuccess) {
            fail(PI_ERR_OUT_OF_MEMORY, "%s: cudaMalloc of %zu bytes failed", name_, size);
            return nullptr;
        }
        blocks_[p] = size;
        used_ += size;
        return p;
    }

    void release(void * p) override {
        auto it = blocks_.find(p);
        if (it == blocks_.end()) return;
        cudaSetDevice(index_);
        cudaFree(p);
        used_ -= it->second;
        blocks_.erase(it);
    }

    pi_status upload(void * dst, const void * src, size_t bytes) override {
        PI_CUDA(cudaSetDevice(index_), "cudaSetDevice");
        PI_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "upload");
        return PI_OK;
    }

    pi_status ffn_rows_begin(const device_ffn_rows & w, const float * x, int64_t n_tok, const int32_t * idx,
                             const int64_t * off) override {
        PI_CUDA(cudaSetDevice(index_), "cudaSetDevice");
        const int64_t n = off[n_tok];
        PI_TRY(scratch(w.n_embd * n_tok, n > 0 ? n : 1, n_tok + 1));
        n_ = n;
        n_y_ = w.n_embd * n_tok;
        std::memcpy(p_x_, x, sizeof(float) * (size_t)n_y_);
        std::memcpy(p_off_, off, sizeof(int64_t) * (size_t)(n_tok + 1));
        for (int64_t t = 0; t < n_tok; t++) {
            for (int64_t k = off[t]; k < off[t + 1]; k++) {
                p_idx_[k] = idx[k];
                p_tok_[k] = (int32_t)t;
            }
        }
        PI_CUDA(cudaMemcpyAsync(d_x_, p_x_, sizeof(float) * (size_t)n_y_, cudaMemcpyHostToDevice, stream_), "copy x");
        PI_CUDA(cudaMemcpyAsync(d_off_, p_off_, sizeof(int64_t) * (size_t)(n_tok + 1), cudaMemcpyHostToDevice, stream_),
                "copy offsets");
        rows_args a;
        a.act       = w.act;
        a.up_type   = w.up_type;
        a.gate_type = w.gate_type;
        a.down_type = w.down_type;
        a.n_embd    = w.n_embd;
        a.up_rb     = (size_t)type_row_bytes(w.up_type, w.n_embd);
        a.gate_rb   = w.gate ? (size_t)type_row_bytes(w.gate_type, w.n_embd) : 0;
        a.down_rb   = (size_t)type_row_bytes(w.down_type, w.n_embd);
        a.up        = static_cast<const uint8_t *>(w.up);
        a.gate      = static_cast<const uint8_t *>(w.gate);
        a.down_t    = static_cast<const uint8_t *>(w.down_t);
        a.up_bias   = w.up_bias;
        if (n > 0) {
            PI_CUDA(cudaMemcpyAsync(d_idx_, p_idx_, sizeof(int32_t) * (size_t)n, cudaMemcpyHostToDevice, stream_), "copy ids");
            PI_CUDA(cudaMemcpyAsync(d_tok_, p_tok_, sizeof(int32_t) * (size_t)n, cudaMemcpyHostToDevice, stream_), "copy ids");
            hidden_kernel<<<(unsigned)n, 128, 0, stream_>>>(a, d_x_, d_idx_, d_tok_, d_h_);
        }
        down_kernel<<<dim3((unsigned)((w.n_embd + 127) / 128), (unsigned)n_tok), 128, 0, stream_>>>(a, d_idx_, d_h_,
                                                                                                    d_off_, d_y_);
        PI_CUDA(cudaGetLastError(), "kernel launch");
        if (n > 0) PI_CUDA(cudaMemcpyAsync(p_h_, d_h_, sizeof(float) * (size_t)n, cudaMemcpyDeviceToHost, stream_), "copy h");
        PI_CUDA(cudaMemcpyAsync(p_y_, d_y_, sizeof(float) * (size_t)n_y_, cudaMemcpyDeviceToHost, stream_), "copy y");
        PI_CUDA(cudaEventRecord(done_, stream_), "event");
        return PI_OK;
    }

    pi_status ffn_rows_end(float * h, float * y) override {
        PI_CUDA(cudaSetDevice(index_), "cudaSetDevice");
        PI_CUDA(cudaEventSynchronize(done_), "wait");  // sleeps: cudaEventBlockingSync
        if (n_ > 0) std::memcpy(h, p_h_, sizeof(float) * (size_t)n_);
        std::memcpy(y, p_y_, sizeof(float) * (size_t)n_y_);
        return PI_OK;
    }

    pi_status predict(const device_predictor & p, const float * x, float * scores) override {
        PI_CUDA(cudaSetDevice(index_), "cudaSetDevice");
        PI_TRY(scratch(p.n_embd, p.n_ff, 1));
        if (p.hidden > cap_hidden_) {
            cudaFree(d_ph_);
            d_ph_ = nullptr;
            cap_hidden_ = 0;
            PI_CUDA(cudaMalloc(&d_ph_, sizeof(float) * (size_t)p.hidden), "scratch");
            cap_hidden_ = p.hidden;
        }
        std::memcpy(p_x_, x, sizeof(float) * (size_t)p.n_embd);
        PI_CUDA(cudaMemcpyAsync(d_x_, p_x_, sizeof(float) * (size_t)p.n_embd, cudaMemcpyHostToDevice, stream_), "copy x");
        gemv_kernel<<<(unsigned)p.hidden, 128, 0, stream_>>>(p.fc1_type, static_cast<const uint8_t *>(p.fc1),
                                                             (size_t)type_row_bytes(p.fc1_type, p.n_embd), p.n_embd,
                                                             d_x_, d_ph_, true);
        gemv_kernel<<<(unsigned)p.n_ff, 128, 0, stream_>>>(p.fc2_type, static_cast<const uint8_t *>(p.fc2),
                                                           (size_t)type_row_bytes(p.fc2_type, p.hidden), p.hidden,
                                                           d_ph_, d_h_, false);
        PI_CUDA(cudaGetLastError(), "kernel launch");
        PI_CUDA(cudaMemcpyAsync(p_h_, d_h_, sizeof(float) * (size_t)p.n_ff, cudaMemcpyDeviceToHost, stream_), "copy scores");
        PI_CUDA(cudaEventRecord(done_, stream_), "event");
        PI_CUDA(cudaEventSynchronize(done_), "wait");
        std::memcpy(scores, p_h_, sizeof(float) * (size_t)p.n_ff);
        return PI_OK;
    }

  private:
    float *                            d_ph_ = nullptr;  // the predictor's hidden layer
    int64_t                            cap_hidden_ = 0;
    // Per-call buffers, device and pinned host, grown to the largest call seen (they are not
    // counted in the budget: a prompt's inputs and lists, next to the rows).
    template <class T>
    static pi_status grow(T *& dev, T *& host, int64_t & cap, int64_t need) {
        if (need <= cap) return PI_OK;
        cudaFree(dev);
        cudaFreeHost(host);
        dev = nullptr;
        host = nullptr;
        cap = 0;
        PI_CUDA(cudaMalloc(&dev, sizeof(T) * (size_t)need), "scratch");
        PI_CUDA(cudaMallocHost(&host, sizeof(T) * (size_t)need), "pinned scratch");
        cap = need;
        return PI_OK;
    }

    // n_x floats of inputs (and outputs), n_entries list entries (and hidden values), n_off offsets.
    pi_status scratch(int64_t n_x, int64_t n_entries, int64_t n_off) {
        PI_TRY(grow(d_x_, p_x_, cap_x_, n_x));
        PI_TRY(grow(d_y_, p_y_, cap_y_, n_x));
        PI_TRY(grow(d_idx_, p_idx_, cap_idx_, n_entries));
        PI_TRY(grow(d_tok_, p_tok_, cap_tok_, n_entries));
        PI_TRY(grow(d_h_, p_h_, cap_h_, n_entries));
        PI_TRY(grow(d_off_, p_off_, cap_off_, n_off));
        return PI_OK;
    }

    int                                index_;
    char                               name_[32];
    uint64_t                           capacity_;
    uint64_t                           used_ = 0;
    std::unordered_map<void *, size_t> blocks_;
    cudaStream_t                       stream_ = nullptr;
    cudaEvent_t                        done_   = nullptr;
    int64_t                            cap_x_ = 0, cap_y_ = 0, cap_idx_ = 0, cap_tok_ = 0, cap_h_ = 0, cap_off_ = 0;
    int64_t                            n_ = 0, n_y_ = 0;
    float *                            d_x_ = nullptr, * d_h_ = nullptr, * d_y_ = nullptr;
    int32_t *                          d_idx_ = nullptr, * d_tok_ = nullptr;
    int64_t *                          d_off_ = nullptr;
    float *                            p_x_ = nullptr, * p_h_ = nullptr, * p_y_ = nullptr;
    int32_t *                          p_idx_ = nullptr, * p_tok_ = nullptr;
    int64_t *                          p_off_ = nullptr;
};

}  // namespace

pi_status cuda_device_create(int index, uint64_t capacity, std::unique_ptr<device> * out) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        return fail(PI_ERR_UNSUPPORTED, "cuda:%d: no CUDA device found (%s); nothing is offloaded", index,
                    e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    }
    if (index >= n) return fail(PI_ERR_INVALID_ARGUMENT, "cuda:%d: this machine has %d CUDA device(s)", index, n);
    std::unique_ptr<cuda_device> d(new cuda_device(index, capacity));
    PI_TRY(d->init());
    *out = std::move(d);
    return PI_OK;
}

}  // namespace pi
