// src/redis/script.hpp
// A Lua script known by its SHA1. eval() sends EVALSHA and, when Redis answers
// NOSCRIPT (restart, SCRIPT FLUSH, failover), loads the source and retries once.
#pragma once

#include "redis/connection.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace spool::redis {

class script {
public:
    explicit script(std::string source);
    const std::string& source() const noexcept { return source_; }
    const std::string& sha1() const noexcept { return sha1_; }

    // EVALSHA sha numkeys keys... args...; NOSCRIPT → SCRIPT LOAD and retry.
    // `conn` and `this` must outlive the call.
    asio::awaitable<result<reply>> eval(connection& conn, std::vector<std::string> keys,
                                        std::vector<std::string> args,
                                        std::chrono::milliseconds timeout = {}) const;
    // The EVALSHA command alone, for callers that batch it with others.
    command evalsha_command(const std::vector<std::string>& keys, const std::vector<std::string>& args) const;

private:
    std::string source_;
    std::string sha1_;
};

}  // namespace spool::redis
