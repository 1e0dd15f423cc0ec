// app/common.cpp
#include "app/common.hpp"

#include "config/config.hpp"

#include "util/log.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/url.hpp>

#include <csignal>
#include <cstdlib>
#include <iostream>

namespace spool::app {

void add_config_flags(CLI::App& cmd, conf::flag_values& f) {
    // Options store into temporaries that become the optionals only when given,
    // so "not given" stays distinguishable from a default (flags > env > file).
    auto opt_str = [&cmd](const char* name, std::optional<std::string>& target, const char* help) {
        cmd.add_option_function<std::string>(
            name, [&target](const std::string& v) { target = v; }, help);
    };
    auto opt_int = [&cmd](const char* name, std::optional<std::int64_t>& target, const char* help) {
        cmd.add_option_function<std::int64_t>(
            name, [&target](const std::int64_t& v) { target = v; }, help);
    };
    opt_str("--redis", f.redis,
            "Redis URL (redis://, rediss://, unix://); omit for the embedded redis-server");
    opt_str("--config", f.config, "YAML config file binding queues to handlers");
    opt_str("--log-level", f.log_level, "trace, debug, info, warn, error");
    opt_str("--log-format", f.log_format, "text or json");
    opt_str("--id", f.id, "worker id (default host-pid)");
    opt_int("--concurrency", f.concurrency, "jobs a worker runs at once");
    opt_int("--busy-poll-us", f.busy_poll_us,
            "worker: poll this long after work before sleeping (0: off, the default)");
    cmd.add_option_function<std::string>(
        "--queues",
        [&f](const std::string& v) {
            std::vector<std::string> q;
            std::size_t p = 0;
            while (p <= v.size()) {
                auto c = v.find(',', p);
                if (c == std::string::npos) c = v.size();
                if (c > p) q.push_back(v.substr(p, c - p));
                p = c + 1;
            }
            f.queues = q;
        },
        "queues to serve, comma-separated (default: every configured queue)");
}

std::optional<config> load_config(const conf::flag_values& flags) {
    auto c = conf::load(flags, [](const char* name) { return std::getenv(name); });
    if (!c) {
        std::cerr << "spool: " << c.error().message << "\n";
        return std::nullopt;
    }
    return std::move(*c);
}

std::string effective_redis_url(const config& c) { return conf::redis_url_of(c); }

asio::awaitable<int> wait_for_signal() {
    asio::signal_set signals{co_await asio::this_coro::executor, SIGINT, SIGTERM};
    auto [ec, sig] = co_await signals.async_wait(use_tuple);
    co_return ec ? 0 : sig;
}

}  // namespace spool::app
