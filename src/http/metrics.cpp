// src/http/metrics.cpp
#include "http/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace spool::http {

namespace {

const std::vector<double>& http_buckets() {
    static const std::vector<double> b{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                       0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    return b;
}

const std::vector<double>& job_buckets() {
    static const std::vector<double> b{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,    2.5,
                                       5,     10,   30,    60,   120, 300,  600, 1800, 3600};
    return b;
}

histogram& slot(std::map<std::string, histogram, std::less<>>& m, std::string_view key,
                const std::vector<double>& bounds) {
    auto it = m.find(key);
    if (it == m.end()) it = m.emplace(std::string{key}, histogram{bounds}).first;
    return it->second;
}

std::optional<double> number(const boost::json::object& o, std::string_view name) {
    auto* v = o.if_contains(name);
    if (!v || !v->is_number()) return std::nullopt;
    return v->to_number<double>();
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void render_histograms(std::string& out, std::string_view name, std::string_view label,
                       const std::map<std::string, histogram, std::less<>>& m) {
    for (const auto& [key, h] : m) {
        auto lv = metrics::escape_label(key);
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < h.bounds().size(); ++i) {
            cumulative += h.counts()[i];
            fmt::format_to(std::back_inserter(out), "{}_bucket{{{}=\"{}\",le=\"{}\"}} {}\n", name, label, lv,
                           h.bounds()[i], cumulative);
        }
        cumulative += h.counts().back();
        fmt::format_to(std::back_inserter(out), "{}_bucket{{{}=\"{}\",le=\"+Inf\"}} {}\n", name, label, lv,
                       cumulative);
        fmt::format_to(std::back_inserter(out), "{}_sum{{{}=\"{}\"}} {}\n", name, label, lv, h.sum());
        fmt::format_to(std::back_inserter(out), "{}_count{{{}=\"{}\"}} {}\n", name, label, lv, h.count());
    }
}

}  // namespace

histogram::histogram(std::vector<double> upper_bounds)
    : bounds_{std::move(upper_bounds)}, counts_(bounds_.size() + 1, 0) {}

void histogram::observe(double v) {
    auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);  // first bound >= v: le is inclusive
    ++counts_[static_cast<std::size_t>(it - bounds_.begin())];
    sum_ += v;
    ++count_;
}

std::string metrics::escape_label(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

void metrics::observe_request(std::string_view route, std::string_view method, unsigned status,
                              double seconds) {
    ++requests_[{std::string{route}, std::string{method}, status}];
    slot(request_seconds_, route, http_buckets()).observe(seconds);
}

void metrics::observe_job(std::string_view queue, std::optional<double> duration_seconds,
                          std::optional<double> wait_seconds) {
    if (duration_seconds) slot(job_duration_, queue, job_buckets()).observe(*duration_seconds);
    if (wait_seconds) slot(job_wait_, queue, job_buckets()).observe(*wait_seconds);
}

void metrics::observe_update(const boost::json::object& msg) {
    auto* type = msg.if_contains("type");
    auto* queue = msg.if_contains("queue");
    if (!type || !type->is_string() || !queue || !queue->is_string()) return;
    if (type->get_string() != "job_completed" && type->get_string() != "job_failed") return;
    auto duration = number(msg, "duration_ms");
    auto wait = number(msg, "wait_ms");
    if (duration) *duration = std::max(0.0, *duration / 1000.0);
    if (wait) *wait = std::max(0.0, *wait / 1000.0);
    std::string_view q = queue->get_string();
    if (!q.empty()) observe_job(q, duration, wait);
}

std::string metrics::render(const metrics_inputs& in) const {
    std::string out;
    out.reserve(4096);
    header(out, "spool_redis_up", "gauge", "1 when this API process can reach Redis.");
    fmt::format_to(std::back_inserter(out), "spool_redis_up {}\n", in.redis_up ? 1 : 0);

    struct counter_def {
        const char* name;
        const char* help;
        std::int64_t store::queue_info::*field;
    };
    const counter_def counters[] = {
        {"spool_jobs_submitted_total", "Jobs submitted, per queue.", &store::queue_info::submitted_total},
        {"spool_jobs_completed_total", "Jobs completed, per queue.", &store::queue_info::completed_total},
        {"spool_jobs_failed_total", "Jobs failed for good (retries exhausted), per queue.",
         &store::queue_info::failed_total},
        {"spool_jobs_retried_total", "Attempts scheduled for a retry, per queue.",
         &store::queue_info::retried_total},
    };
    for (const auto& c : counters) {
        header(out, c.name, "counter", c.help);
        for (const auto& q : in.queues)
            fmt::format_to(std::back_inserter(out), "{}{{queue=\"{}\"}} {}\n", c.name, escape_label(q.name),
                           q.*(c.field));
    }

    header(out, "spool_queue_depth", "gauge", "Jobs per queue and state.");
    for (const auto& q : in.queues) {
        auto lv = escape_label(q.name);
        const std::pair<const char*, std::int64_t> states[] = {
            {"queued", q.queued},       {"scheduled", q.scheduled}, {"in_progress", q.active},
            {"completed", q.completed}, {"failed", q.failed},       {"cancelled", q.cancelled}};
        for (const auto& [state, n] : states)
            fmt::format_to(std::back_inserter(out), "spool_queue_depth{{queue=\"{}\",state=\"{}\"}} {}\n", lv,
                           state, n);
    }
    header(out, "spool_queue_paused", "gauge", "1 when the queue is paused.");
    for (const auto& q : in.queues)
        fmt::format_to(std::back_inserter(out), "spool_queue_paused{{queue=\"{}\"}} {}\n",
                       escape_label(q.name), q.paused ? 1 : 0);

    header(out, "spool_workers", "gauge", "Live workers (heartbeat not expired).");
    if (in.workers) fmt::format_to(std::back_inserter(out), "spool_workers {}\n", *in.workers);

    header(out, "spool_job_duration_seconds", "histogram", "Run time of finished attempts, per queue.");
    render_histograms(out, "spool_job_duration_seconds", "queue", job_duration_);
    header(out, "spool_job_wait_seconds", "histogram",
           "Time from submit to start of finished jobs, per queue.");
    render_histograms(out, "spool_job_wait_seconds", "queue", job_wait_);

    header(out, "spool_http_open_connections", "gauge", "Open HTTP connections (including streams).");
    fmt::format_to(std::back_inserter(out), "spool_http_open_connections {}\n", in.open_connections);
    header(out, "spool_http_requests_total", "counter",
           "HTTP requests per route pattern, method and status.");
    for (const auto& [key, n] : requests_) {
        const auto& [route, method, status] = key;
        fmt::format_to(std::back_inserter(out),
                       "spool_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}\n",
                       escape_label(route), escape_label(method), status, n);
    }
    header(out, "spool_http_request_duration_seconds", "histogram",
           "HTTP request latency per route pattern.");
    render_histograms(out, "spool_http_request_duration_seconds", "route", request_seconds_);
    return out;
}

}  // namespace spool::http
