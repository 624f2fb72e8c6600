// threadpool.cpp - chunk claiming and spin-then-sleep workers (see threadpool.h for why).
#include "run/threadpool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PI_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define PI_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define PI_CPU_RELAX() ((void)0)
#endif

namespace pi {
namespace {

// How long an idle worker polls before it sleeps. Long enough to bridge the gaps between the jobs
// of one forward pass and between tokens while generating, short enough that an idle context
// costs nothing measurable.
constexpr int64_t kSpinMicros = 200;

int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch()).count();
}

uint32_t claim_count(uint64_t w) { return static_cast<uint32_t>(w >> 32); }
uint32_t claim_next(uint64_t w) { return static_cast<uint32_t>(w); }

}  // namespace

thread_pool::thread_pool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
    workers_.reserve(n_threads_ - 1);
    for (int i = 1; i < n_threads_; i++) workers_.emplace_back(&thread_pool::worker_main, this, i);
}

thread_pool::~thread_pool() {
    {
        std::lock_guard<std::mutex> lk(mutex_);
        stop_.store(true);
        generation_.fetch_add(1);
    }
    cv_.notify_all();
    for (std::thread & t : workers_) t.join();
}

void thread_pool::work(int ith) {
    for (;;) {
        uint64_t w = claim_.load(std::memory_order_acquire);
        const int64_t n    = claim_count(w);
        const int64_t next = claim_next(w);
        if (next >= n) return;
        // 1 / nth of what is left, in whole grains. grain and nth may belong to a job newer than w
        // if the caller moved on meanwhile; then the compare-exchange below fails, and a size
        // computed from them is a valid chunk anyway.
        const int64_t grain = job_grain_.load(std::memory_order_relaxed);
        const int64_t nth   = job_nth_.load(std::memory_order_relaxed);
        int64_t size = (n - next + nth - 1) / nth;
        size = (size + grain - 1) / grain * grain;
        if (size > n - next) size = n - next;
        if (!claim_.compare_exchange_weak(w, w + static_cast<uint64_t>(size), std::memory_order_acq_rel)) continue;
        // Items [next, next + size) are ours; the job cannot change until we report them done.
        job_.load(std::memory_order_relaxed)(job_arg_.load(std::memory_order_relaxed), ith, next, next + size);
        done_.fetch_add(size, std::memory_order_acq_rel);
    }
}

void thread_pool::run_raw(int nth, int64_t n, int64_t grain, job_fn fn, void * arg) {
    job_.store(fn, std::memory_order_relaxed);
    job_arg_.store(arg, std::memory_order_relaxed);
    job_grain_.store(grain < 1 ? 1 : grain, std::memory_order_relaxed);
    job_nth_.store(nth, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    claim_.store(static_cast<uint64_t>(n) << 32, std::memory_order_release);  // publishes the job
    generation_.fetch_add(1);  // seq_cst, then we read sleeping_ (paired with worker_main)
    if (sleeping_.load() > 0) {
        std::lock_guard<std::mutex> lk(mutex_);  // a sleeper is either in wait() or will see generation_
        cv_.notify_all();
    }
    work(0);
    // Chunks claimed by other threads may still be running.
    int spins = 0;
    while (done_.load(std::memory_order_acquire) != n) {
        PI_CPU_RELAX();
        if (++spins > 2000) std::this_thread::yield();  // the machine is busier than its cores
    }
}

void thread_pool::worker_main(int ith) {
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = generation_.load(std::memory_order_acquire);
        if (g == seen) {
            // Spin for a new job, then sleep.
            const int64_t t0 = now_us();
            int           n  = 0;
            while ((g = generation_.load(std::memory_order_acquire)) == seen) {
                PI_CPU_RELAX();
                if ((++n & 255) == 0 && now_us() - t0 > kSpinMicros) break;
            }
            if (g == seen) {
                std::unique_lock<std::mutex> lk(mutex_);
                sleeping_.fetch_add(1);  // seq_cst, paired with run_raw's bump then load
                cv_.wait(lk, [&] { return generation_.load() != seen; });
                sleeping_.fetch_sub(1);
                g = generation_.load();
            }
        }
        seen = g;
        if (stop_.load()) return;
        if (ith < job_nth_.load(std::memory_order_relaxed)) work(ith);
    }
}

}  // namespace pi
