// src/redis/pipeline.hpp
// The sans-io heart of a connection: requests wait in a queue, go out together
// in one write (coalesced), and replies are matched to them in order. No
// sockets, no timers: connection.cpp drives it, pipeline_test.cpp tests it.
//
// Completions are called inline, after the pipeline's own state is updated (so a
// completion may push again); connection.cpp wraps each one so that it posts to
// the waiting coroutine's executor instead of resuming it inside the read loop.
#pragma once

#include "redis/command.hpp"
#include "redis/reply.hpp"
#include "redis/unique_function.hpp"

#include <spool/error.hpp>

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace spool::redis {

class pipeline {
public:
    // Receives the replies of a request (one per command), or an error. Called
    // exactly once per request (never when the pipeline is destroyed first).
    // Move-only, so it can own a coroutine's completion handler.
    using completion = detail::unique_function<void(boost::system::error_code, std::vector<reply>)>;

    // Queues the commands of one request; they are written together and their
    // replies delivered together. Returns the request's sequence number.
    std::uint64_t push(std::vector<command> cmds, std::chrono::steady_clock::time_point deadline,
                       completion done);
    // Encodes every queued request not yet written into one buffer and marks them
    // written. Empty when nothing waits.
    std::string take_writes();
    // The same, appending to `out` (so the caller can reuse its buffer). Returns
    // the number of commands appended.
    std::size_t take_writes(std::string& out);
    // Routes one reply to the oldest written request. Returns false when a reply
    // arrives that no request waits for (the connection must be dropped).
    bool on_reply(reply r);
    // Completes every request, written or not, with `ec` (connection lost or closing).
    void fail_all(boost::system::error_code ec);
    // Removes the requests not written yet and gives them (commands, deadline,
    // completion) to the caller, who must complete each: a connection handing its
    // queue to another (a cluster found at the first connect).
    struct handover {
        std::vector<command> cmds;
        std::chrono::steady_clock::time_point deadline;
        completion done;
    };
    std::vector<handover> take_unwritten();
    // Completes written requests with `ec` and keeps unwritten ones for the next connection.
    void fail_written(boost::system::error_code ec);
    // Completes unwritten requests whose deadline passed with `unwritten` (errc::timeout,
    // or errc::not_connected while the link is down). A *written* request past its
    // deadline completes with errc::timeout and stays in place (its replies are
    // discarded when they come); then expire returns true and the caller must drop
    // the connection, since the replies behind it can no longer be trusted in time.
    bool expire(std::chrono::steady_clock::time_point now, errc unwritten = errc::timeout);
    // Completes request `seq` now with asio::error::operation_aborted. An unwritten
    // request is removed; a written one stays in place and its replies are discarded.
    // Returns false when `seq` is unknown or already completed.
    bool cancel(std::uint64_t seq);
    // Earliest deadline of any pending request (time_point::max() when none).
    std::chrono::steady_clock::time_point next_deadline() const noexcept;

    bool has_unwritten() const noexcept { return written_ < requests_.size(); }
    std::size_t pending() const noexcept { return requests_.size(); }
    std::size_t in_flight() const noexcept { return written_; }

private:
    struct request {
        std::uint64_t seq;
        std::vector<command> cmds;  // emptied once encoded
        std::vector<reply> replies;
        std::size_t expected;  // number of replies (= commands)
        std::size_t received = 0;
        std::chrono::steady_clock::time_point deadline;
        completion done;
        bool abandoned = false;  // completed early (cancel, timeout): replies are dropped
    };
    std::deque<request> requests_;  // [0, written_) are on the wire, the rest wait
    std::size_t written_ = 0;
    std::uint64_t next_seq_ = 1;
};

}  // namespace spool::redis
