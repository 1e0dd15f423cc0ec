// app/serve_command.cpp
// Start order: Redis (embedded when none is configured) -> connections ->
// HTTP server -> maintenance loops -> worker processes. Stop order on
// SIGINT/SIGTERM is the reverse: stop accepting and drain HTTP, stop the workers
// gracefully (they hand unfinished jobs back), stop the loops, then Redis.
#include "app/serve_command.hpp"

#include "app/common.hpp"
#include "http/server.hpp"
#include "maintenance/maintenance.hpp"
#include "redis/connection.hpp"
#include "redis/subscriber.hpp"
#include "schedule/scheduler.hpp"
#include "store/broker.hpp"
#include "store/schedules.hpp"
#include "supervisor/embedded_redis.hpp"
#include "supervisor/worker_pool.hpp"
#include "util/log.hpp"
#include "util/task_group.hpp"

#include <CLI/CLI.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace spool::app {

void add_serve_flags(CLI::App& cmd, conf::flag_values& f) {
    cmd.add_option_function<std::string>("--host", [&f](const std::string& v) { f.host = v; },
                                         "address the API binds (default 127.0.0.1)");
    cmd.add_option_function<std::int64_t>("--port", [&f](const std::int64_t& v) { f.port = v; },
                                          "API port (default 8080, env API_PORT)");
    cmd.add_option_function<std::int64_t>("--workers", [&f](const std::int64_t& v) { f.workers = v; },
                                          "worker processes to supervise (default 2; 0: API-only node)");
    cmd.add_option_function<std::string>("--data-dir", [&f](const std::string& v) { f.data_dir = v; },
                                         "embedded Redis data directory (default ./spool-data)");
    cmd.add_option_function<std::int64_t>("--max-payload-bytes",
                                          [&f](const std::int64_t& v) { f.max_payload_bytes = v; },
                                          "largest request body (default 1 MiB)");
}

namespace {

double env_number(const char* name, double fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    char* end = nullptr;
    double d = std::strtod(v, &end);
    return end && *end == '\0' && d >= 0 ? d : fallback;
}

// This binary's path, so `ps` shows the workers as `.../spool worker ...`; falls
// back to /proc/self/exe (which also survives the file being replaced on disk).
std::string self_path() {
    std::error_code ec;
    auto p = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    if (ec || p.empty() || p.ends_with(" (deleted)") || !std::filesystem::exists(p, ec)) return "/proc/self/exe";
    return p;
}

// Arguments for the worker children: the same config file and overrides.
std::vector<std::string> worker_argv(const conf::flag_values& f, const std::string& url) {
    std::vector<std::string> argv{self_path(), "worker", "--redis", url};
    auto add = [&argv](const char* flag, const std::string& v) {
        argv.push_back(flag);
        argv.push_back(v);
    };
    if (f.config) add("--config", *f.config);
    if (f.concurrency) add("--concurrency", std::to_string(*f.concurrency));
    if (f.busy_poll_us) add("--busy-poll-us", std::to_string(*f.busy_poll_us));
    if (f.log_level) add("--log-level", *f.log_level);
    if (f.log_format) add("--log-format", *f.log_format);
    if (f.queues) {
        std::string q;
        for (const auto& s : *f.queues) q += (q.empty() ? "" : ",") + s;
        add("--queues", q);
    }
    return argv;
}

struct serve_state {
    int exit_code = 0;
};

asio::awaitable<void> serve(asio::io_context& io, config cfg, conf::flag_values flags, serve_state* state) {
    auto log = log::get("serve");
    auto ex = io.get_executor();
    std::string url = effective_redis_url(cfg);
    std::unique_ptr<supervisor::embedded_redis> embedded;
    if (url.empty()) {
        supervisor::embedded_redis_options eo;
        eo.data_dir = cfg.data_dir;
        embedded = std::make_unique<supervisor::embedded_redis>(ex, eo);
        auto started = co_await embedded->start();
        if (!started) {
            std::cerr << "spool serve: " << embedded->last_error() << "\n";
            state->exit_code = 1;
            co_return;
        }
        url = *started;
        log->info("no Redis configured: started an embedded redis-server (AOF on) at {}, data in {}", url,
                  embedded->data_dir().string());
    }
    auto ropts = redis::parse_url(url);
    if (!ropts) {
        std::cerr << "spool serve: invalid Redis URL: " << url << "\n";
        state->exit_code = 2;
        co_return;
    }
    ropts->client_name = "spool-api";
    // The API answers 503 at once while Redis is down rather than holding each
    // request for its deadline (the maintenance loops simply retry next tick).
    ropts->fail_fast_when_down = true;
    auto conn = redis::connection::create(ex, *ropts);
    conn->start();
    auto sub = redis::subscriber::create(ex, *ropts);
    sub->start();
    if (!co_await conn->wait_connected(std::chrono::seconds{5}))
        log->warn("Redis at {} is not reachable yet; the API answers 503 until it is", redis::describe(*ropts));

    store::broker_options bo;
    bo.prefix = cfg.prefix;
    bo.max_payload_bytes = cfg.api.max_payload_bytes;
    if (cfg.replicated) bo.replicated_queues.insert("*");
    for (const auto& [name, q] : cfg.queues)
        if (q.replicated) (*q.replicated ? bo.replicated_queues : bo.async_queues).insert(name);
    for (const auto& [name, q] : cfg.queues)
        if (q.partitions > 1) bo.partitions[name] = q.partitions;
    store::broker broker{*conn, bo};

    http::server_options so;
    so.host = cfg.api.host;
    so.port = cfg.api.port;
    so.max_payload_bytes = cfg.api.max_payload_bytes;
    so.api_keys = cfg.api.api_keys;
    so.metrics_key = cfg.api.metrics_key;
    so.result_ttl = cfg.result_ttl;
    so.rate_limit_per_second = env_number("SPOOL_RATE_LIMIT", 0);
    so.rate_limit_burst = static_cast<std::uint32_t>(env_number("SPOOL_RATE_BURST", 0));
    for (const auto& [name, policy] : cfg.queues) so.queue_defaults[name] = {policy.max_retries, policy.timeout};
    // The dashboard's history bucket (docs/keys.md); every API replica must use the same.
    so.history_bucket = std::chrono::milliseconds{
        static_cast<long long>(std::max(0.1, env_number("SPOOL_HISTORY_BUCKET_SECONDS", 10)) * 1000)};
    http::server srv{io, so, broker, conn, sub};
    if (auto r = srv.start(); !r) {
        std::cerr << "spool serve: cannot listen on " << so.host << ":" << so.port << ": " << r.error().message()
                  << "\n";
        state->exit_code = 1;
        sub->stop();
        conn->stop();
        if (embedded) co_await embedded->stop();
        co_return;
    }

    task_group loops_group{ex};
    maintenance::loops loops{broker};
    loops.spawn(loops_group);

    // Recurring schedules: every replica runs the scheduler; one script decides each tick.
    store::schedule_store schedules{*conn, broker};
    auto sched_sub = redis::subscriber::create(ex, *ropts);
    sched_sub->start();
    schedule::scheduler sched{ex, schedules, sched_sub};
    sched.spawn(loops_group);
    {
        // A schedule that leaves max_retries / timeout_seconds out gets its queue's
        // configured policy, as a job submitted over HTTP does. Run with none too:
        // schedules an earlier config declared are removed.
        std::vector<std::string> defs;
        for (const auto& s : cfg.schedules) {
            auto v = boost::json::parse(s.definition);
            auto& o = v.as_object();
            auto q = o.contains("queue") && o["queue"].is_string() ? std::string{o["queue"].as_string()}
                                                                   : std::string{default_queue};
            if (const auto* p = cfg.find_queue(q)) {
                if (!o.contains("max_retries")) o["max_retries"] = p->max_retries;
                if (!o.contains("timeout_seconds")) o["timeout_seconds"] = p->timeout.count();
            }
            defs.push_back(boost::json::serialize(v));
        }
        loops_group.spawn(schedule::upsert_all(schedules, std::move(defs)), "config_schedules");
    }

    std::unique_ptr<supervisor::worker_pool> pool;
    if (cfg.workers > 0) {
        supervisor::worker_pool_options po;
        po.argv = worker_argv(flags, url);
        po.workers = static_cast<std::size_t>(cfg.workers);
        pool = std::make_unique<supervisor::worker_pool>(ex, po);
        pool->start();
    }
    log->info("spool serve: API on http://{}:{} ({} worker process{}, auth {}, redis {})", so.host, srv.port(),
              cfg.workers, cfg.workers == 1 ? "" : "es", so.api_keys.empty() ? "off" : "on", redis::describe(*ropts));

    int sig = co_await wait_for_signal();
    log->info("signal {}: shutting down", sig);
    co_await srv.stop(std::chrono::seconds{5});
    if (pool) co_await pool->stop(cfg.worker.grace + std::chrono::seconds{5});
    loops_group.cancel();
    co_await loops_group.wait(std::chrono::seconds{2});
    sched_sub->stop();
    sub->stop();
    conn->stop();
    if (embedded) co_await embedded->stop();
    log->info("stopped");
}

}  // namespace

int run_serve(const conf::flag_values& flags) {
    auto cfg = load_config(flags);
    if (!cfg) return 2;
    log::setup(cfg->log_level, cfg->log_format);
    asio::io_context io;
    serve_state state;
    asio::co_spawn(io, serve(io, *cfg, flags, &state), [&](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                std::cerr << "spool serve: " << ex.what() << "\n";
            }
            state.exit_code = 1;
        }
        io.stop();
    });
    io.run();
    return state.exit_code;
}

}  // namespace spool::app
