#include "spindle/runtime/blocking.hpp"

#include <condition_variable>
#include <deque>
#include <system_error>
#include <thread>

namespace spindle::detail {
namespace {

class BlockingPool {
 public:
  void submit(std::function<void()> job) {
    std::unique_lock lock(mutex_);
    jobs_.push_back(std::move(job));
    // More queued jobs than idle threads to take them: start a thread, unless at the cap.
    if (jobs_.size() > idle_ && threads_ < kMaxBlockingThreads) {
      ++threads_;
      try {
        std::thread([this] { work(); }).detach();
      } catch (const std::system_error&) {
        --threads_;  // out of threads: the job waits for one that exists (or the next start)
        if (threads_ == 0) throw;
      }
    } else {
      work_available_.notify_one();
    }
  }

  BlockingPoolStats stats() {
    std::lock_guard lock(mutex_);
    return {threads_, idle_, jobs_.size()};
  }

 private:
  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      while (!jobs_.empty()) {
        std::function<void()> job = std::move(jobs_.front());
        jobs_.pop_front();
        lock.unlock();
        job();
        job = nullptr;  // destroyed outside the lock
        lock.lock();
      }
      ++idle_;
      const bool woken = work_available_.wait_for(lock, kBlockingKeepAlive, [this] { return !jobs_.empty(); });
      --idle_;
      if (!woken) {
        --threads_;
        return;
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable work_available_;
  std::deque<std::function<void()>> jobs_;
  std::size_t threads_ = 0;
  std::size_t idle_ = 0;
};

// Never destroyed: detached pool threads may outlive static destruction at exit.
BlockingPool& pool() {
  static BlockingPool* instance = new BlockingPool;
  return *instance;
}

}  // namespace

void submit_blocking(std::function<void()> job) { pool().submit(std::move(job)); }
BlockingPoolStats blocking_pool_stats() { return pool().stats(); }

}  // namespace spindle::detail
