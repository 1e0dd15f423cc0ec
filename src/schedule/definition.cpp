// src/schedule/definition.cpp
#include "schedule/definition.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <limits>
#include <stdexcept>

namespace spool::schedule {

namespace json = boost::json;

void throw_exception_from_error(const definition_error& e, const boost::source_location&) {
    throw std::invalid_argument(e.message);
}

bool is_valid_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 128) return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ':'))
            return false;
    return true;
}

std::string_view to_string(catch_up_policy p) noexcept { return p == catch_up_policy::all ? "all" : "none"; }
std::string_view to_string(overlap_policy p) noexcept { return p == overlap_policy::skip ? "skip" : "allow"; }

namespace {

constexpr std::array<std::string_view, 16> known_fields = {"name",
                                                           "cron",
                                                           "tz",
                                                           "queue",
                                                           "payload",
                                                           "priority",
                                                           "max_retries",
                                                           "timeout_seconds",
                                                           "ttl_seconds",
                                                           "catch_up",
                                                           "catch_up_limit",
                                                           "overlap",
                                                           "paused",
                                                           "tenant",
                                                           "timezone",
                                                           "source"};

definition_error bad(std::string field, std::string what) {
    auto message = fmt::format("{}: {}", field, what);
    return definition_error{std::move(field), std::move(message)};
}

std::string kind_of(const json::value& v) {
    switch (v.kind()) {
        case json::kind::string:
            return "a string";
        case json::kind::bool_:
            return "a boolean";
        case json::kind::null:
            return "null";
        case json::kind::array:
            return "an array";
        case json::kind::object:
            return "an object";
        default:
            return "a number";
    }
}

definition_result<std::string> string_field(const json::value& v, const char* field) {
    if (!v.is_string()) return bad(field, "expected a string, got " + kind_of(v));
    return definition_result<std::string>{boost::system::in_place_value, std::string{v.as_string()}};
}

// Integers only (1.5 is an error); doubles with an integral value are accepted.
definition_result<std::int64_t> int_field(const json::value& v, const char* field, std::int64_t min,
                                          std::int64_t max) {
    std::int64_t n = 0;
    if (v.is_int64())
        n = v.as_int64();
    else if (v.is_uint64() && v.as_uint64() <= static_cast<std::uint64_t>(max))
        n = static_cast<std::int64_t>(v.as_uint64());
    else if (v.is_double() && v.as_double() == static_cast<double>(static_cast<std::int64_t>(v.as_double())))
        n = static_cast<std::int64_t>(v.as_double());
    else
        return bad(field, fmt::format("expected an integer from {} to {}, got {}", min, max,
                                      v.is_number() ? json::serialize(v) : kind_of(v)));
    if (n < min || n > max)
        return bad(field, fmt::format("expected an integer from {} to {}, got {}", min, max, n));
    return n;
}

}  // namespace

definition_result<definition> parse_definition(const json::value& body, const definition_defaults& defs,
                                               std::string_view name_override) {
    if (!body.is_object()) return bad("body", "expected a JSON object, got " + kind_of(body));
    const auto& o = body.as_object();
    for (const auto& kv : o) {
        bool known = false;
        for (auto f : known_fields) known = known || kv.key() == f;
        if (!known)
            return bad(std::string{kv.key()},
                       "unknown field (expected name, cron, tz, queue, payload, priority, max_retries, "
                       "timeout_seconds, ttl_seconds, catch_up, catch_up_limit, overlap, paused)");
    }
    auto get = [&o](std::string_view k) -> const json::value* {
        auto* v = o.if_contains(k);
        return v && !v->is_null() ? v : nullptr;
    };
    definition d;
    d.queue = defs.queue;
    d.ttl = defs.ttl;

    if (!name_override.empty()) {
        d.name = std::string{name_override};
    } else if (auto* v = get("name")) {
        auto s = string_field(*v, "name");
        if (!s) return s.error();
        d.name = std::move(*s);
    } else {
        return bad("name", "required");
    }
    if (!is_valid_name(d.name))
        return bad("name", fmt::format("\"{}\" is not a valid schedule name (1..128 of A-Z a-z 0-9 _ . : -)",
                                       d.name));

    auto* cv = get("cron");
    if (!cv) return bad("cron", "required (e.g. \"*/5 * * * *\", \"@hourly\", \"@every 30s\")");
    {
        auto s = string_field(*cv, "cron");
        if (!s) return s.error();
        d.cron_text = std::move(*s);
        auto c = cron::parse(d.cron_text);
        if (!c) return bad("cron", c.error().message);
        d.expr = std::move(*c);
    }
    const json::value* tzv = get("tz");
    const char* tz_field = "tz";
    if (!tzv) {
        tzv = get("timezone");
        tz_field = "timezone";
    }
    if (tzv) {
        auto s = string_field(*tzv, tz_field);
        if (!s) return s.error();
        d.tz = std::move(*s);
    }
    {
        auto z = zone::find(d.tz);
        if (!z) return bad(tz_field, z.error().message);
        d.tz_zone = *z;
    }
    if (auto* v = get("queue")) {
        auto s = string_field(*v, "queue");
        if (!s) return s.error();
        if (!is_valid_name(*s))
            return bad("queue",
                       fmt::format("\"{}\" is not a valid queue name (1..128 of A-Z a-z 0-9 _ . : -)", *s));
        d.queue = std::move(*s);
    }
    if (auto* v = o.if_contains("payload")) {
        d.payload = json::serialize(*v);
        if (d.payload.size() > defs.max_payload_bytes)
            return bad("payload", fmt::format("{} bytes is over the limit of {}", d.payload.size(),
                                              defs.max_payload_bytes));
    }
    if (auto* v = get("priority")) {
        if (v->is_string()) {
            auto w = v->as_string();
            if (w == "high")
                d.priority = 10;
            else if (w == "normal")
                d.priority = 0;
            else if (w == "low")
                d.priority = -10;
            else
                return bad("priority", fmt::format("expected an integer or high, normal, low, got \"{}\"",
                                                   std::string_view{w}));
        } else {
            auto n = int_field(*v, "priority", min_priority, max_priority);
            if (!n) return n.error();
            d.priority = static_cast<int>(*n);
        }
    }
    if (auto* v = get("max_retries")) {
        auto n = int_field(*v, "max_retries", 0, 1000);
        if (!n) return n.error();
        d.max_retries = static_cast<int>(*n);
    }
    if (auto* v = get("timeout_seconds")) {
        auto n = int_field(*v, "timeout_seconds", 1, std::numeric_limits<int>::max());
        if (!n) return n.error();
        d.timeout = std::chrono::seconds{*n};
    }
    if (auto* v = get("ttl_seconds")) {
        auto n = int_field(*v, "ttl_seconds", 1, std::numeric_limits<int>::max());
        if (!n) return n.error();
        d.ttl = std::chrono::seconds{*n};
    }
    if (auto* v = get("catch_up")) {
        auto s = string_field(*v, "catch_up");
        if (!s) return s.error();
        if (*s == "none")
            d.catch_up = catch_up_policy::none;
        else if (*s == "all")
            d.catch_up = catch_up_policy::all;
        else
            return bad("catch_up", fmt::format("expected none or all, got \"{}\"", *s));
    }
    if (auto* v = get("catch_up_limit")) {
        auto n = int_field(*v, "catch_up_limit", 1, max_catch_up_limit);
        if (!n) return n.error();
        d.catch_up_limit = static_cast<int>(*n);
    }
    if (auto* v = get("overlap")) {
        auto s = string_field(*v, "overlap");
        if (!s) return s.error();
        if (*s == "allow")
            d.overlap = overlap_policy::allow;
        else if (*s == "skip")
            d.overlap = overlap_policy::skip;
        else
            return bad("overlap", fmt::format("expected skip or allow, got \"{}\"", *s));
    }
    if (auto* v = get("paused")) {
        if (!v->is_bool()) return bad("paused", "expected true or false, got " + kind_of(*v));
        d.paused = v->as_bool();
    }
    if (auto* v = get("tenant")) {
        auto s = string_field(*v, "tenant");
        if (!s) return s.error();
        d.tenant = std::move(*s);
    }
    if (auto* v = get("source")) {
        auto s = string_field(*v, "source");
        if (!s) return s.error();
        if (*s != "config" && *s != "api") return bad("source", fmt::format("expected config or api, got \"{}\"", *s));
        d.from_config = *s == "config";
    }
    return d;
}

json::object to_object(const definition& d) {
    json::object o;
    o["name"] = d.name;
    o["cron"] = d.cron_text;
    o["tz"] = d.tz;
    o["queue"] = d.queue;
    boost::system::error_code ec;
    auto payload = json::parse(d.payload, ec);
    o["payload"] = ec ? json::value{} : std::move(payload);
    o["priority"] = d.priority;
    o["max_retries"] = d.max_retries;
    o["timeout_seconds"] = d.timeout.count();
    o["ttl_seconds"] = d.ttl.count();
    o["catch_up"] = to_string(d.catch_up);
    o["catch_up_limit"] = d.catch_up_limit;
    o["overlap"] = to_string(d.overlap);
    if (!d.tenant.empty()) o["tenant"] = d.tenant;
    o["source"] = d.from_config ? "config" : "api";
    return o;
}

std::string to_json(const definition& d) { return json::serialize(to_object(d)); }

}  // namespace spool::schedule
