// src/redis/reply.hpp
// One RESP2 reply as a value: nil, integer, bulk string, status, error or array.
// An error reply is a value here, not a failed request: the caller decides.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool::redis {

struct reply {
    enum class kind : std::uint8_t { nil, integer, string, status, error, array };

    kind type = kind::nil;
    long long integer = 0;
    std::string str;  // string, status and error text
    std::vector<reply> elements;

    bool is_nil() const noexcept { return type == kind::nil; }
    bool is_error() const noexcept { return type == kind::error; }
    bool is_array() const noexcept { return type == kind::array; }
    bool is_integer() const noexcept { return type == kind::integer; }
    bool is_string() const noexcept { return type == kind::string || type == kind::status; }

    // The integer value, or a string reply parsed as an integer; nullopt otherwise.
    std::optional<long long> as_integer() const noexcept;
    // Text of a string/status reply ("" for nil).
    std::string_view as_string() const noexcept { return str; }

    static reply make_nil() { return {}; }
    static reply make_integer(long long v) {
        reply r;
        r.type = kind::integer;
        r.integer = v;
        return r;
    }
    static reply make_string(std::string s, kind k = kind::string) {
        reply r;
        r.type = k;
        r.str = std::move(s);
        return r;
    }
};

}  // namespace spool::redis
