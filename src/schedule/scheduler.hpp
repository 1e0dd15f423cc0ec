// src/schedule/scheduler.hpp
// The scheduler loop every `spool serve` replica runs, and the schedule
// operations the HTTP API and the config loader share.
//
// The loop keeps the schedules in memory and one timer to the earliest next
// fire time (no polling per tick). At a tick it computes the following fire
// time (cron, zone, catch-up policy) and hands both to schedule_fire, which
// alone decides: of all replicas waking for a tick, exactly one makes the job,
// the others get `stale` and take the stored next time. Definitions are
// re-read when a change is announced on the changes channel and at least every
// `refresh` anyway (a missed message costs at most that).
//
// Threading: construct, spawn and poke on the store connection's executor; the
// store, subscriber and clock must outlive the loops.
#pragma once

#include "redis/subscriber.hpp"
#include "schedule/definition.hpp"
#include "store/schedules.hpp"
#include "util/asio.hpp"
#include "util/clock.hpp"
#include "util/task_group.hpp"

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace spool::schedule {

struct scheduler_options {
    std::chrono::milliseconds refresh{1000};  // re-read every definition at least this often
};

class scheduler {
public:
    // `sub` may be null (then only the periodic refresh sees other replicas' changes).
    scheduler(asio::any_io_executor ex, store::schedule_store& store, std::shared_ptr<redis::subscriber> sub,
              const clock& clk = system_clock::instance(), scheduler_options opts = {});

    // Spawns run() and, with a subscriber, listen() into `group`.
    void spawn(task_group& group);
    // Runs until cancelled. Redis errors are logged (throttled) and retried, never thrown.
    asio::awaitable<void> run();
    // Follows the changes channel and pokes run(); ends when the subscriber stops.
    asio::awaitable<void> listen();
    // Re-read the definitions now (a local change).
    void poke();

private:
    struct entry {
        store::schedule_row row;
        definition def;
        millis checked_from = 0;  // catch_up all: the backlog was bounded from this tick on
    };
    asio::awaitable<void> reload();
    asio::awaitable<void> fire_due(entry& e);

    store::schedule_store& store_;
    std::shared_ptr<redis::subscriber> sub_;
    const clock& clk_;
    scheduler_options opts_;
    asio::steady_timer wake_;
    std::vector<entry> entries_;
    bool dirty_ = true;
    bool poked_ = false;
    bool failing_ = false;  // the last Redis call failed: back off before the next try
    millis last_warn_ = 0;
    std::set<std::string> warned_;  // unusable definitions already logged (name|version)
};

// The job a schedule makes.
job_spec job_of(const definition& d);

// Deletes a schedule and tells every scheduler; false when there was none.
asio::awaitable<result<bool>> remove(store::schedule_store& store, std::string name);

// Creates or replaces a schedule; its first fire time is the first tick after
// `now` (kept when an existing schedule's timing did not change).
asio::awaitable<result<store::schedule_upsert_result>> upsert(store::schedule_store& store, definition d,
                                                              millis now);
// Makes one job now, whatever the cron says (overlap does not apply). The new
// job's id; nullopt for an unknown schedule.
asio::awaitable<result<std::optional<std::string>>> trigger(store::schedule_store& store, std::string name,
                                                            millis now);
// Pauses or resumes; a resumed schedule restarts at the first tick after `now`.
// False for an unknown schedule.
asio::awaitable<result<bool>> set_paused(store::schedule_store& store, std::string name, bool paused,
                                         millis now);
// Upserts each definition (JSON text, already validated: the config file's
// `schedules`) as a config schedule ("source":"config"), then removes the config
// schedules Redis holds that these do not name; retries while Redis is
// unreachable; ends when done or on cancellation.
asio::awaitable<void> upsert_all(store::schedule_store& store, std::vector<std::string> definitions);
// Removes every stored schedule whose source is the config and whose name is not
// in `keep`; returns their names.
asio::awaitable<result<std::vector<std::string>>> prune_config_schedules(store::schedule_store& store,
                                                                        std::set<std::string> keep);
// The stored definition of a row, parsed.
definition_result<definition> definition_of(const store::schedule_row& row);

}  // namespace spool::schedule
