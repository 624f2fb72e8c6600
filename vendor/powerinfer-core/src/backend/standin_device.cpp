// standin_device.cpp - a CPU stand-in for a GPU (device.h): memory of its own under a byte budget,
// uploads that copy, and the hot-rows FFN computed by the CPU kernels on the device's compact
// matrices. It lets the placement and the hot / cold merge run, and be tested, on every machine:
// a split model must give the logits of the CPU path. Nothing here is fast, and nothing needs to be.
#include "backend/device.h"

#include "core/status.h"
#include "cpu/kernels.h"
#include "sparse/sparse_ffn.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <unordered_map>
#include <vector>

namespace pi {

namespace {

class standin_device final : public device {
  public:
    explicit standin_device(uint64_t capacity) : capacity_(capacity) {}
    ~standin_device() override {
        for (auto & kv : blocks_) std::free(kv.first);
    }

    const char * name() const override { return "cpu-standin"; }

    bool supports(int32_t type) const override { return kernel_supports(type) && sparse_down_supports(type); }

    uint64_t available() const override { return capacity_ == 0 ? UINT64_MAX : capacity_ - used_; }

    void * alloc(size_t bytes) override {
        const size_t size = (bytes + 63) & ~(size_t)63;
        if (capacity_ != 0 && size > capacity_ - used_) {
            fail(PI_ERR_OUT_OF_MEMORY, "cpu-standin: %zu bytes asked, %llu left of the %llu-byte budget", size,
                 (unsigned long long)(capacity_ - used_), (unsigned long long)capacity_);
            return nullptr;
        }
        void * p = std::aligned_alloc(64, size == 0 ? 64 : size);
        if (!p) {
            fail(PI_ERR_OUT_OF_MEMORY, "cpu-standin: cannot allocate %zu bytes", size);
            return nullptr;
        }
        blocks_[p] = size;
        used_ += size;
        return p;
    }

    void release(void * p) override {
        auto it = blocks_.find(p);
        if (it == blocks_.end()) return;
        used_ -= it->second;
        std::free(p);
        blocks_.erase(it);
    }

    pi_status upload(void * dst, const void * src, size_t bytes) override {
        std::memcpy(dst, src, bytes);
        return PI_OK;
    }

    pi_status ffn_rows_begin(const device_ffn_rows & w, const float * x, const int32_t * idx, int64_t n) override {
        // Computed now, on the calling thread, from the device's own copies of the rows.
        h_.resize((size_t)(n > 0 ? n : 1));
        g_.resize(h_.size());
        y_.assign((size_t)w.n_embd, 0.0f);
        n_ = n;
        if (n == 0) return PI_OK;
        sparse_ffn_weights sw;
        sw.act       = (ffn_act)w.act;
        sw.n_embd    = w.n_embd;
        sw.up_type   = w.up_type;
        sw.up        = w.up;
        sw.gate_type = w.gate_type;
        sw.gate      = w.gate;
        sw.down_type = w.down_type;
        sw.down_t    = w.down_t;
        sw.up_bias   = w.up_bias;  // compact, like the rows: up_bias[idx[k]] is the right neuron's
        xq_up_.resize(act_bytes(w.up_type, w.n_embd));
        act_prepare(w.up_type, x, w.n_embd, xq_up_.data());
        if (w.gate) {
            xq_gate_.resize(act_bytes(w.gate_type, w.n_embd));
            act_prepare(w.gate_type, x, w.n_embd, xq_gate_.data());
        }
        sparse_ffn_hidden(nullptr, 1, sw, xq_up_.data(), w.gate ? xq_gate_.data() : xq_up_.data(), idx, n, h_.data(),
                          g_.data());
        sparse_down(nullptr, 1, w.down_type, w.down_t, w.n_embd, idx, h_.data(), n, y_.data());
        return PI_OK;
    }

    pi_status ffn_rows_end(float * h, float * y) override {
        if (n_ > 0) std::memcpy(h, h_.data(), sizeof(float) * (size_t)n_);
        std::memcpy(y, y_.data(), sizeof(float) * y_.size());
        return PI_OK;
    }

  private:
    uint64_t                           capacity_;
    uint64_t                           used_ = 0;
    std::unordered_map<void *, size_t> blocks_;
    std::vector<uint8_t>               xq_up_, xq_gate_;
    std::vector<float>                 h_, g_, y_;
    int64_t                            n_ = 0;
};

}  // namespace

std::unique_ptr<device> standin_device_create(uint64_t capacity) {
    return std::unique_ptr<device>(new standin_device(capacity));
}

}  // namespace pi
