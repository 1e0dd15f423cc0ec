// src/redis/pipeline.hpp
// The sans-io heart of a connection: requests wait in a queue, go out together
// in one write (coalesced), and replies are matched to them in order. No
// sockets, no timers: connection.cpp drives it, pipeline_test.cpp tests it.
#pragma once

#include "redis/command.hpp"
#include "redis/reply.hpp"

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

namespace spool::redis {

class pipeline {
public:
    // Receives the replies of a request (one per command), or an error. Called
    // exactly once per request.
    using completion = std::function<void(boost::system::error_code, std::vector<reply>)>;

    // Queues the commands of one request; they are written together and their
    // replies delivered together. Returns the request's sequence number.
    std::uint64_t push(std::vector<command> cmds, std::chrono::steady_clock::time_point deadline,
                       completion done);
    // Encodes every queued request not yet written into one buffer and marks them
    // written. Empty when nothing waits.
    std::string take_writes();
    // Routes one reply to the oldest written request. Returns false when a reply
    // arrives that no request waits for (the connection must be dropped).
    bool on_reply(reply r);
    // Completes every request, written or not, with `ec` (connection lost or closing).
    void fail_all(boost::system::error_code ec);
    // Completes written requests with `ec` and keeps unwritten ones for the next connection.
    void fail_written(boost::system::error_code ec);
    // Completes unwritten requests whose deadline passed with errc::timeout. Returns
    // true when a *written* request is past its deadline (the caller drops the connection).
    bool expire(std::chrono::steady_clock::time_point now);
    // Earliest deadline of any pending request (time_point::max() when none).
    std::chrono::steady_clock::time_point next_deadline() const noexcept;

    bool has_unwritten() const noexcept { return written_ < requests_.size(); }
    std::size_t pending() const noexcept { return requests_.size(); }
    std::size_t in_flight() const noexcept { return written_; }

private:
    struct request {
        std::uint64_t seq;
        std::vector<command> cmds;
        std::vector<reply> replies;
        std::chrono::steady_clock::time_point deadline;
        completion done;
    };
    std::deque<request> requests_;  // [0, written_) are on the wire, the rest wait
    std::size_t written_ = 0;
    std::uint64_t next_seq_ = 1;
};

}  // namespace spool::redis
