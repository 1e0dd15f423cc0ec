// src/http/metrics.hpp
// Prometheus metrics of one API process, rendered in text format 0.0.4. Sans-io:
// the server feeds it (requests, job_updates messages) and passes the Redis-side
// numbers (queue depths and totals, worker count) to render().
//
// Threading: not synchronised; use from the server's executor only.
#pragma once

#include "store/broker.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace spool::http {

class histogram {
public:
    explicit histogram(std::vector<double> upper_bounds);
    void observe(double v);
    const std::vector<double>& bounds() const noexcept { return bounds_; }
    // Non-cumulative count per bucket; the last entry is the +Inf bucket.
    const std::vector<std::uint64_t>& counts() const noexcept { return counts_; }
    double sum() const noexcept { return sum_; }
    std::uint64_t count() const noexcept { return count_; }

private:
    std::vector<double> bounds_;
    std::vector<std::uint64_t> counts_;
    double sum_ = 0;
    std::uint64_t count_ = 0;
};

// Everything render() needs from Redis; `queues` empty and `redis_up` false when
// Redis could not be read (the process-local metrics are still rendered).
struct metrics_inputs {
    std::vector<store::queue_info> queues;
    std::optional<std::size_t> workers;
    bool redis_up = false;
    std::size_t open_connections = 0;
};

class metrics {
public:
    // One HTTP request: `route` is the route *pattern* ("/api/jobs/{id}"), never the raw path.
    void observe_request(std::string_view route, std::string_view method, unsigned status, double seconds);
    // A job_updates message: job_completed and job_failed carry duration_ms and wait_ms.
    void observe_update(const boost::json::object& msg);
    void observe_job(std::string_view queue, std::optional<double> duration_seconds,
                     std::optional<double> wait_seconds);

    std::string render(const metrics_inputs& in) const;

    // Prometheus label value escaping: backslash, double quote and line feed.
    static std::string escape_label(std::string_view v);

private:
    std::map<std::tuple<std::string, std::string, unsigned>, std::uint64_t> requests_;
    std::map<std::string, histogram, std::less<>> request_seconds_;
    std::map<std::string, histogram, std::less<>> job_duration_;
    std::map<std::string, histogram, std::less<>> job_wait_;
};

}  // namespace spool::http
