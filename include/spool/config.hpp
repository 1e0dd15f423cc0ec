// include/spool/config.hpp
// Spool's configuration as plain values: where Redis is, which handler serves each
// queue and with what policy, and the worker, API and process settings. It is
// assembled from defaults < YAML file < environment < flags by src/config (see
// config/config.hpp for the loader); here are only the values and their defaults.
//
// Defaults (DESIGN.md): max_retries 3, job timeout 1800 s, result TTL 3600 s, lease
// 30 s, retry backoff base 60 s, API on 127.0.0.1:8080 with 1 MiB payloads, 2 worker
// processes under `serve`, data in ./spool-data, worker grace 25 s, worker
// concurrency = number of CPU cores (at least 1), key prefix "spool".
#pragma once

#include <spool/event_loop.hpp>
#include <spool/job.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace spool {

inline constexpr std::string_view default_key_prefix = "spool";
inline constexpr std::chrono::milliseconds default_backoff_base{60000};
inline constexpr std::size_t default_max_output_bytes = 16 * 1024 * 1024;
inline constexpr std::chrono::milliseconds default_kill_grace{5000};
inline constexpr std::chrono::seconds default_worker_grace{25};
inline constexpr std::uint16_t default_api_port = 8080;
inline constexpr int default_worker_processes = 2;
inline constexpr std::chrono::milliseconds default_simulation_duration{1000};
inline constexpr int default_simulation_steps = 10;

// Jobs a worker process runs at once when not configured: one per CPU core.
inline int default_worker_concurrency() noexcept {
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

// `handler: exec` — runs `command` (argv, no shell) once per attempt.
struct exec_options {
    std::vector<std::string> command;        // required; argv[0] is looked up in PATH
    std::string cwd;                         // empty: the worker's working directory
    std::map<std::string, std::string> env;  // added to (and overriding) the worker's environment
    std::size_t max_output_bytes = default_max_output_bytes;    // per stream (stdout, stderr)
    std::chrono::milliseconds kill_grace = default_kill_grace;  // SIGTERM → SIGKILL
};

// `handler: http` — sends the payload to `url` and stores the JSON response.
struct http_options {
    std::string url;                             // required; http:// or https://
    std::map<std::string, std::string> headers;  // sent with every request
    std::chrono::milliseconds timeout{0};        // 0: the job's timeout
    std::string method = "POST";
};

// `handler: simulation` — defaults for the payload's duration_ms, steps, fail, fail_probability.
struct simulation_options {
    std::chrono::milliseconds duration = default_simulation_duration;
    int steps = default_simulation_steps;
    bool fail = false;
    double fail_probability = 0.0;  // 0..1
};

// How one queue is served. `handler` names a built-in ("exec", "http",
// "simulation", "echo") or a C++ handler registered in code under that name.
// Only the options block of the chosen built-in is meaningful.
struct queue_policy {
    std::string name;
    std::string handler;
    std::chrono::seconds timeout = default_job_timeout;
    int max_retries = default_max_retries;
    std::chrono::milliseconds backoff_base = default_backoff_base;  // retry n waits base * 2^n, with jitter
    std::chrono::seconds lease = default_lease;  // a silent worker's job is taken back after this
    int concurrency = 0;  // per-worker limit for this queue; 0: only the worker's limit
    // durability: replicated (true) or async (false); unset: the config's `durability`.
    std::optional<bool> replicated;
    // Physical queues the queue is spread over (1..64), each its own hash tag:
    // on a Redis Cluster its load spreads over shards (docs/operations.md).
    int partitions = 1;
    exec_options exec;
    http_options http;
    simulation_options simulation;
};

// A recurring schedule from the config file's `schedules:` section, already
// validated; `definition` is its JSON form (the body POST /api/schedules
// takes). `spool serve` creates or updates each at start.
struct schedule_config {
    std::string name;
    std::string definition;  // JSON object text
};

// `spool worker` (and each worker process of `spool serve`).
struct worker_config {
    std::string id;                   // empty: the runtime makes one (host-pid-random)
    std::vector<std::string> queues;  // empty: every configured queue
    int concurrency = default_worker_concurrency();
    std::chrono::seconds grace = default_worker_grace;  // SIGTERM: time to finish running jobs
    // After each burst of work the event loop polls this long before it blocks
    // (spool/event_loop.hpp); 0 blocks at once. WORKER_BUSY_POLL_US / --busy-poll-us.
    std::chrono::microseconds busy_poll = default_busy_poll;
};

// The HTTP API of `spool serve`.
struct api_config {
    std::string host = "127.0.0.1";
    std::uint16_t port = default_api_port;  // 0: any free port
    std::size_t max_payload_bytes = default_max_payload_bytes;
    // SPOOL_API_KEYS: API key -> tenant. Empty: authentication is off.
    std::map<std::string, std::string> api_keys;
    // SPOOL_METRICS_KEY: when set, GET /metrics needs `Authorization: Bearer <it>`
    // (or an admin API key). Empty: /metrics is open, for a scraper on a private network.
    std::string metrics_key;
};

struct config {
    std::string redis_url;       // empty: none configured (`serve` starts an embedded redis-server)
    // Redis Cluster: true (`redis_cluster: true`, REDIS_CLUSTER=true), false, or found
    // out at the first connect (unset).
    std::optional<bool> redis_cluster;
    int redis_db = -1;           // REDIS_DB; -1: the URL's db (or 0)
    std::string redis_password;  // REDIS_PASSWORD; empty: the URL's password, if any
    std::string prefix{default_key_prefix};
    std::chrono::seconds result_ttl = default_result_ttl;
    std::map<std::string, queue_policy, std::less<>> queues;
    std::vector<schedule_config> schedules;
    worker_config worker;
    api_config api;
    int workers = default_worker_processes;  // worker processes `serve` supervises; 0: API-only node
    std::string data_dir = "./spool-data";
    // `durability: replicated` (SPOOL_DURABILITY): submits and completions wait for
    // a replica (WAIT), on every queue that does not say `durability: async`.
    bool replicated = false;
    bool queue_replicated(std::string_view queue) const {
        auto it = queues.find(queue);
        if (it != queues.end() && it->second.replicated) return *it->second.replicated;
        return replicated;
    }
    std::string log_level = "info";   // trace, debug, info, warn, error, critical, off
    std::string log_format = "text";  // text or json
    std::string source;               // the config file it was read from; empty: none

    // The configured policy of `queue`, or nullptr.
    const queue_policy* find_queue(std::string_view queue) const {
        auto it = queues.find(queue);
        return it == queues.end() ? nullptr : &it->second;
    }
    // The configured policy of `queue`; an unconfigured queue gets the default
    // policy with `handler` = the queue's own name (a C++ handler registered as
    // worker.handle(queue, fn)).
    queue_policy policy_for(std::string_view queue) const {
        if (auto* p = find_queue(queue)) return *p;
        queue_policy p;
        p.name = std::string{queue};
        p.handler = std::string{queue};
        return p;
    }
    // The queues a worker serves: worker.queues, or every configured queue when empty.
    std::vector<std::string> worker_queues() const {
        if (!worker.queues.empty()) return worker.queues;
        std::vector<std::string> names;
        for (const auto& [name, policy] : queues) names.push_back(name);
        return names;
    }
};

// The configuration used without a config file: queues `default` and `solve` run
// `echo`, `simulation` runs `simulation`; everything else at its default.
config default_config();

}  // namespace spool
