// include/spool/job.hpp
// The job model shared by producers, workers and the HTTP API: statuses, what a
// submitter sets (job_spec), and the stored record (job_record). Times are
// milliseconds since the Unix epoch (0 = not set); payloads and results are JSON text.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

using millis = std::int64_t;  // milliseconds since the Unix epoch

// waiting: depends on jobs that have not all completed yet (job_spec::depends_on).
enum class job_status { queued, scheduled, validating, in_progress, completed, failed, cancelled, expired, waiting };

// "queued", "in_progress", ... (the wire names used in Redis and the HTTP API).
std::string_view to_string(job_status s) noexcept;
std::optional<job_status> parse_job_status(std::string_view s) noexcept;
// completed, failed, cancelled and expired: nothing more will happen without a retry.
bool is_terminal(job_status s) noexcept;

inline constexpr std::string_view default_queue = "default";
inline constexpr int default_max_retries = 3;
inline constexpr std::chrono::seconds default_job_timeout{1800};
inline constexpr std::chrono::seconds default_result_ttl{3600};
inline constexpr std::chrono::seconds default_lease{30};
inline constexpr std::size_t default_max_payload_bytes = 1024 * 1024;
inline constexpr int min_priority = -1000;
inline constexpr int max_priority = 1000;

// What a submitter sets. `payload` must be valid JSON text (any JSON value).
struct job_spec {
    std::string queue{default_queue};
    std::string payload{"{}"};
    int priority = 0;  // higher runs first; FIFO within one priority; clamped to [min_priority, max_priority]
    int max_retries = default_max_retries;
    std::chrono::seconds timeout = default_job_timeout;
    std::chrono::seconds ttl = default_result_ttl;  // how long the result is kept
    millis run_at = 0;                              // 0: now; otherwise scheduled until then
    std::string unique_key;                         // empty: no deduplication
    std::string tenant;                             // empty: no tenant
    // Ids of jobs this one waits for (status `waiting`): it is queued once all of
    // them completed. A parent that fails for good or is cancelled fails this job
    // (on_parent_failure "fail"), cancels it ("cancel"), or counts as done ("run").
    std::vector<std::string> depends_on;
    std::string on_parent_failure = "fail";
};

// The stored status record of one job.
struct job_record {
    std::string id;
    std::string queue;
    std::string tenant;
    job_status status = job_status::queued;
    int priority = 0;
    int attempts = 0;  // attempts started so far
    int max_retries = default_max_retries;
    std::chrono::seconds timeout = default_job_timeout;
    std::chrono::seconds ttl = default_result_ttl;
    millis created_at = 0;
    millis scheduled_at = 0;  // when a scheduled job becomes due (delay or retry backoff)
    millis started_at = 0;
    millis completed_at = 0;  // when it reached a terminal status
    std::string error_message;
    bool result_available = false;
    std::size_t result_size_bytes = 0;
    int progress = 0;  // percent, 0..100
    std::string progress_message;
    std::string worker_id;
    std::string unique_key;
    bool cancel_requested = false;
    std::string payload;  // JSON text
    std::vector<std::string> parents;   // depends_on, as submitted
    std::vector<std::string> children;  // jobs submitted with this one in their depends_on
};

// What submit returns. `duplicate` is true when unique_key matched a live job and
// `id` is that job's id.
struct submit_result {
    std::string id;
    job_status status = job_status::queued;
    millis created_at = 0;
    bool duplicate = false;
};

// One entry of a job's event stream (also the SSE event). `id` is the Redis stream id.
struct job_event {
    std::string id;
    std::string type;  // "status" or "progress"
    std::string data;  // JSON object text
};

}  // namespace spool
