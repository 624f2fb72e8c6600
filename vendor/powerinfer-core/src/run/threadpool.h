// threadpool.h - the context's own worker threads.
//
// parallel_for(nth, n, fn) splits [0, n) into chunks and runs fn(ith, i0, i1) on each, the
// calling thread taking part, and returns when every chunk is done. Chunks are claimed one at a
// time from an atomic counter rather than assigned up front, for two reasons: rows of unequal cost
// (attention over more or fewer keys) balance themselves, and on a machine busier than its core
// count a worker that the OS has descheduled does not stall the job - the others take its chunks.
// Chunks shrink as the job runs (each takes 1 / nth of what is left: guided self-scheduling), so
// that the threads finish close together without cutting the job into many pieces: each chunk
// starts a new stream of weight rows from memory, and on SmolLM2 (2 threads) taking 1 / (2 nth)
// decoded 8-12% slower, and the former 4 equal chunks per thread were no faster than that.
// parallel_for_grain keeps each chunk a multiple of grain items (but the last), for callers whose
// kernels take rows sixteen at a time.
//
// The forward pass makes a few such calls per layer, so handing out work must cost well under a
// microsecond: idle workers first spin on the counter (with the CPU's pause hint) for a short
// while, and only then sleep on a condition variable. A context that is not decoding burns no core
// after about 200 us.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace pi {

class thread_pool {
public:
    // Starts n_threads - 1 workers (the caller is the n_threads-th).
    explicit thread_pool(int n_threads);
    ~thread_pool();
    thread_pool(const thread_pool &) = delete;
    thread_pool & operator=(const thread_pool &) = delete;

    int size() const { return n_threads_; }

    // fn(ith, i0, i1) for chunks [i0, i1) covering [0, n), on up to nth threads; ith < size() is
    // the running thread's index (for per-thread scratch). Each chunk runs exactly once.
    template <class F>
    void parallel_for(int nth, int64_t n, F && fn) {
        parallel_for_grain(nth, n, 1, static_cast<F &&>(fn));
    }

    template <class F>
    void parallel_for_grain(int nth, int64_t n, int64_t grain, F && fn) {
        if (n <= 0) return;
        if (nth > n_threads_) nth = n_threads_;
        if (nth <= 1 || n <= grain) {
            fn(0, int64_t(0), n);
            return;
        }
        // The claim word keeps counts in 32 bits: a longer range runs as several jobs.
        constexpr int64_t kMaxItems = int64_t(1) << 31;
        struct part {
            F *     fn;
            int64_t base;
        };
        for (int64_t b = 0; b < n; b += kMaxItems) {
            part p{&fn, b};
            run_raw(nth, n - b < kMaxItems ? n - b : kMaxItems, grain,
                    [](void * a, int ith, int64_t i0, int64_t i1) {
                        const part * q = static_cast<const part *>(a);
                        (*q->fn)(ith, q->base + i0, q->base + i1);
                    },
                    &p);
        }
    }

private:
    typedef void (*job_fn)(void * arg, int ith, int64_t i0, int64_t i1);
    void run_raw(int nth, int64_t n, int64_t grain, job_fn fn, void * arg);
    void worker_main(int ith);
    // Claims and runs chunks of the current job until none is left.
    void work(int ith);

    int                      n_threads_;
    std::vector<std::thread> workers_;

    // The job. The fields are written by the caller before it publishes the claim word, and read
    // by a worker only after it has claimed a chunk (so they cannot change under it: the caller
    // does not start another job until every chunk is done).
    std::atomic<job_fn>      job_{nullptr};
    std::atomic<void *>      job_arg_{nullptr};
    std::atomic<int64_t>     job_grain_{1};   // chunks are multiples of this (but the last)
    std::atomic<int>         job_nth_{1};     // threads asked for; workers ith >= nth stay out
    // Claim word: item count n in the high 32 bits, first unclaimed item in the low 32 bits. One
    // word, so that a worker never pairs the count of one job with the position of another.
    std::atomic<uint64_t>    claim_{0};
    std::atomic<int64_t>     done_{0};        // items finished

    std::atomic<uint64_t>    generation_{0};  // bumped once per job, to wake sleepers
    std::atomic<int>         sleeping_{0};    // workers blocked on cv_
    std::atomic<bool>        stop_{false};
    std::mutex               mutex_;
    std::condition_variable  cv_;
};

}  // namespace pi
