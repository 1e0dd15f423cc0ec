// include/spool/worker.hpp
// spool::worker: the runtime inside `spool worker`. It claims jobs from Redis
// (blocking on Redis when idle, never polling), runs them through the handler
// bound to their queue with a concurrency limit, renews their leases, reports
// progress and outcomes, and on stop hands unfinished jobs back.
//
//   asio::io_context io;
//   spool::worker w{io, opts};
//   w.handle("solve", spool::handler::blocking([](spool::job_context& job) { return solve(job.payload()); }));
//   w.start();
//   io.run();   // until w.stop() completes
//
// Threading: the worker lives on `io` (one thread runs it). Blocking handlers run
// on its own thread pool; async handlers run on `io` and must not block.
#pragma once

#include <spool/handler.hpp>
#include <spool/job.hpp>
#include <spool/result.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace spool {

struct queue_options {
    int concurrency = 0;                              // 0: only the worker-wide limit applies
    std::chrono::milliseconds lease = default_lease;  // a silent worker's job is taken back after this
    std::chrono::milliseconds backoff_base{60000};    // retry n waits base * 2^(n-1), with jitter
    std::chrono::seconds timeout{0};                  // a ceiling on the job's timeout_seconds; 0: none
    bool replicated = false;                          // durability: replicated (completions WAIT for a replica)
    // `partitions: N`: claim from each of the queue's N partitions (and any other
    // partition Redis lists for it); `concurrency` holds for all of them together.
    int partitions = 1;
};

struct worker_options {
    std::string redis_url = "redis://127.0.0.1:6379/0";
    std::string prefix = "spool";
    std::string id;        // empty: <host>-<pid>
    int concurrency = 10;  // jobs at once, over all queues
    int threads = 0;       // thread pool for blocking handlers; 0: number of cores
    std::size_t max_claim_batch = 100;  // a claim takes at most this, and at most a third of concurrency
    std::chrono::milliseconds heartbeat{2000};
    std::chrono::milliseconds cancel_grace{5000};  // after a cancel/timeout, how long a handler may take to stop
    std::string version = "0.1.0";
    // Called on the worker's io thread after a job's completion is stored (for
    // benchmarks and embedding programs; keep it cheap).
    std::function<void(const std::string& job_id)> on_completed;
};

struct worker_stats {
    std::uint64_t completed = 0;
    std::uint64_t failed = 0;      // failed attempts (retried or not)
    std::uint64_t lost = 0;        // outcomes discarded because the lease was lost
    std::uint64_t released = 0;    // handed back on stop
    std::size_t running = 0;
};

class worker {
public:
    worker(boost::asio::io_context& io, worker_options opts);
    ~worker();
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    // Binds `queue` to `h`. Call before start().
    void handle(std::string queue, handler h, queue_options qo = {});
    // Connects and starts claiming. Call once, from any thread before io runs or from io.
    void start();
    // Graceful stop: stop claiming, let running jobs finish within `grace`, then
    // cancel the rest and hand them back (attempt not counted), unregister.
    boost::asio::awaitable<void> stop(std::chrono::milliseconds grace);
    const std::string& id() const noexcept;
    worker_stats stats() const noexcept;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace spool
