// src/http/job_request.hpp
// Turns request bodies and query strings into typed requests: the submit body of
// POST /api/jobs, POST /solve/async and the WebSocket submit_job message into a
// spool::job_spec, and GET /api/jobs's query into a store::list_query. Sans-io.
// Every failure is an api_error whose message names the offending field.
#pragma once

#include "http/http_error.hpp"
#include "store/broker.hpp"

#include <spool/job.hpp>

#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spool::http {

template <class T>
using api_result = boost::system::result<T, api_error>;

using query_params = std::vector<std::pair<std::string, std::string>>;

// A queue's configured policy: what its jobs get when the request leaves
// max_retries / timeout_seconds out.
struct queue_job_defaults {
    int max_retries = default_max_retries;
    std::chrono::seconds timeout = default_job_timeout;
};

struct submit_defaults {
    std::string queue{default_queue};
    const std::map<std::string, queue_job_defaults, std::less<>>* per_queue = nullptr;
    std::size_t max_payload_bytes = default_max_payload_bytes;
    std::chrono::seconds ttl = default_result_ttl;
    bool require_payload = false;  // POST /solve/async: input_json is required
};

// Parses a request body as JSON. Malformed → invalid_argument ("malformed JSON: ...").
api_result<boost::json::value> parse_json(std::string_view body);

// Fields (all optional unless noted): queue | service_required (string),
// payload | input_json (any JSON; default {}), priority (integer in
// [min_priority, max_priority] or "high"=10 / "normal"=0 / "low"=-10),
// max_retries (integer 0..1000), timeout_seconds (number > 0), ttl_seconds
// (integer > 0), delay_ms (integer >= 0) or scheduled_at (ISO 8601 string),
// unique_key (string), tenant (string; the route replaces it when auth is on).
// null counts as absent. `now` turns delay_ms into run_at.
api_result<job_spec> parse_submit(const boost::json::value& body, const submit_defaults& defaults,
                                  millis now);

// GET /api/jobs?queue=&status=&limit=&cursor=  (limit 1..1000, default 50).
api_result<store::list_query> parse_list_query(const query_params& params);

// Priority words: "high" 10, "normal" 0, "low" -10; nullopt for other text.
std::optional<int> priority_from_word(std::string_view word) noexcept;
// Queue names: 1..128 characters of [A-Za-z0-9_.:-] (they become part of Redis keys).
bool is_valid_queue_name(std::string_view name) noexcept;

}  // namespace spool::http
