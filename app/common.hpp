// app/common.hpp
// What the server-side roles (serve, worker) share: the common flags, loading
// the configuration (file < environment < flags), the effective Redis URL, and
// waiting for SIGINT/SIGTERM.
#pragma once

#include "config/config.hpp"
#include "util/asio.hpp"

#include <spool/config.hpp>

#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace spool::app {

// Adds --redis, --config, --log-level, --log-format and the role's own flags
// (see the .cpp) to `cmd`, writing into `flags`.
void add_config_flags(CLI::App& cmd, conf::flag_values& flags);

// Loads the configuration; on error prints "spool: <message>" and returns nullopt.
std::optional<config> load_config(const conf::flag_values& flags);

// The Redis URL with REDIS_DB / REDIS_PASSWORD applied; empty when none is configured.
std::string effective_redis_url(const config& c);

// Completes with the signal number on the first SIGINT or SIGTERM.
asio::awaitable<int> wait_for_signal();

}  // namespace spool::app
