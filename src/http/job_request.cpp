// src/http/job_request.cpp
#include "http/job_request.hpp"

#include "util/ids.hpp"
#include "util/time_format.hpp"

#include <spool/error.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cmath>
#include <limits>
#include <optional>

namespace spool::http {

namespace json = boost::json;

namespace {

api_error bad(std::string message) { return api_error{errc::invalid_argument, std::move(message), {}}; }

// The member `name` (or its alias), null counting as absent.
const json::value* field(const json::object& o, std::string_view name, std::string_view alias = {}) {
    if (auto* v = o.if_contains(name); v && !v->is_null()) return v;
    if (!alias.empty())
        if (auto* v = o.if_contains(alias); v && !v->is_null()) return v;
    return nullptr;
}

// An integral JSON number (an integral double like 5.0 counts) within [lo, hi].
std::optional<long long> as_integer(const json::value& v) {
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64()) {
        auto u = v.get_uint64();
        if (u > static_cast<std::uint64_t>(std::numeric_limits<long long>::max())) return std::nullopt;
        return static_cast<long long>(u);
    }
    if (v.is_double()) {
        double d = v.get_double();
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<long long>(d);
    }
    return std::nullopt;
}

api_result<std::optional<long long>> integer_field(const json::object& o, std::string_view name, long long lo,
                                                   long long hi) {
    auto* v = field(o, name);
    if (!v) return std::optional<long long>{};
    auto i = as_integer(*v);
    if (!i) return bad(std::string{name} + " must be an integer");
    if (*i < lo || *i > hi)
        return bad(std::string{name} + " must be between " + std::to_string(lo) + " and " +
                   std::to_string(hi));
    return std::optional<long long>{*i};
}

api_result<std::optional<std::string>> string_field(const json::object& o, std::string_view name,
                                                    std::string_view alias = {}) {
    auto* v = field(o, name, alias);
    if (!v) return std::optional<std::string>{};
    if (!v->is_string()) return bad(std::string{name} + " must be a string");
    return std::optional<std::string>{std::string{v->get_string()}};
}

constexpr long long max_seconds = 10LL * 365 * 24 * 3600;  // ten years

}  // namespace

std::optional<int> priority_from_word(std::string_view word) noexcept {
    if (word == "high") return 10;
    if (word == "normal") return 0;
    if (word == "low") return -10;
    return std::nullopt;
}

bool is_valid_queue_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 128) return false;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-' || c == '.' || c == ':';
        if (!ok) return false;
    }
    return true;
}

api_result<json::value> parse_json(std::string_view body) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec) return bad("malformed JSON: " + ec.message());
    return v;
}

api_result<job_spec> parse_submit(const json::value& body, const submit_defaults& defaults, millis now) {
    if (!body.is_object()) return bad("the request body must be a JSON object");
    const auto& o = body.get_object();
    job_spec spec;
    spec.queue = defaults.queue;
    spec.ttl = defaults.ttl;

    auto queue = string_field(o, "queue", "service_required");
    if (!queue) return queue.error();
    if (*queue) {
        if (!is_valid_queue_name(**queue))
            return bad("queue must be 1-128 characters of letters, digits, '_', '-', '.' or ':'");
        spec.queue = std::move(**queue);
    }

    if (auto* p = field(o, "payload", "input_json")) {
        spec.payload = json::serialize(*p);
    } else if (defaults.require_payload) {
        return bad("input_json is required");
    }
    if (spec.payload.size() > defaults.max_payload_bytes)
        return api_error{errc::payload_too_large,
                         "payload is " + std::to_string(spec.payload.size()) + " bytes; the limit is " +
                             std::to_string(defaults.max_payload_bytes),
                         {}};

    if (auto* p = field(o, "priority")) {
        if (p->is_string()) {
            auto word = priority_from_word(p->get_string());
            if (!word) return bad("priority must be an integer or one of \"high\", \"normal\", \"low\"");
            spec.priority = *word;
        } else {
            auto i = integer_field(o, "priority", min_priority, max_priority);
            if (!i) return i.error();
            spec.priority = static_cast<int>(**i);
        }
    }

    if (defaults.per_queue) {
        if (auto it = defaults.per_queue->find(spec.queue); it != defaults.per_queue->end()) {
            spec.max_retries = it->second.max_retries;
            spec.timeout = it->second.timeout;
        }
    }
    auto retries = integer_field(o, "max_retries", 0, 1000);
    if (!retries) return retries.error();
    if (*retries) spec.max_retries = static_cast<int>(**retries);

    if (auto* t = field(o, "timeout_seconds")) {
        if (!t->is_number()) return bad("timeout_seconds must be a number");
        double secs = t->to_number<double>();
        if (!(secs > 0) || secs > static_cast<double>(max_seconds))
            return bad("timeout_seconds must be greater than 0 and at most " + std::to_string(max_seconds));
        spec.timeout = std::chrono::seconds{static_cast<long long>(std::ceil(secs))};
    }

    auto ttl = integer_field(o, "ttl_seconds", 1, max_seconds);
    if (!ttl) return ttl.error();
    if (*ttl) spec.ttl = std::chrono::seconds{**ttl};

    auto delay = integer_field(o, "delay_ms", 0, max_seconds * 1000);
    if (!delay) return delay.error();
    auto at = string_field(o, "scheduled_at");
    if (!at) return at.error();
    if (*delay && *at) return bad("set either delay_ms or scheduled_at, not both");
    if (*delay && **delay > 0) spec.run_at = now + **delay;
    if (*at) {
        auto t = parse_iso8601(**at);
        if (!t) return bad("scheduled_at must be an ISO 8601 time such as 2025-11-24T14:53:10Z");
        spec.run_at = *t > now ? *t : 0;  // a time in the past means now
    }

    auto unique = string_field(o, "unique_key");
    if (!unique) return unique.error();
    if (*unique) {
        if ((*unique)->size() > 512) return bad("unique_key must be at most 512 characters");
        spec.unique_key = std::move(**unique);
    }

    if (auto* d = field(o, "depends_on")) {
        if (!d->is_array()) return bad("depends_on must be an array of job ids");
        if (d->get_array().size() > 100) return bad("depends_on may name at most 100 jobs");
        for (const auto& e : d->get_array()) {
            if (!e.is_string() || !is_valid_job_id(e.get_string()))
                return bad("depends_on must be an array of job ids; " + json::serialize(e) + " is not one");
            spec.depends_on.emplace_back(e.get_string());
        }
    }
    auto opf = string_field(o, "on_parent_failure");
    if (!opf) return opf.error();
    if (*opf) {
        if (**opf != "fail" && **opf != "cancel" && **opf != "run")
            return bad("on_parent_failure must be one of \"fail\", \"cancel\", \"run\"");
        if (spec.depends_on.empty()) return bad("on_parent_failure needs depends_on");
        spec.on_parent_failure = std::move(**opf);
    }
    if (!spec.depends_on.empty() && spec.run_at > 0)
        return bad("depends_on cannot be combined with delay_ms or scheduled_at");

    auto tenant = string_field(o, "tenant");
    if (!tenant) return tenant.error();
    if (*tenant) spec.tenant = std::move(**tenant);
    return spec;
}

api_result<store::list_query> parse_list_query(const query_params& params) {
    store::list_query q;
    for (const auto& [k, v] : params) {
        if (k == "queue") {
            if (!v.empty() && !is_valid_queue_name(v)) return bad("queue is not a valid queue name");
            q.queue = v;
        } else if (k == "status") {
            if (v.empty()) continue;
            auto s = parse_job_status(v);
            if (!s)
                return bad(
                    "status must be one of queued, scheduled, validating, in_progress, completed, failed, "
                    "cancelled, expired");
            q.status = *s;
        } else if (k == "limit") {
            if (v.empty()) continue;
            long long n = 0;
            bool ok = v.size() <= 6;
            for (char c : v) ok = ok && c >= '0' && c <= '9';
            if (ok) n = std::stoll(v);
            if (!ok || n < 1 || n > 1000) return bad("limit must be an integer between 1 and 1000");
            q.limit = static_cast<std::size_t>(n);
        } else if (k == "cursor") {
            q.cursor = v;
        }
    }
    return q;
}

}  // namespace spool::http
