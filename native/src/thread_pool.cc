#include "thread_pool.h"

#include <chrono>
#include <system_error>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FINETUNE_PAUSE() _mm_pause()
#else
#define FINETUNE_PAUSE() std::this_thread::yield()
#endif

namespace finetune {
namespace {

constexpr uint64_t kClosed = uint64_t{1} << 31;
constexpr uint64_t kJoinedMask = kClosed - 1;
uint32_t generation_of(uint64_t state) { return static_cast<uint32_t>(state >> 32); }

// Waking a sleeping thread costs tens of microseconds (far more on a VM), as much as a 128^3 product, and a
// training step issues its matmuls back to back; so both sides spin this long before sleeping. The periodic
// yield hands the core over when the machine is oversubscribed.
constexpr auto kSpin = std::chrono::microseconds(200);

template <typename Done>
bool spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      FINETUNE_PAUSE();
    }
    if (std::chrono::steady_clock::now() > deadline) return done();
    std::this_thread::yield();
  }
}

}  // namespace

void ThreadPool::start_workers(int wanted) {
  while (static_cast<int>(workers_.size()) + 1 < wanted) {
    const int index = static_cast<int>(workers_.size()) + 1;
    // A new worker waits for the next job, not the one already announced.
    const uint32_t seen = generation_of(state_.load());
    try {
      workers_.emplace_back([this, index, seen] { loop(index, seen); });
    } catch (const std::system_error&) {
      return;  // run with the workers we have
    }
  }
}

void ThreadPool::run(int count, const std::function<void(int)>& job) {
  if (count > size_) count = size_;
  if (count > 1) start_workers(count);
  if (count <= 1 || workers_.empty()) {
    job(0);
    return;
  }
  const std::function<void(int)> bounded = [&job, count](int worker) {
    if (worker < count) job(worker);
  };
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &bounded;
    finished_.store(0, std::memory_order_relaxed);
    state_.store(static_cast<uint64_t>(generation_of(state_.load()) + 1) << 32, std::memory_order_release);
  }
  wake_.notify_all();
  job(0);
  const int joined = static_cast<int>(state_.fetch_or(kClosed, std::memory_order_acq_rel) & kJoinedMask);
  const auto done = [this, joined] { return finished_.load(std::memory_order_acquire) == joined; };
  if (!spin_until(done)) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, done);
  }
}

void ThreadPool::loop(int index, uint32_t seen) {
  for (;;) {
    const auto announced = [&] { return generation_of(state_.load(std::memory_order_acquire)) != seen; };
    if (!spin_until(announced)) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, announced);
    }
    uint64_t state = state_.load(std::memory_order_acquire);
    seen = generation_of(state);
    bool joined = false;
    while (!joined && !(state & kClosed) && generation_of(state) == seen) {
      joined = state_.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel, std::memory_order_acquire);
    }
    if (!joined) continue;  // the caller already finished this job alone
    (*job_)(index);
    finished_.fetch_add(1, std::memory_order_release);
    // Under the lock, so the notify cannot fall between the caller's predicate check and its wait.
    std::lock_guard<std::mutex> lock(mutex_);
    done_.notify_one();
  }
}

}  // namespace finetune
