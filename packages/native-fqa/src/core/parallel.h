// Tasks spread over threads, for the sweep (bands of one region) and the fused region sweep (bands
// of many regions).
#pragma once
#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace fqa {

// Threads kept between calls. A new thread per call started with nothing in its caches and its
// thread_local buffers (the sweep's row ring, permuted tap rows) allocated and first touched
// again, on every call: measured on 2 cores, two threads kept busy swept 64 px FocusLiteNN-1 at
// 300-320k patches/s where a sweep() with two new threads per call reached 240-265k (FocusLiteNN-10:
// 32-34k against 30-31k). Idle workers sleep on their own condition variable; the pool lives
// for the whole process (never destroyed, so no thread outlives it) and never shrinks: it holds as
// many threads as the most ever busy at once, each with its thread_local buffers (the largest
// band's: a ring of image rows, up to 2 MB of permuted tap rows).
class WorkerPool {
 public:
  static WorkerPool& shared() {
    static const bool forkHandled = pthread_atfork(nullptr, nullptr, [] { current() = new WorkerPool(); }) == 0;
    (void)forkHandled;
    return *current();
  }

  // Runs job(worker) on up to n pool threads (worker in [0, used)), returns how many ran it once
  // all have returned. Fewer than n when no more threads can be started (none: 0, the caller
  // runs the work itself). job must not throw.
  int run(int n, const std::function<void(int)>& job) {
    std::unique_lock<std::mutex> lock(mutex_);
    // Room for every worker to come back to idle_ (a detached thread must not throw).
    idle_.reserve(size_t(workers_ + n));
    Batch batch;
    int used = 0;
    for (; used < n; ++used) {
      Worker* w = idle_.empty() ? start() : take();
      if (!w) break;
      w->job = &job;
      w->id = used;
      w->batch = &batch;
      w->wake.notify_one();
    }
    batch.running += used;
    // A worker counts the batch down and signals while holding the pool's mutex: once the
    // caller sees zero, no worker touches the batch again.
    batch.finished.wait(lock, [&] { return batch.running == 0; });
    return used;
  }

 private:
  struct Batch {
    int running = 0;
    std::condition_variable finished;
  };
  struct Worker {
    std::condition_variable wake;
    const std::function<void(int)>* job = nullptr;
    int id = 0;
    Batch* batch = nullptr;
  };

  Worker* take() {
    Worker* w = idle_.back();
    idle_.pop_back();
    return w;
  }

  // A new worker (mutex_ held), or null when the system has no thread (or memory) to give.
  Worker* start() {
    Worker* w = new (std::nothrow) Worker();
    if (!w) return nullptr;
    try {
      std::thread(&WorkerPool::loop, this, w).detach();
    } catch (...) {
      delete w;
      return nullptr;
    }
    ++workers_;
    return w;
  }

  // The process's pool. A child forked without exec has none of the parent's threads (and maybe
  // a mutex some thread held): it starts a new pool, leaving the old one unused.
  static WorkerPool*& current() {
    static WorkerPool* pool = new WorkerPool();
    return pool;
  }

  void loop(Worker* w) {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      w->wake.wait(lock, [&] { return w->job != nullptr; });
      const std::function<void(int)>* job = w->job;
      Batch* batch = w->batch;
      w->job = nullptr;
      lock.unlock();
      (*job)(w->id);
      lock.lock();
      idle_.push_back(w);
      if (--batch->running == 0) batch->finished.notify_one();
    }
  }

  std::mutex mutex_;
  std::vector<Worker*> idle_;
  int workers_ = 0;  // started, idle or not
};

// Runs task(index, worker) for every index in [0, count) on `threads` workers (worker in
// [0, threads)), each taking the next index; the first exception stops the others (no new task
// starts) and is rethrown once all have stopped. With several workers each runs on a pool thread
// (WorkerPool) and the caller only waits: a caller that also worked (a libuv thread, in sweep()'s
// AsyncWorker) had its helper thread placed on its own core while the event loop's thread still
// looked busy, and the two shared one core for most of a short sweep (1.1 CPUs busy of 2:
// FocusLiteNN-1 235 px at 35k patches/s on 2 threads against 51k).
template <typename Task>
void runTasks(int threads, int64_t count, Task&& task) {
  std::atomic<int64_t> next{0};
  std::exception_ptr failure;
  std::mutex failureLock;
  auto fail = [&](std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(failureLock);
    if (!failure) failure = e;
    next.store(count);
  };
  auto worker = [&](int id) {
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= count) return;
      try {
        task(i, id);
      } catch (...) {
        fail(std::current_exception());
      }
    }
  };
  if (threads <= 1 || WorkerPool::shared().run(threads, [&](int id) { worker(id); }) == 0) worker(0);
  if (failure) std::rethrow_exception(failure);
}

}  // namespace fqa
