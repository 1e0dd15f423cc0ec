// src/config/config.hpp
// Builds a spool::config from defaults < YAML file < environment < flags. Every
// step either succeeds completely or returns a config_error whose message says
// where and what, e.g.
//   spool.yaml:7: queues.solve.timeout_seconds: expected an integer, got "abc"
//   environment API_PORT: expected an integer 0..65535, got "abc"
//   --workers: expected an integer >= 0, got -1
// so nothing starts half-configured. Errors are values: config_result<T> is a
// boost::system::result<T, config_error>; its value() throws std::runtime_error
// with the message (for main() edges).
#pragma once

#include <spool/config.hpp>

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool::conf {

struct config_error {
    std::string message;
};

// Lets config_result<T>::value() throw std::runtime_error(message) (found by ADL).
[[noreturn]] void throw_exception_from_error(const config_error& e, const boost::source_location& loc);

template <class T>
using config_result = boost::system::result<T, config_error>;
using config_status = boost::system::result<void, config_error>;

// Reads and validates a YAML config file (the shape of DESIGN.md's Configuration
// section). Queues not in the file are not configured; a file without `queues`
// gets the default queues. Unknown keys, wrong types and out-of-range values are
// errors naming the file, the line and the key path.
config_result<config> load_file(const std::string& path);
// The same for YAML text; `source` names it in error messages.
config_result<config> parse(std::string_view yaml, std::string source);

// Returns the value of an environment variable, or nullptr (like ::getenv).
using getenv_fn = std::function<const char*(const char*)>;

// Applies REDIS_URL, REDIS_DB, REDIS_PASSWORD, REDIS_KEY_PREFIX, RESULT_TTL_SECONDS,
// SOLVER_WORKERS, START_WORKERS (false: 0 worker processes), API_PORT,
// WORKER_CONCURRENCY, WORKER_QUEUES (comma list), WORKER_ID, LOG_LEVEL,
// SPOOL_API_KEYS ("key:tenant,key2:tenant2"; a key without ":tenant" gets tenant
// "default") and SPOOL_DATA_DIR. An empty variable counts as unset. On error `c`
// may be partly updated; discard it.
config_status apply_environment(config& c, const getenv_fn& getenv);

// The Redis URL the roles connect with: the configured one with REDIS_DB,
// REDIS_PASSWORD and REDIS_CLUSTER applied (a host list and redis+sentinel://
// kept as they are). Empty when none is configured.
std::string redis_url_of(const config& c);

// The common command-line flags; unset fields leave the config alone.
struct flag_values {
    std::optional<std::string> redis;                // --redis URL
    std::optional<std::string> config;               // --config FILE (read by load())
    std::optional<std::string> host;                 // --host
    std::optional<std::int64_t> port;                // --port
    std::optional<std::int64_t> workers;             // --workers N
    std::optional<std::string> data_dir;             // --data-dir DIR
    std::optional<std::int64_t> max_payload_bytes;   // --max-payload-bytes N
    std::optional<std::vector<std::string>> queues;  // --queues a,b (items may hold commas)
    std::optional<std::int64_t> concurrency;         // --concurrency N
    std::optional<std::int64_t> busy_poll_us;        // --busy-poll-us N
    std::optional<std::string> id;                   // --id
    std::optional<std::string> log_level;            // --log-level
    std::optional<std::string> log_format;           // --log-format text|json
};

// Applies the set flags, validating their values. On error `c` may be partly updated.
config_status apply_flags(config& c, const flag_values& flags);

// The whole pipeline: flags.config (file) or default_config(), then the
// environment, then the flags.
config_result<config> load(const flag_values& flags, const getenv_fn& getenv);

// Parses SPOOL_API_KEYS text: "key:tenant,key2:tenant2" -> {key: tenant}.
config_result<std::map<std::string, std::string>> parse_api_keys(std::string_view text);

// "info", "WARNING", "err" -> the spdlog level name ("info", "warn", "error"); nullopt if unknown.
std::optional<std::string> normalize_log_level(std::string_view level);

}  // namespace spool::conf
