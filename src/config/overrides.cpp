// src/config/overrides.cpp
// The layers above the file: environment variables (the original deployment's
// names) and command-line flags, each validated as strictly as the YAML.
#include "config/config.hpp"

#include <fmt/format.h>

#include <boost/url.hpp>

#include <charconv>
#include <limits>

namespace spool::conf {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::string lower(std::string_view s) {
    std::string out{s};
    for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
}

// Splits a comma list, trimming items and dropping empty ones.
std::vector<std::string> split_list(std::string_view s) {
    std::vector<std::string> out;
    while (!s.empty()) {
        auto comma = s.find(',');
        auto item = trim(s.substr(0, comma));
        if (!item.empty()) out.emplace_back(item);
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
    }
    return out;
}

std::string range_text(std::int64_t min, std::int64_t max) {
    if (max == std::numeric_limits<std::int64_t>::max()) return fmt::format("an integer >= {}", min);
    return fmt::format("an integer {}..{}", min, max);
}

// `where` is "environment API_PORT" or "--port".
config_result<std::int64_t> to_integer(std::string_view where, std::string_view text, std::int64_t min,
                                       std::int64_t max) {
    auto s = trim(text);
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v < min || v > max)
        return config_error{fmt::format("{}: expected {}, got \"{}\"", where, range_text(min, max), text)};
    return v;
}

config_result<std::int64_t> check_range(std::string_view where, std::int64_t v, std::int64_t min,
                                        std::int64_t max) {
    if (v < min || v > max)
        return config_error{fmt::format("{}: expected {}, got {}", where, range_text(min, max), v)};
    return v;
}

config_result<bool> to_boolean(std::string_view where, std::string_view text) {
    auto s = lower(trim(text));
    if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
    if (s == "0" || s == "false" || s == "no" || s == "off") return false;
    return config_error{fmt::format("{}: expected true or false, got \"{}\"", where, text)};
}

config_status set_log_level(config& c, std::string_view where, std::string_view text) {
    auto level = normalize_log_level(text);
    if (!level)
        return config_error{fmt::format(
            "{}: expected trace, debug, info, warn, error, critical or off, got \"{}\"", where, text)};
    c.log_level = *level;
    return {};
}

constexpr auto i64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t i32_max = std::numeric_limits<int>::max();

}  // namespace

std::optional<std::string> normalize_log_level(std::string_view level) {
    auto s = lower(trim(level));
    if (s == "warning") return "warn";
    if (s == "err") return "error";
    if (s == "fatal") return "critical";
    for (const char* known : {"trace", "debug", "info", "warn", "error", "critical", "off"})
        if (s == known) return s;
    return std::nullopt;
}

config_result<std::map<std::string, std::string>> parse_api_keys(std::string_view text) {
    std::map<std::string, std::string> keys;
    for (const auto& item : split_list(text)) {
        std::string_view sv = item;
        auto colon = sv.find(':');
        auto key = trim(sv.substr(0, colon));
        auto tenant =
            colon == std::string_view::npos ? std::string_view{"default"} : trim(sv.substr(colon + 1));
        if (key.empty()) return config_error{fmt::format("SPOOL_API_KEYS: empty key in \"{}\"", item)};
        if (tenant.empty()) return config_error{fmt::format("SPOOL_API_KEYS: empty tenant in \"{}\"", item)};
        if (!keys.emplace(std::string{key}, std::string{tenant}).second)
            return config_error{"SPOOL_API_KEYS: a key is listed twice"};  // never echo a secret
    }
    return keys;
}

config_status apply_environment(config& c, const getenv_fn& getenv) {
    auto get = [&](const char* name) -> std::optional<std::string> {
        const char* v = getenv ? getenv(name) : nullptr;
        if (!v || !*v) return std::nullopt;
        return std::string{v};
    };
    auto where = [](const char* name) { return fmt::format("environment {}", name); };

    if (auto v = get("REDIS_URL")) c.redis_url = *v;
    if (auto v = get("REDIS_DB")) {
        auto db = to_integer(where("REDIS_DB"), *v, 0, 1'000'000);
        if (!db) return db.error();
        c.redis_db = static_cast<int>(*db);
    }
    if (auto v = get("REDIS_PASSWORD")) c.redis_password = *v;
    if (auto v = get("SPOOL_DURABILITY")) {
        if (*v != "replicated" && *v != "async")
            return config_error{
                fmt::format("{}: expected replicated or async, got \"{}\"", where("SPOOL_DURABILITY"), *v)};
        c.replicated = *v == "replicated";
    }
    if (auto v = get("REDIS_CLUSTER")) {
        auto on = to_boolean(where("REDIS_CLUSTER"), *v);
        if (!on) return on.error();
        c.redis_cluster = *on;
    }
    if (auto v = get("REDIS_KEY_PREFIX")) c.prefix = *v;
    if (auto v = get("RESULT_TTL_SECONDS")) {
        auto ttl = to_integer(where("RESULT_TTL_SECONDS"), *v, 1, i32_max);
        if (!ttl) return ttl.error();
        c.result_ttl = std::chrono::seconds{*ttl};
    }
    if (auto v = get("SOLVER_WORKERS")) {
        auto n = to_integer(where("SOLVER_WORKERS"), *v, 0, 1000);
        if (!n) return n.error();
        c.workers = static_cast<int>(*n);
    }
    if (auto v = get("START_WORKERS")) {
        auto start = to_boolean(where("START_WORKERS"), *v);
        if (!start) return start.error();
        if (!*start) c.workers = 0;  // an API-only node
    }
    if (auto v = get("API_PORT")) {
        auto port = to_integer(where("API_PORT"), *v, 0, 65535);
        if (!port) return port.error();
        c.api.port = static_cast<std::uint16_t>(*port);
    }
    if (auto v = get("WORKER_CONCURRENCY")) {
        auto n = to_integer(where("WORKER_CONCURRENCY"), *v, 1, 100000);
        if (!n) return n.error();
        c.worker.concurrency = static_cast<int>(*n);
    }
    if (auto v = get("WORKER_BUSY_POLL_US")) {
        auto n = to_integer(where("WORKER_BUSY_POLL_US"), *v, 0, 1000000);
        if (!n) return n.error();
        c.worker.busy_poll = std::chrono::microseconds{*n};
    }
    if (auto v = get("WORKER_QUEUES")) {
        auto queues = split_list(*v);
        if (queues.empty())
            return config_error{fmt::format("{}: no queue names in \"{}\"", where("WORKER_QUEUES"), *v)};
        c.worker.queues = std::move(queues);
    }
    if (auto v = get("WORKER_ID")) c.worker.id = *v;
    if (auto v = get("LOG_LEVEL")) {
        if (auto s = set_log_level(c, where("LOG_LEVEL"), *v); !s) return s;
    }
    if (auto v = get("SPOOL_API_KEYS")) {
        auto keys = parse_api_keys(*v);
        if (!keys) return keys.error();
        c.api.api_keys = std::move(*keys);
    }
    if (auto v = get("SPOOL_METRICS_KEY")) c.api.metrics_key = *v;
    if (auto v = get("SPOOL_DATA_DIR")) c.data_dir = *v;
    return {};
}

config_status apply_flags(config& c, const flag_values& f) {
    auto nonempty = [](const char* flag, const std::string& v) -> config_status {
        if (v.empty()) return config_error{fmt::format("{}: must not be empty", flag)};
        return {};
    };
    if (f.redis) c.redis_url = *f.redis;
    if (f.host) {
        if (auto s = nonempty("--host", *f.host); !s) return s;
        c.api.host = *f.host;
    }
    if (f.port) {
        auto port = check_range("--port", *f.port, 0, 65535);
        if (!port) return port.error();
        c.api.port = static_cast<std::uint16_t>(*port);
    }
    if (f.workers) {
        auto n = check_range("--workers", *f.workers, 0, 1000);
        if (!n) return n.error();
        c.workers = static_cast<int>(*n);
    }
    if (f.data_dir) {
        if (auto s = nonempty("--data-dir", *f.data_dir); !s) return s;
        c.data_dir = *f.data_dir;
    }
    if (f.max_payload_bytes) {
        auto n = check_range("--max-payload-bytes", *f.max_payload_bytes, 1, i64_max);
        if (!n) return n.error();
        c.api.max_payload_bytes = static_cast<std::size_t>(*n);
    }
    if (f.queues) {
        std::vector<std::string> queues;
        for (const auto& item : *f.queues)
            for (auto& q : split_list(item)) queues.push_back(std::move(q));
        if (queues.empty()) return config_error{"--queues: no queue names given"};
        c.worker.queues = std::move(queues);
    }
    if (f.concurrency) {
        auto n = check_range("--concurrency", *f.concurrency, 1, 100000);
        if (!n) return n.error();
        c.worker.concurrency = static_cast<int>(*n);
    }
    if (f.busy_poll_us) {
        auto n = check_range("--busy-poll-us", *f.busy_poll_us, 0, 1000000);
        if (!n) return n.error();
        c.worker.busy_poll = std::chrono::microseconds{*n};
    }
    if (f.id) {
        if (auto s = nonempty("--id", *f.id); !s) return s;
        c.worker.id = *f.id;
    }
    if (f.log_level) {
        if (auto s = set_log_level(c, "--log-level", *f.log_level); !s) return s;
    }
    if (f.log_format) {
        if (*f.log_format != "text" && *f.log_format != "json")
            return config_error{
                fmt::format("--log-format: expected text or json, got \"{}\"", *f.log_format)};
        c.log_format = *f.log_format;
    }
    return {};
}

config_result<config> load(const flag_values& flags, const getenv_fn& getenv) {
    config c;
    if (flags.config) {
        auto file = load_file(*flags.config);
        if (!file) return file.error();
        c = std::move(*file);
    } else {
        c = default_config();
    }
    if (auto s = apply_environment(c, getenv); !s) return s.error();
    if (auto s = apply_flags(c, flags); !s) return s.error();
    return c;
}

std::string redis_url_of(const config& c) {
    if (c.redis_url.empty()) return {};
    std::string text = c.redis_url;
    if (text.find("://") == std::string::npos) text = "redis://" + text;
    if (c.redis_db < 0 && c.redis_password.empty() && !c.redis_cluster) return text;
    // A host list ("a:1,b:2": cluster seeds, sentinels) is not one URL authority:
    // stand one name in for it while editing.
    const std::string stand_in = "spool-host-list.invalid";
    std::string hosts;
    {
        auto start = text.find("://") + 3;
        auto end = text.find_first_of("/?#", start);
        if (end == std::string::npos) end = text.size();
        auto at = text.rfind('@', end);
        auto from = (at != std::string::npos && at >= start) ? at + 1 : start;
        if (text.substr(from, end - from).find(',') != std::string::npos) {
            hosts = text.substr(from, end - from);
            text = text.substr(0, from) + stand_in + text.substr(end);
        }
    }
    auto parsed = boost::urls::parse_uri(text);
    if (!parsed) return c.redis_url;  // parse_url reports the error where it is used
    boost::urls::url u{*parsed};
    if (!c.redis_password.empty()) u.set_password(c.redis_password);
    if (c.redis_db >= 0) {
        if (u.scheme() == "unix") {
            u.params().set("db", std::to_string(c.redis_db));
        } else if (std::string_view{u.scheme()}.ends_with("+sentinel")) {
            // redis+sentinel://.../<master>/<db>
            std::string path = u.path();
            auto second = path.find('/', 1);
            u.set_path(path.substr(0, second) + "/" + std::to_string(c.redis_db));
        } else {
            u.set_path("/" + std::to_string(c.redis_db));
        }
    }
    if (c.redis_cluster) u.params().set("cluster", *c.redis_cluster ? "1" : "0");
    std::string out{u.buffer()};
    if (!hosts.empty()) out.replace(out.find(stand_in), stand_in.size(), hosts);
    return out;
}

}  // namespace spool::conf
