// src/http/job_json.cpp
#include "http/job_json.hpp"

#include "util/time_format.hpp"

#include <boost/json/array.hpp>

namespace spool::http {

namespace json = boost::json;

json::value time_or_null(millis t) {
    if (t == 0) return nullptr;
    return json::string(format_iso8601(t));
}

json::value string_or_null(const std::string& s) {
    if (s.empty()) return nullptr;
    return json::string(s);
}

json::object job_status_json(const job_record& j) {
    json::object o;
    o["job_id"] = j.id;
    o["queue"] = j.queue;
    o["status"] = to_string(j.status);
    o["priority"] = j.priority;
    o["attempts"] = j.attempts;
    o["max_retries"] = j.max_retries;
    o["created_at"] = time_or_null(j.created_at);
    o["scheduled_at"] = time_or_null(j.scheduled_at);
    o["started_at"] = time_or_null(j.started_at);
    o["completed_at"] = time_or_null(j.completed_at);
    o["error_message"] = string_or_null(j.error_message);
    o["result_available"] = j.result_available;
    o["result_size_bytes"] = j.result_size_bytes;
    o["progress"] = j.progress;
    o["worker_id"] = string_or_null(j.worker_id);
    // Dependencies, only on jobs that have them (the record keeps its shape otherwise).
    auto ids = [](const std::vector<std::string>& v) {
        json::array a;
        for (const auto& s : v) a.emplace_back(s);
        return a;
    };
    if (!j.parents.empty()) o["parents"] = ids(j.parents);
    if (!j.children.empty()) o["children"] = ids(j.children);
    return o;
}

json::object compat_status_json(const job_record& j) {
    json::object o;
    o["job_id"] = j.id;
    o["status"] = to_string(j.status);
    o["created_at"] = time_or_null(j.created_at);
    o["started_at"] = time_or_null(j.started_at);
    o["completed_at"] = time_or_null(j.completed_at);
    o["error_message"] = string_or_null(j.error_message);
    o["result_available"] = j.result_available;
    o["result_size_bytes"] = j.result_size_bytes;
    return o;
}

json::object queue_json(const store::queue_info& q) {
    json::object depth;
    depth["queued"] = q.queued;
    depth["scheduled"] = q.scheduled;
    depth["in_progress"] = q.active;
    depth["completed"] = q.completed;
    depth["failed"] = q.failed;
    depth["cancelled"] = q.cancelled;
    if (q.waiting > 0) depth["waiting"] = q.waiting;  // jobs waiting for their parents
    json::object totals;
    totals["submitted"] = q.submitted_total;
    totals["completed"] = q.completed_total;
    totals["failed"] = q.failed_total;
    totals["retried"] = q.retried_total;
    json::object o;
    o["name"] = q.name;
    o["paused"] = q.paused;
    o["depth"] = std::move(depth);
    o["totals"] = std::move(totals);
    return o;
}

json::object worker_json(const store::worker_info& w) {
    json::array queues;
    for (const auto& q : w.queues) queues.emplace_back(q);
    json::array running;
    for (const auto& id : w.running) running.emplace_back(id);
    json::object o;
    o["id"] = w.id;
    o["host"] = w.host;
    o["pid"] = w.pid;
    o["queues"] = std::move(queues);
    o["concurrency"] = w.concurrency;
    o["running"] = w.running.size();
    o["running_jobs"] = std::move(running);
    o["cpu_cores"] = w.cpu_cores;
    o["ram_bytes"] = w.ram_bytes;
    o["version"] = w.version;
    o["started_at"] = time_or_null(w.started_at);
    o["last_heartbeat"] = time_or_null(w.last_heartbeat);
    return o;
}

json::object status_breakdown(const std::vector<store::queue_info>& queues, bool omit_zero) {
    std::int64_t queued = 0, scheduled = 0, active = 0, completed = 0, failed = 0, cancelled = 0;
    for (const auto& q : queues) {
        queued += q.queued;
        scheduled += q.scheduled;
        active += q.active;
        completed += q.completed;
        failed += q.failed;
        cancelled += q.cancelled;
    }
    json::object o;
    auto put = [&](const char* name, std::int64_t n) {
        if (!omit_zero || n != 0) o[name] = n;
    };
    put("queued", queued);
    put("scheduled", scheduled);
    put("in_progress", active);
    put("completed", completed);
    put("failed", failed);
    put("cancelled", cancelled);
    return o;
}

}  // namespace spool::http
