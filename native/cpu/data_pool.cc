#include "data_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "../core/binding.h"

namespace ssql {

namespace {

class Pool {
 public:
  ~Pool() { stop(); }

  // Queued tasks survive a resize: the new workers run them.
  void resize(int threads) {
    std::lock_guard<std::mutex> resizeLock(resizeMu_);
    stop();
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { loop(); });
    size_ = threads;
  }

  int size() const { return size_.load(); }

  void submit(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  void loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  std::mutex resizeMu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> workers_;
  std::atomic<int> size_{0};
  bool stopping_ = false;
};

Pool& pool() {
  static Pool* p = [] {
    auto* q = new Pool();  // never destroyed: worker threads must not be joined during static destruction
    unsigned hw = std::thread::hardware_concurrency();
    q->resize(static_cast<int>(std::max(1u, std::min(hw, 4u))));
    return q;
  }();
  return *p;
}

struct Job {
  int64_t n;
  const std::function<void(int64_t)>* f;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::condition_variable cv;
  std::exception_ptr error;

  void run() {
    for (;;) {
      int64_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        (*f)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
      }
      if (done.fetch_add(1) + 1 == n) {
        std::lock_guard<std::mutex> lock(mu);
        cv.notify_all();
      }
    }
  }
};

}  // namespace

void setDataThreads(int threads) { pool().resize(std::max(1, threads)); }

int dataThreads() { return pool().size(); }

void dataParallelFor(int64_t n, const std::function<void(int64_t)>& f) {
  if (n <= 0) return;
  auto job = std::make_shared<Job>();
  job->n = n;
  job->f = &f;
  // Only pool threads work, so -j bounds the data threads however many batches are in flight.
  int64_t tasks = std::min<int64_t>(pool().size(), n);
  for (int64_t k = 0; k < tasks; ++k) pool().submit([job] { job->run(); });
  {
    std::unique_lock<std::mutex> lock(job->mu);
    job->cv.wait(lock, [&] { return job->done.load() == job->n; });
  }
  if (job->error) std::rethrow_exception(job->error);
}

}  // namespace ssql

SSQL_OP(setDataThreads) {
  int64_t n = a.integer(0, "threads");
  if (n < 1 || n > 256) throw ssql::RangeError("setDataThreads(): threads must be in 1..256");
  ssql::setDataThreads(static_cast<int>(n));
  return a.env().Undefined();
}

SSQL_OP(getDataThreads) { return Napi::Number::New(a.env(), ssql::dataThreads()); }
