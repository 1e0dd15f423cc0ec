// src/store/schedules.hpp
// Recurring schedules in Redis (docs/keys.md, "Schedules"): each schedule's
// definition, next fire time and state live under its target queue's hash tag,
// so the script that fires a tick touches the schedule and the queue in one
// Redis Cluster slot; a global index maps names to queues for listing.
// This layer knows keys and scripts only: the caller computes fire times (cron)
// and passes them in.
//
// Threading: use from the connection's executor; the connection and broker
// must outlive every call. Errors are values (connection errors, redis_error).
#pragma once

#include "redis/connection.hpp"
#include "store/broker.hpp"
#include "store/keys.hpp"
#include "util/asio.hpp"

#include <spool/job.hpp>
#include <spool/result.hpp>

#include <optional>
#include <string>
#include <vector>

namespace spool::store {

// What Redis holds for one schedule.
struct schedule_row {
    std::string name;
    std::string queue;
    std::string definition;  // JSON text (schedule::to_json)
    millis next = 0;         // next fire time; 0: none
    bool paused = false;
    std::int64_t version = 0;
    std::string last_job;      // id of the newest job it made ("" none)
    millis last_run_at = 0;    // when that job was made
    millis last_tick = 0;      // the tick the newest outcome was for
    std::string last_outcome;  // fired | triggered | skipped | ""
    std::int64_t runs = 0;     // jobs made (ticks and triggers)
    std::int64_t skipped = 0;  // ticks skipped by overlap: skip
};

struct schedule_upsert_result {
    bool created = false;
    millis next = 0;  // as stored (kept when the timing did not change)
};

// One tick (trigger = false) or a manual trigger of a schedule.
struct fire_request {
    std::string name;
    std::string queue;
    bool trigger = false;
    std::int64_t version = 0;       // the definition version the caller read
    millis expected_next = 0;       // tick: the next fire time the caller read
    millis new_next = 0;            // tick: the next fire time after this one (0: none)
    millis tick = 0;                // the tick's own time (recorded)
    bool overlap_skip = false;      // overlap: skip
    std::string expected_last_job;  // overlap skip: the previous job the caller read
    job_spec job;                   // queue, payload and options of the job to make
};

enum class fire_status { fired, skipped, stale, changed, paused, missing };

struct fire_outcome {
    fire_status status = fire_status::missing;
    std::string job_id;  // fired: the new job; skipped: the live previous one
    millis next = 0;     // stale: the stored next fire time (0: none)
};

class schedule_store {
public:
    schedule_store(redis::connection& conn, broker& b);

    // Creates or replaces `name` in `queue` (moving it when it lived in another
    // queue). `next` is used unless the stored timing is the same.
    asio::awaitable<result<schedule_upsert_result>> upsert(std::string name, std::string queue,
                                                           std::string definition, std::string timing,
                                                           millis next, std::optional<bool> paused);
    asio::awaitable<result<std::vector<schedule_row>>> load_all();
    asio::awaitable<result<std::optional<schedule_row>>> load(std::string name);
    // True when it existed.
    asio::awaitable<result<bool>> remove(std::string name);
    // False when there is no such schedule. `next_on_resume` restarts a paused one.
    asio::awaitable<result<bool>> set_paused(std::string name, bool paused, millis next_on_resume);
    // The decision of one tick or trigger, in one script call.
    asio::awaitable<result<fire_outcome>> fire(fire_request req, millis now);

    // Pub/sub channel on which definition changes are announced (payload: the name).
    std::string changes_channel() const { return k_.prefix() + ":schedule_changes"; }
    asio::awaitable<void> announce(std::string name);

    std::string defs_key(std::string_view queue) const { return k_.queue_key(queue, "schedules"); }
    std::string next_key(std::string_view queue) const { return k_.queue_key(queue, "schedule_next"); }
    std::string state_key(std::string_view queue) const { return k_.queue_key(queue, "schedule_state"); }
    std::string index_key() const { return k_.prefix() + ":schedules"; }

private:
    asio::awaitable<result<std::vector<schedule_row>>> load_queue(std::string queue,
                                                                  std::vector<std::string> names);
    asio::awaitable<result<redis::reply>> fire_script(std::vector<std::string> keys,
                                                      std::vector<std::string> args, std::string queue);

    redis::connection& conn_;
    broker& broker_;
    keys k_;
};

}  // namespace spool::store
