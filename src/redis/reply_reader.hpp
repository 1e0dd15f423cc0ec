// src/redis/reply_reader.hpp
// Incremental RESP2 parser: an RAII wrapper over hiredis's redisReader that builds
// redis::reply values directly. Sans-io: feed bytes, pull replies.
#pragma once

#include "redis/reply.hpp"

#include <spool/result.hpp>

#include <memory>
#include <optional>
#include <string_view>

struct redisReader;

namespace spool::redis {

class reply_reader {
public:
    reply_reader();
    ~reply_reader();
    reply_reader(const reply_reader&) = delete;
    reply_reader& operator=(const reply_reader&) = delete;

    // Appends raw bytes from the socket. Returns errc::bad_reply on a protocol error.
    result<void> feed(std::string_view bytes);
    // The next complete reply, nullopt when more bytes are needed, or errc::bad_reply.
    result<std::optional<reply>> next();
    // Drops buffered bytes and partial state (after a reconnect).
    void reset();

private:
    redisReader* reader_ = nullptr;
};

}  // namespace spool::redis
