// A small fork-join pool: GEMM calls come many times per training step, and starting threads per call
// (plus first-touching fresh packing buffers) would cost more than a mid-sized product.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace finetune {

class ThreadPool {
 public:
  explicit ThreadPool(int size) : size_(size < 1 ? 1 : size) {}
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  // Runs job(worker) on the caller (worker 0) and on those of workers 1..count-1 that pick the job up before the
  // caller finishes its own share; returns when every worker that joined is done. So `job` must pull its work
  // from a shared counter: on a busy machine the caller may do all of it rather than wait for a thread the OS
  // has not scheduled. `job` must not throw. Not reentrant: callers serialise.
  void run(int count, const std::function<void(int)>& job);

 private:
  void start_workers(int wanted);
  void loop(int index, uint32_t seen);

  const int size_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  // Set before state_ announces a job (release); read by workers that joined it (acquire).
  const std::function<void(int)>* job_ = nullptr;
  // generation << 32 | closed bit | workers joined: joining and closing are one atomic word, so a worker that
  // wakes late can never join a job the caller has already stopped waiting for.
  std::atomic<uint64_t> state_{0};
  std::atomic<int> finished_{0};
};

}  // namespace finetune
