// app/worker_command.cpp
// Binds each served queue to the handler its policy names, starts the runtime,
// and on SIGINT/SIGTERM stops claiming, lets running jobs finish within the
// grace period, hands back the rest, and exits 0.
#include "app/worker_command.hpp"

#include "app/common.hpp"
#include "handlers/registry.hpp"
#include "redis/options.hpp"
#include "util/log.hpp"

#include <spool/event_loop.hpp>
#include <spool/worker.hpp>

#include <iostream>

namespace spool::app {

namespace {

asio::awaitable<void> serve_until_signal(worker& w, std::chrono::milliseconds grace, int* signal_out) {
    *signal_out = co_await wait_for_signal();
    co_await w.stop(grace);
}

}  // namespace

int run_worker(const conf::flag_values& flags) {
    auto cfg = load_config(flags);
    if (!cfg) return 2;
    log::setup(cfg->log_level, cfg->log_format);
    auto log = log::get("worker");
    std::string url = effective_redis_url(*cfg);
    if (url.empty()) {
        std::cerr << "spool worker: no Redis configured: pass --redis URL or set REDIS_URL\n";
        return 2;
    }
    if (!redis::parse_url(url)) {
        std::cerr << "spool worker: invalid Redis URL: " << url << "\n";
        return 2;
    }
    worker_options wo;
    wo.redis_url = url;
    wo.prefix = cfg->prefix;
    wo.id = cfg->worker.id;
    wo.concurrency = cfg->worker.concurrency;

    asio::io_context io;
    worker w{io, wo};
    handlers::registry registry;
    for (const auto& q : cfg->worker_queues()) {
        auto policy = cfg->policy_for(q);
        auto h = registry.make(policy);
        if (!h) {
            std::cerr << "spool worker: queue " << q << ": no usable handler '" << policy.handler
                      << "' (built-ins: exec, http, simulation, echo)\n";
            return 2;
        }
        queue_options qo;
        qo.concurrency = policy.concurrency;
        qo.lease = policy.lease;
        qo.backoff_base = policy.backoff_base;
        qo.replicated = cfg->queue_replicated(q);
        qo.partitions = policy.partitions;
        if (cfg->find_queue(q)) qo.timeout = policy.timeout;  // the operator's ceiling
        w.handle(q, std::move(*h), qo);
    }
    try {
        w.start();
    } catch (const std::exception& e) {
        std::cerr << "spool worker: " << e.what() << "\n";
        return 2;
    }
    int sig = 0;
    asio::co_spawn(io, serve_until_signal(w, cfg->worker.grace, &sig), [&](std::exception_ptr e) {
        if (e) log->error("worker stopped with an exception");
        io.stop();
    });
    run_polling(io, cfg->worker.busy_poll);
    log->info("worker exited after signal {}", sig);
    return 0;
}

}  // namespace spool::app
