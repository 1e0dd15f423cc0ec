// app/bench.hpp
// `spool bench`: enqueue and processing throughput, Redis CPU per job and
// end-to-end latency percentiles against a Redis server, printed as text or one
// JSON object.
#pragma once

#include <cstddef>
#include <string>

namespace spool::app {

struct bench_options {
    std::string redis_url;       // empty: start a throwaway redis-server
    std::size_t jobs = 20000;    // N for the throughput phases
    int concurrency = 50;        // echo worker concurrency for the process phase
    double rate = 500;           // jobs per second for the latency phase
    std::size_t latency_jobs = 2000;
    std::size_t batch = 1000;    // jobs per submit_many call in the bulk phase
    // Producer and worker event loops poll this long after each event before
    // they block (spool/event_loop.hpp; the default of `spool worker`). 0: off.
    long busy_poll_us = 0;
    // 0: the process phase runs one worker inside the bench process (its own
    // thread and connections). K > 0: K `spool worker` processes drain the queue.
    int workers = 0;
    // Size of each job's payload (and so of the echo result); 0: a tiny {"i":n}.
    std::size_t payload_bytes = 0;
    // durability: replicated for every phase (WAIT for one replica after each
    // submit and completion call): needs a replica of the bench's Redis.
    bool replicated = false;
    // Every bench queue spread over this many partitions (one hash tag each): on
    // a Redis Cluster, their load spreads over the masters.
    int partitions = 1;
    bool json = false;
};

// Runs every phase; returns the process exit code.
int run_bench(const bench_options& opts);

}  // namespace spool::app
