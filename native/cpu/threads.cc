// threads.cc — the CPU backend's persistent thread pool (std::thread, no OpenMP)
// and the setNumThreads/numThreads exports. Accumulation: none (scheduling only).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "cpu/cpu.h"

namespace mbert {
namespace cpu {
namespace {

thread_local bool t_in_pool_task = false;

class ThreadPool {
 public:
  explicit ThreadPool(int threads) { start(threads); }
  ~ThreadPool() { stop(); }

  int threads() const { return threads_; }

  void resize(int threads) {
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    stop();
    start(threads);
  }

  // Runs task(c) for c in [0, chunks); the caller participates.
  void run(int64_t chunks, const std::function<void(int64_t)>& task) {
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = &task;
      chunks_ = chunks;
      next_.store(0);
      pending_ = static_cast<int>(workers_.size());
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    work();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  // Called with no parallel region running (constructor, or resize under run_mutex_).
  // New workers start from the current generation: a worker that began at 0
  // after a resize would take the last region as new work and decrement
  // pending_ once too often, leaving the next run() waiting forever.
  void start(int threads) {
    threads_ = std::max(1, threads);
    stopping_ = false;
    const uint64_t current = generation_;
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, current] { loop(current); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  void work() {
    bool was = t_in_pool_task;
    t_in_pool_task = true;
    for (;;) {
      int64_t c = next_.fetch_add(1);
      if (c >= chunks_) break;
      try {
        (*task_)(c);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
        next_.store(chunks_);
      }
    }
    t_in_pool_task = was;
  }

  void loop(uint64_t seen) {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
      }
      work();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --pending_;
      }
      done_.notify_one();
    }
  }

  std::mutex run_mutex_;  // one parallel region at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  int threads_ = 1;
  bool stopping_ = false;
  uint64_t generation_ = 0;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t chunks_ = 0;
  std::atomic<int64_t> next_{0};
  int pending_ = 0;
  std::exception_ptr error_;
};

int default_threads() {
  if (const char* env = std::getenv("MBERT_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

ThreadPool& pool() {
  static ThreadPool p(default_threads());
  return p;
}

}  // namespace

int num_threads() { return pool().threads(); }

void set_num_threads(int n) {
  MBERT_CHECK(n >= 1 && n <= 1024, "setNumThreads: n must be in [1, 1024], got ", n);
  if (n != pool().threads()) pool().resize(n);
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int threads = t_in_pool_task ? 1 : pool().threads();
  int64_t max_chunks = (n + grain - 1) / grain;
  if (threads <= 1 || max_chunks <= 1) {
    fn(0, n);
    return;
  }
  // A few chunks per thread balances uneven rows without much overhead.
  int64_t chunks = std::min<int64_t>(max_chunks, static_cast<int64_t>(threads) * 4);
  int64_t step = (n + chunks - 1) / chunks;
  chunks = (n + step - 1) / step;
  std::function<void(int64_t)> task = [&](int64_t c) {
    int64_t lo = c * step;
    int64_t hi = std::min(n, lo + step);
    if (lo < hi) fn(lo, hi);
  };
  pool().run(chunks, task);
}

namespace {

Napi::Value set_num_threads_js(const Napi::CallbackInfo& info) {
  Args a(info, "setNumThreads", 1);
  set_num_threads(static_cast<int>(a.i64(0)));
  return info.Env().Undefined();
}

Napi::Value num_threads_js(const Napi::CallbackInfo& info) {
  Args a(info, "numThreads", 0);
  return Napi::Number::New(info.Env(), num_threads());
}

}  // namespace

MBERT_EXPORT(cpu, setNumThreads, set_num_threads_js);
MBERT_EXPORT(cpu, numThreads, num_threads_js);

}  // namespace cpu
}  // namespace mbert
