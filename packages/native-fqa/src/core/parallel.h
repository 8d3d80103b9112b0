// Tasks spread over threads, for the sweep (bands of one region) and the fused region sweep (bands
// of many regions).
#pragma once
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace fqa {

// Runs task(index, worker) for every index in [0, count) on `threads` workers (worker in
// [0, threads)), each taking the next index; the first exception stops the others (no new task
// starts) and is rethrown once all have stopped. With several workers each gets a new thread and
// the caller only waits: a caller that also worked (a libuv thread, in sweep()'s AsyncWorker) had
// its new thread placed on its own core while the event loop's thread still looked busy, and the
// two shared one core for most of a short sweep (1.1 CPUs busy of 2: FocusLiteNN-1 235 px at 35k
// patches/s on 2 threads against 51k).
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
  if (threads <= 1) {
    worker(0);
  } else {
    std::vector<std::thread> pool;
    pool.reserve(size_t(threads));
    try {
      for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);
    } catch (...) {  // no thread to be had: stop the started ones, then report it
      fail(std::current_exception());
    }
    for (auto& t : pool) t.join();
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace fqa
