// src/store/calls.cpp
#include "store/calls.hpp"

#include "util/log.hpp"

#include <spool/error.hpp>

#include <charconv>

namespace spool::store {

asio::awaitable<result<redis::reply>> run_script(redis::connection& conn, const redis::script& s,
                                                 std::vector<std::string> keys, std::vector<std::string> args) {
    auto r = co_await s.eval(conn, std::move(keys), std::move(args));
    if (!r) co_return r.error();
    if (r->is_error()) {
        log::get("store")->error("script error: {}", r->str);
        co_return errc::redis_error;
    }
    co_return std::move(*r);
}

asio::awaitable<result<redis::reply>> run_cmd(redis::connection& conn, redis::command c) {
    auto r = co_await conn.exec(std::move(c));
    if (!r) co_return r.error();
    if (r->is_error()) {
        log::get("store")->error("redis error: {}", r->str);
        co_return errc::redis_error;
    }
    co_return std::move(*r);
}

long long to_ll(std::string_view s) {
    long long v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

}  // namespace spool::store
