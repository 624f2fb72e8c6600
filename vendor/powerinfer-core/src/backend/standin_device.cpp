// standin_device.cpp - a CPU stand-in for a GPU (device.h): memory of its own under a byte budget,
// uploads that copy, and the hot-rows FFN computed by the CPU kernels on the device's compact
// matrices, on a thread of its own, so that it runs at the same time as the CPU's cold rows and
// the begin / end protocol is exercised as a GPU's stream would: ffn_rows_begin copies x and the
// row indices into the device's buffers and hands the work to that thread; ffn_rows_end sleeps on
// a condition variable until it is done (no spinning). The placement and the hot / cold merge
// thus run, and are tested, on every machine: a split model must give the logits of the CPU path.
// Nothing here is fast, and nothing needs to be.
#include "backend/device.h"

#include "core/status.h"
#include "core/types.h"
#include "cpu/kernels.h"
#include "sparse/sparse_ffn.h"

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <thread>
#include <unordered_map>
#include <vector>

namespace pi {

namespace {

class standin_device final : public device {
  public:
    explicit standin_device(uint64_t capacity) : capacity_(capacity), worker_([this] { work(); }) {}
    ~standin_device() override {
        {
            std::lock_guard<std::mutex> lock(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        worker_.join();
        for (auto & kv : blocks_) std::free(kv.first);
    }

    const char * name() const override { return "cpu-standin"; }

    bool supports(int32_t type) const override { return kernel_supports(type) && sparse_down_supports(type); }

    uint64_t available() const override { return capacity_ == 0 ? UINT64_MAX : capacity_ - used_; }

    size_t footprint(size_t bytes) const override { return bytes == 0 ? 64 : (bytes + 63) & ~(size_t)63; }

    void * alloc(size_t bytes) override {
        const size_t size = footprint(bytes);
        if (capacity_ != 0 && size > capacity_ - used_) {
            fail(PI_ERR_OUT_OF_MEMORY, "cpu-standin: %zu bytes asked, %llu left of the %llu-byte budget", size,
                 (unsigned long long)(capacity_ - used_), (unsigned long long)capacity_);
            return nullptr;
        }
        void * p = std::aligned_alloc(64, size);
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

    pi_status ffn_rows_begin(const device_ffn_rows & w, const float * x, int64_t n_tok, const int32_t * idx,
                             const int64_t * off) override {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return !pending_; });  // one job at a time, as on one stream
        // The "transfers": the inputs and the indices into the device's own buffers.
        w_     = w;
        n_tok_ = n_tok;
        x_.assign(x, x + n_tok * w.n_embd);
        off_.assign(off, off + n_tok + 1);
        idx_.assign(idx, idx + off[n_tok]);
        n_ = off[n_tok];
        pending_ = true;
        done_    = false;
        cv_.notify_all();
        return PI_OK;
    }

    pi_status ffn_rows_end(float * h, float * y) override {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return done_; });
        if (n_ > 0) std::memcpy(h, h_.data(), sizeof(float) * (size_t)n_);
        std::memcpy(y, y_.data(), sizeof(float) * y_.size());
        pending_ = false;
        cv_.notify_all();
        return PI_OK;
    }

    pi_status predict(const device_predictor & p, const float * x, float * scores) override {
        // On the caller's thread: nothing else is running on the device at this point.
        std::lock_guard<std::mutex> lock(mu_);
        px_.resize(act_bytes(p.fc1_type, p.n_embd));
        act_prepare(p.fc1_type, x, p.n_embd, px_.data());
        ph_.resize((size_t)p.hidden);
        matvec(p.fc1_type, p.fc1, (size_t)type_row_bytes(p.fc1_type, p.n_embd), px_.data(), p.n_embd, ph_.data(), 0,
               p.hidden);
        for (float & v : ph_) v = v > 0.0f ? v : 0.0f;
        px_.resize(act_bytes(p.fc2_type, p.hidden));
        act_prepare(p.fc2_type, ph_.data(), p.hidden, px_.data());
        matvec(p.fc2_type, p.fc2, (size_t)type_row_bytes(p.fc2_type, p.hidden), px_.data(), p.hidden, scores, 0, p.n_ff);
        return PI_OK;
    }

  private:
    std::vector<uint8_t>               px_;   // the predictor's prepared input
    std::vector<float>                 ph_;   // its hidden layer
    uint64_t                           capacity_;
    uint64_t                           used_ = 0;
    std::unordered_map<void *, size_t> blocks_;
    std::vector<uint8_t>               xq_up_, xq_gate_;
    std::vector<float>                 h_, g_, y_, x_;
    std::vector<int32_t>               idx_;
    std::vector<int64_t>               off_;
    device_ffn_rows                    w_;
    int64_t                            n_ = 0, n_tok_ = 0;
    bool                               pending_ = false, done_ = false, stop_ = false;
    std::mutex                         mu_;
    std::condition_variable            cv_;
    std::thread                        worker_;  // last: started once the rest is built

    // The device's thread: waits for a job, computes it, says so.
    void work() {
        std::unique_lock<std::mutex> lock(mu_);
        for (;;) {
            cv_.wait(lock, [this] { return stop_ || (pending_ && !done_); });
            if (stop_) return;
            lock.unlock();
            compute();
            lock.lock();
            done_ = true;
            cv_.notify_all();
        }
    }

    // The hot rows of the job: h and y from the device's copies of the rows, token by token.
    void compute() {
        const device_ffn_rows & w = w_;
        h_.resize((size_t)(n_ > 0 ? n_ : 1));
        g_.resize(h_.size());
        y_.assign((size_t)(w.n_embd * n_tok_), 0.0f);
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
        if (w.gate) xq_gate_.resize(act_bytes(w.gate_type, w.n_embd));
        for (int64_t t = 0; t < n_tok_; t++) {
            const int64_t k0 = off_[(size_t)t], n = off_[(size_t)t + 1] - k0;
            float *       y  = y_.data() + t * w.n_embd;
            if (n == 0) continue;
            const float * x = x_.data() + t * w.n_embd;
            act_prepare(w.up_type, x, w.n_embd, xq_up_.data());
            if (w.gate) act_prepare(w.gate_type, x, w.n_embd, xq_gate_.data());
            sparse_ffn_hidden(nullptr, 1, sw, xq_up_.data(), w.gate ? xq_gate_.data() : xq_up_.data(),
                              idx_.data() + k0, n, h_.data() + k0, g_.data() + k0);
            sparse_down(nullptr, 1, w.down_type, w.down_t, w.n_embd, idx_.data() + k0, h_.data() + k0, n, y);
        }
    }
};

}  // namespace

std::unique_ptr<device> standin_device_create(uint64_t capacity) {
    return std::unique_ptr<device>(new standin_device(capacity));
}

}  // namespace pi
