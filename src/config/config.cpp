// src/config/config.cpp
// The YAML side of the loader: walks the document with yaml-cpp, checking every key
// against the ones its section allows and every value against its type and range.
// Inside this file a problem is thrown as `bad_config` and turned into a
// config_error at parse(): the first problem found is the one reported.
#include "config/config.hpp"

#include "schedule/definition.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

namespace spool {

config default_config() {
    config c;
    for (const char* name : {"default", "solve"}) {
        queue_policy p;
        p.name = name;
        p.handler = "echo";
        c.queues.emplace(name, std::move(p));
    }
    queue_policy sim;
    sim.name = "simulation";
    sim.handler = "simulation";
    c.queues.emplace("simulation", std::move(sim));
    return c;
}

}  // namespace spool

namespace spool::conf {

void throw_exception_from_error(const config_error& e, const boost::source_location&) {
    throw std::runtime_error(e.message);
}

namespace {

struct bad_config {
    std::string message;
};

// Levenshtein distance, for "did you mean" hints on misspelt keys.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

std::string describe(const YAML::Node& n) {
    switch (n.Type()) {
        case YAML::NodeType::Null:
            return "null";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Map:
            return "a map";
        case YAML::NodeType::Scalar:
            return fmt::format("\"{}\"", n.Scalar());
        default:
            return "nothing";
    }
}

// One key of a map being read: its path ("queues.solve.timeout_seconds") and where it is.
struct entry {
    std::string path;
    YAML::Node key;
    YAML::Node value;
};

class reader {
public:
    explicit reader(std::string source) : source_{std::move(source)} {}

    [[noreturn]] void fail(const YAML::Mark& mark, const std::string& path, const std::string& what) const {
        if (mark.is_null() || mark.line < 0) throw bad_config{fmt::format("{}: {}: {}", source_, path, what)};
        throw bad_config{fmt::format("{}:{}: {}: {}", source_, mark.line + 1, path, what)};
    }
    [[noreturn]] void fail(const entry& e, const std::string& what) const { fail(mark_of(e), e.path, what); }
    [[noreturn]] void fail_key(const entry& e, const std::string& what) const {
        fail(e.key.Mark(), e.path, what);
    }

    // Null values (`key:` or `key: ~`) count as absent; yaml-cpp gives them no useful mark.
    static YAML::Mark mark_of(const entry& e) { return e.value.IsNull() ? e.key.Mark() : e.value.Mark(); }

    // Calls fn(entry) for each key of the map `node`, rejecting non-maps, duplicate
    // keys, keys not in `allowed`, and skipping null values.
    template <class Fn>
    void for_each(const YAML::Node& node, const std::string& path, const YAML::Mark& where,
                  const std::vector<std::string_view>& allowed, Fn&& fn) const {
        if (!node.IsMap())
            fail(node.IsNull() ? where : node.Mark(), path, "expected a map, got " + describe(node));
        std::set<std::string> seen;
        for (auto it = node.begin(); it != node.end(); ++it) {
            entry e{{}, it->first, it->second};
            if (!e.key.IsScalar()) fail(e.key.Mark(), path, "keys must be strings, got " + describe(e.key));
            const std::string& name = e.key.Scalar();
            e.path = path.empty() ? name : path + "." + name;
            if (!seen.insert(name).second) fail_key(e, "duplicate key");
            if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), name) == allowed.end())
                fail_key(e, unknown_key_message(name, allowed));
            if (e.value.IsNull()) continue;
            fn(e);
        }
    }

    // Like for_each, but any key is allowed (queue names, env and header maps).
    template <class Fn>
    void for_each_any(const YAML::Node& node, const std::string& path, const YAML::Mark& where,
                      Fn&& fn) const {
        for_each(node, path, where, {}, std::forward<Fn>(fn));
    }

    static std::string unknown_key_message(const std::string& name,
                                           const std::vector<std::string_view>& allowed) {
        std::string_view best;
        std::size_t best_distance = 3;  // suggest only close matches
        for (auto candidate : allowed) {
            auto d = edit_distance(name, candidate);
            if (d < best_distance) best_distance = d, best = candidate;
        }
        if (!best.empty()) return fmt::format("unknown key (did you mean \"{}\"?)", best);
        return fmt::format("unknown key (expected one of: {})", fmt::join(allowed, ", "));
    }

    std::string string(const entry& e) const {
        if (!e.value.IsScalar()) fail(e, "expected a string, got " + describe(e.value));
        return e.value.Scalar();
    }
    std::string nonempty_string(const entry& e) const {
        auto s = string(e);
        if (s.empty()) fail(e, "must not be empty");
        return s;
    }

    std::int64_t integer(const entry& e, std::int64_t min, std::int64_t max) const {
        std::int64_t v = 0;
        bool ok = false;
        if (e.value.IsScalar()) {
            const std::string& s = e.value.Scalar();
            auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
            ok = ec == std::errc{} && end == s.data() + s.size() && !s.empty();
        }
        if (!ok) fail(e, "expected an integer, got " + describe(e.value));
        if (v < min || v > max) fail(e, range_message(v, min, max));
        return v;
    }

    double number(const entry& e, double min, double max) const {
        double v = 0;
        bool ok = false;
        if (e.value.IsScalar()) {
            const std::string& s = e.value.Scalar();
            auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
            ok = ec == std::errc{} && end == s.data() + s.size() && !s.empty() && std::isfinite(v);
        }
        if (!ok) fail(e, "expected a number, got " + describe(e.value));
        if (v < min || v > max) fail(e, fmt::format("expected a number from {} to {}, got {}", min, max, v));
        return v;
    }

    bool boolean(const entry& e) const {
        if (e.value.IsScalar()) {
            std::string s = e.value.Scalar();
            for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            if (s == "true" || s == "yes" || s == "on") return true;
            if (s == "false" || s == "no" || s == "off") return false;
        }
        fail(e, "expected true or false, got " + describe(e.value));
    }

    std::vector<std::string> string_list(const entry& e) const {
        if (!e.value.IsSequence()) fail(e, "expected a list of strings, got " + describe(e.value));
        std::vector<std::string> out;
        for (std::size_t i = 0; i < e.value.size(); ++i) {
            entry item{fmt::format("{}[{}]", e.path, i), e.key, e.value[i]};
            if (!item.value.IsScalar()) fail(item, "expected a string, got " + describe(item.value));
            out.push_back(item.value.Scalar());
        }
        return out;
    }

    std::map<std::string, std::string> string_map(const entry& e) const {
        std::map<std::string, std::string> out;
        for_each_any(e.value, e.path, mark_of(e),
                     [&](const entry& item) { out[item.key.Scalar()] = string(item); });
        return out;
    }

    static std::string range_message(std::int64_t v, std::int64_t min, std::int64_t max) {
        if (max == std::numeric_limits<std::int64_t>::max())
            return fmt::format("expected an integer >= {}, got {}", min, v);
        return fmt::format("expected an integer from {} to {}, got {}", min, max, v);
    }

private:
    std::string source_;
};

constexpr auto i64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t i32_max = std::numeric_limits<int>::max();

const std::vector<std::string_view> common_queue_keys = {"handler",         "timeout_seconds", "max_retries",
                                                         "backoff_base_ms", "lease_seconds",   "concurrency",
                                                         "durability",      "partitions"};

// `durability: replicated | async`.
bool read_durability(const reader& r, const entry& e) {
    auto v = r.string(e);
    if (v != "replicated" && v != "async")
        r.fail(e, "expected replicated or async, got " + describe(e.value));
    return v == "replicated";
}
const std::vector<std::string_view> exec_keys = {"command", "cwd", "env", "max_output_bytes",
                                                 "kill_grace_ms"};
const std::vector<std::string_view> http_keys = {"url", "headers", "timeout_ms", "method"};
const std::vector<std::string_view> simulation_keys = {"duration_ms", "steps", "fail", "fail_probability"};

const std::vector<std::string_view>& keys_of(std::string_view handler) {
    static const std::vector<std::string_view> none;
    if (handler == "exec") return exec_keys;
    if (handler == "http") return http_keys;
    if (handler == "simulation") return simulation_keys;
    return none;
}

std::vector<std::string_view> allowed_queue_keys(std::string_view handler) {
    auto keys = common_queue_keys;
    const auto& own = keys_of(handler);
    keys.insert(keys.end(), own.begin(), own.end());
    return keys;
}

// Which built-in an option belongs to, for "not an option of handler X" errors.
std::string_view owner_of(std::string_view key) {
    for (std::string_view h : {"exec", "http", "simulation"}) {
        const auto& ks = keys_of(h);
        if (std::find(ks.begin(), ks.end(), key) != ks.end()) return h;
    }
    return {};
}

bool valid_http_url(const std::string& url) {
    auto u = boost::urls::parse_uri(url);
    if (!u) return false;
    return (u->scheme() == "http" || u->scheme() == "https") && !u->encoded_host().empty();
}

void read_exec_key(const reader& r, const entry& e, exec_options& x) {
    const auto& k = e.key.Scalar();
    if (k == "command") {
        x.command = r.string_list(e);
        if (x.command.empty()) r.fail(e, "must name a program (a non-empty list)");
        if (x.command[0].empty()) r.fail(e, "the program name must not be empty");
    } else if (k == "cwd") {
        x.cwd = r.nonempty_string(e);
    } else if (k == "env") {
        x.env = r.string_map(e);
        for (const auto& [name, value] : x.env)
            if (name.empty() || name.find('=') != std::string::npos)
                r.fail(e, fmt::format("invalid variable name \"{}\"", name));
    } else if (k == "max_output_bytes") {
        x.max_output_bytes = static_cast<std::size_t>(r.integer(e, 1, i64_max));
    } else if (k == "kill_grace_ms") {
        x.kill_grace = std::chrono::milliseconds{r.integer(e, 0, i32_max)};
    }
}

void read_http_key(const reader& r, const entry& e, http_options& h) {
    const auto& k = e.key.Scalar();
    if (k == "url") {
        h.url = r.nonempty_string(e);
        if (!valid_http_url(h.url))
            r.fail(e, fmt::format("expected an http:// or https:// URL, got \"{}\"", h.url));
    } else if (k == "headers") {
        h.headers = r.string_map(e);
    } else if (k == "timeout_ms") {
        h.timeout = std::chrono::milliseconds{r.integer(e, 1, i32_max)};
    } else if (k == "method") {
        auto m = r.string(e);
        for (auto& ch : m) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        static const std::array<std::string_view, 5> methods = {"POST", "PUT", "PATCH", "GET", "DELETE"};
        if (std::find(methods.begin(), methods.end(), m) == methods.end())
            r.fail(e, fmt::format("expected POST, PUT, PATCH, GET or DELETE, got {}", describe(e.value)));
        h.method = m;
    }
}

void read_simulation_key(const reader& r, const entry& e, simulation_options& s) {
    const auto& k = e.key.Scalar();
    if (k == "duration_ms")
        s.duration = std::chrono::milliseconds{r.integer(e, 0, i32_max)};
    else if (k == "steps")
        s.steps = static_cast<int>(r.integer(e, 0, 10000));
    else if (k == "fail")
        s.fail = r.boolean(e);
    else if (k == "fail_probability")
        s.fail_probability = r.number(e, 0.0, 1.0);
}

queue_policy read_queue(const reader& r, const entry& q) {
    queue_policy p;
    p.name = q.key.Scalar();
    if (p.name.empty()) r.fail_key(q, "a queue name must not be empty");
    if (p.name.size() > 128 || !std::all_of(p.name.begin(), p.name.end(), [](unsigned char c) {
            return std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == ':';
        }))
        r.fail_key(q, "a queue name is 1 to 128 letters, digits, '_', '-', '.' or ':'");
    if (!q.value.IsMap()) r.fail(q, "expected a map, got " + describe(q.value));
    // The handler decides which keys are allowed, so read it first.
    auto h = q.value["handler"];
    entry he{q.path + ".handler", q.key, h};
    if (!h || h.IsNull())
        r.fail_key(
            q,
            "handler: required (exec, http, simulation, echo, or the name of a handler registered in code)");
    p.handler = r.nonempty_string(he);

    std::vector<std::string_view> all = common_queue_keys;
    for (auto* ks : {&exec_keys, &http_keys, &simulation_keys}) all.insert(all.end(), ks->begin(), ks->end());
    auto allowed = allowed_queue_keys(p.handler);
    r.for_each(q.value, q.path, reader::mark_of(q), all, [&](const entry& e) {
        const auto& k = e.key.Scalar();
        if (std::find(allowed.begin(), allowed.end(), k) == allowed.end())
            r.fail_key(e,
                       fmt::format("not an option of handler {} (it belongs to {})", p.handler, owner_of(k)));
        if (k == "timeout_seconds")
            p.timeout = std::chrono::seconds{r.integer(e, 1, i32_max)};
        else if (k == "max_retries")
            p.max_retries = static_cast<int>(r.integer(e, 0, 1000));
        else if (k == "backoff_base_ms")
            p.backoff_base = std::chrono::milliseconds{r.integer(e, 0, i32_max)};
        else if (k == "lease_seconds")
            p.lease = std::chrono::seconds{r.integer(e, 1, i32_max)};
        else if (k == "concurrency")
            p.concurrency = static_cast<int>(r.integer(e, 0, 100000));
        else if (k == "durability")
            p.replicated = read_durability(r, e);
        else if (k == "partitions")
            p.partitions = static_cast<int>(r.integer(e, 1, 64));
        else if (p.handler == "exec")
            read_exec_key(r, e, p.exec);
        else if (p.handler == "http")
            read_http_key(r, e, p.http);
        else if (p.handler == "simulation")
            read_simulation_key(r, e, p.simulation);
    });
    if (p.handler == "exec" && p.exec.command.empty()) r.fail_key(q, "command: required for handler exec");
    if (p.handler == "http" && p.http.url.empty()) r.fail_key(q, "url: required for handler http");
    return p;
}

void read_worker(const reader& r, const entry& w, worker_config& o) {
    r.for_each(w.value, w.path, reader::mark_of(w), {"id", "queues", "concurrency", "grace_seconds"},
               [&](const entry& e) {
                   const auto& k = e.key.Scalar();
                   if (k == "id")
                       o.id = r.nonempty_string(e);
                   else if (k == "queues") {
                       o.queues = r.string_list(e);
                       for (std::size_t i = 0; i < o.queues.size(); ++i)
                           if (o.queues[i].empty()) r.fail(e, fmt::format("item {} is empty", i));
                   } else if (k == "concurrency")
                       o.concurrency = static_cast<int>(r.integer(e, 1, 100000));
                   else if (k == "grace_seconds")
                       o.grace = std::chrono::seconds{r.integer(e, 0, i32_max)};
               });
}

void read_api(const reader& r, const entry& a, api_config& o) {
    r.for_each(a.value, a.path, reader::mark_of(a), {"host", "port", "max_payload_bytes"},
               [&](const entry& e) {
                   const auto& k = e.key.Scalar();
                   if (k == "host")
                       o.host = r.nonempty_string(e);
                   else if (k == "port")
                       o.port = static_cast<std::uint16_t>(r.integer(e, 0, 65535));
                   else if (k == "max_payload_bytes")
                       o.max_payload_bytes = static_cast<std::size_t>(r.integer(e, 1, i64_max));
               });
}

const std::vector<std::string_view> top_keys = {
    "redis",   "redis_cluster", "queues",    "prefix",     "result_ttl_seconds", "worker",   "api",
    "workers", "data_dir",      "log_level", "log_format", "durability",         "schedules"};

// A YAML value as JSON: quoted scalars are strings; plain ones are booleans,
// null, integers or numbers when they read as such, else strings.
boost::json::value yaml_to_json(const YAML::Node& n) {
    namespace json = boost::json;
    switch (n.Type()) {
        case YAML::NodeType::Map: {
            json::object o;
            for (auto it = n.begin(); it != n.end(); ++it) o[it->first.Scalar()] = yaml_to_json(it->second);
            return o;
        }
        case YAML::NodeType::Sequence: {
            json::array a;
            for (const auto& item : n) a.push_back(yaml_to_json(item));
            return a;
        }
        case YAML::NodeType::Scalar: {
            const std::string& s = n.Scalar();
            if (n.Tag() == "!") return json::value(s);  // quoted
            if (s == "true" || s == "True" || s == "TRUE") return true;
            if (s == "false" || s == "False" || s == "FALSE") return false;
            if (s == "null" || s == "~" || s == "Null" || s == "NULL") return nullptr;
            std::int64_t i = 0;
            if (auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
                ec == std::errc{} && end == s.data() + s.size() && !s.empty())
                return i;
            double d = 0;
            if (auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
                ec == std::errc{} && end == s.data() + s.size() && !s.empty() && std::isfinite(d))
                return d;
            return json::value(s);
        }
        default:
            return nullptr;
    }
}

// One schedule: checked with the rules POST /api/schedules applies, errors
// pointing at the offending field's line.
schedule_config read_schedule(const reader& r, const YAML::Node& node, const std::string& path,
                              const YAML::Mark& where, std::string name) {
    if (!node.IsMap())
        r.fail(node.IsNull() ? where : node.Mark(), path, "expected a map, got " + describe(node));
    for (auto it = node.begin(); it != node.end(); ++it)
        if (!it->first.IsScalar()) r.fail(it->first.Mark(), path, "keys must be strings");
    auto body = yaml_to_json(node);
    if (!name.empty()) {
        if (auto* n = body.as_object().if_contains("name"); n && !(n->is_string() && n->as_string() == name))
            r.fail(node["name"].Mark(), path + ".name", "differs from the schedule's key \"" + name + "\"");
    }
    schedule::definition_defaults defs;
    auto d = schedule::parse_definition(body, defs, name);
    if (!d) {
        auto field = node[d.error().field];
        auto mark = field && field.IsDefined() ? field.Mark() : (node.IsNull() ? where : node.Mark());
        auto msg = d.error().message;
        auto colon = msg.find(": ");
        if (colon != std::string::npos) msg = msg.substr(colon + 2);
        r.fail(mark, path + "." + d.error().field, msg);
    }
    schedule_config s;
    s.name = d->name;
    auto& o = body.as_object();
    o["name"] = d->name;
    s.definition = boost::json::serialize(body);
    return s;
}

// `schedules:` as a map (name -> fields) or a list of maps with a `name`.
void read_schedules(const reader& r, const entry& e, config& c) {
    std::set<std::string> names;
    auto add = [&](schedule_config s, const YAML::Mark& mark, const std::string& path) {
        if (!names.insert(s.name).second) r.fail(mark, path, "duplicate schedule name \"" + s.name + "\"");
        c.schedules.push_back(std::move(s));
    };
    if (e.value.IsSequence()) {
        for (std::size_t i = 0; i < e.value.size(); ++i) {
            auto path = fmt::format("{}[{}]", e.path, i);
            add(read_schedule(r, e.value[i], path, reader::mark_of(e), {}), e.value[i].Mark(), path);
        }
        return;
    }
    r.for_each_any(e.value, e.path, reader::mark_of(e), [&](const entry& s) {
        add(read_schedule(r, s.value, s.path, reader::mark_of(s), s.key.Scalar()), s.key.Mark(), s.path);
    });
}

config read_config(const reader& r, const YAML::Node& root) {
    config c = default_config();  // a file without `queues` keeps the default queues
    if (root.IsNull()) return c;  // an empty file
    r.for_each(root, "", YAML::Mark{}, top_keys, [&](const entry& e) {
        const auto& k = e.key.Scalar();
        if (k == "redis")
            c.redis_url = r.string(e);
        else if (k == "redis_cluster")
            c.redis_cluster = r.boolean(e);
        else if (k == "durability")
            c.replicated = read_durability(r, e);
        else if (k == "prefix")
            c.prefix = r.nonempty_string(e);
        else if (k == "result_ttl_seconds")
            c.result_ttl = std::chrono::seconds{r.integer(e, 1, i32_max)};
        else if (k == "workers")
            c.workers = static_cast<int>(r.integer(e, 0, 1000));
        else if (k == "data_dir")
            c.data_dir = r.nonempty_string(e);
        else if (k == "log_level") {
            auto level = normalize_log_level(r.string(e));
            if (!level)
                r.fail(e,
                       "expected trace, debug, info, warn, error, critical or off, got " + describe(e.value));
            c.log_level = *level;
        } else if (k == "log_format") {
            auto f = r.string(e);
            if (f != "text" && f != "json") r.fail(e, "expected text or json, got " + describe(e.value));
            c.log_format = f;
        } else if (k == "worker")
            read_worker(r, e, c.worker);
        else if (k == "api")
            read_api(r, e, c.api);
        else if (k == "schedules")
            read_schedules(r, e, c);
        else if (k == "queues") {
            c.queues.clear();
            r.for_each_any(e.value, e.path, reader::mark_of(e), [&](const entry& q) {
                auto p = read_queue(r, q);
                c.queues.emplace(p.name, std::move(p));
            });
        }
    });
    return c;
}

}  // namespace

config_result<config> parse(std::string_view yaml, std::string source) {
    reader r{source};
    try {
        auto root = YAML::Load(std::string{yaml});
        if (!root.IsNull() && !root.IsMap())
            return config_error{
                fmt::format("{}: the top level must be a map, got {}", source, describe(root))};
        auto c = read_config(r, root);
        c.source = std::move(source);
        return c;
    } catch (const bad_config& e) {
        return config_error{e.message};
    } catch (const YAML::Exception& e) {
        if (e.mark.is_null()) return config_error{fmt::format("{}: invalid YAML: {}", source, e.msg)};
        return config_error{fmt::format("{}:{}: invalid YAML: {}", source, e.mark.line + 1, e.msg)};
    }
}

config_result<config> load_file(const std::string& path) {
    std::ifstream in{path, std::ios::binary};
    if (!in) return config_error{fmt::format("{}: cannot open: {}", path, std::strerror(errno))};
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return config_error{fmt::format("{}: cannot read: {}", path, std::strerror(errno))};
    return parse(text.str(), path);
}

}  // namespace spool::conf
