// src/maintenance/maintenance.hpp
// The background loops `spool serve` runs over every queue:
//   promoter  due scheduled jobs -> queued (workers also take due jobs when they
//             claim; this keeps `queued` honest when no worker is idle)
//   reaper    jobs whose lease ran out (dead worker) -> queued again, or failed
//   janitor   terminal job records older than the retention -> deleted
// Every step re-checks its candidates inside a script, so several `serve`
// replicas on one Redis only skip each other's work, never double it.
#pragma once

#include "store/broker.hpp"
#include "util/asio.hpp"
#include "util/task_group.hpp"

#include <chrono>

namespace spool::maintenance {

struct options {
    std::chrono::milliseconds promote_every{250};
    std::chrono::milliseconds reap_every{1000};
    std::chrono::milliseconds trim_every{60000};
};

class loops {
public:
    // `broker` must outlive the loops; spawn on the broker connection's executor.
    loops(store::broker& broker, options opts = {});
    // Spawns the three loops into `group`. Redis errors are logged (throttled)
    // and retried on the next tick, never thrown.
    void spawn(task_group& group);

    asio::awaitable<void> promoter();
    asio::awaitable<void> reaper();
    asio::awaitable<void> janitor();

private:
    template <class Step>
    asio::awaitable<void> every(std::chrono::milliseconds interval, const char* what, Step step);

    store::broker& broker_;
    options opts_;
};

}  // namespace spool::maintenance
