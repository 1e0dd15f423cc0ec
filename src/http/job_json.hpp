// src/http/job_json.hpp
// The JSON shapes of the HTTP API (docs/http-api.md), built from store types.
// Sans-io. Times are ISO 8601 text or null when unset (0).
#pragma once

#include "store/broker.hpp"

#include <spool/job.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <vector>

namespace spool::http {

// ISO 8601 text, or null for 0.
boost::json::value time_or_null(millis t);
// The string, or null when empty.
boost::json::value string_or_null(const std::string& s);

// GET /api/jobs/{id}: job_id, queue, status, priority, attempts, max_retries,
// created_at, scheduled_at, started_at, completed_at, error_message,
// result_available, result_size_bytes, progress, worker_id (exactly these).
boost::json::object job_status_json(const job_record& j);
// GET /solve/async/{id}: job_id, status, created_at, started_at, completed_at,
// error_message, result_available, result_size_bytes (exactly these).
boost::json::object compat_status_json(const job_record& j);

// One entry of GET /api/queues.
boost::json::object queue_json(const store::queue_info& q);
// One entry of GET /api/workers.
boost::json::object worker_json(const store::worker_info& w);

// Depth per status, summed over `queues`: queued, scheduled, in_progress,
// completed, failed, cancelled (every key present). `active` counts as in_progress.
boost::json::object status_breakdown(const std::vector<store::queue_info>& queues, bool omit_zero);

}  // namespace spool::http
