// src/store/calls.hpp
// The store's Redis calls (broker, schedules): one command or one script whose
// error reply becomes errc::redis_error (logged), and reply-number parsing.
#pragma once

#include "redis/connection.hpp"
#include "redis/script.hpp"
#include "util/asio.hpp"

#include <spool/result.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace spool::store {

asio::awaitable<result<redis::reply>> run_script(redis::connection& conn, const redis::script& s,
                                                 std::vector<std::string> keys, std::vector<std::string> args);
asio::awaitable<result<redis::reply>> run_cmd(redis::connection& conn, redis::command c);
// A decimal number in a reply string (0 when it is not one).
long long to_ll(std::string_view s);

}  // namespace spool::store
