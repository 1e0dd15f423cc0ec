// src/http/history_recorder.hpp
// The loop behind the dashboard's charts: once per history bucket it writes every
// queue's cumulative counters into the queue's history hash (broker::record_history),
// so throughput over the last hour lives in Redis: it survives restarts and every
// API replica serves the same numbers. No Redis work per job.
#pragma once

#include "http/route.hpp"

namespace spool::http {

// Runs until cancelled; spawn it on the server's executor. The first snapshot is
// written at once, then one right after each bucket boundary. Redis errors are
// logged (at most once a minute) and retried on the next bucket, never thrown.
asio::awaitable<void> record_history(server_state& s);

}  // namespace spool::http
