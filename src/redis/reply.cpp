// src/redis/reply.cpp
#include "redis/reply.hpp"

#include <charconv>

namespace spool::redis {

std::optional<long long> reply::as_integer() const noexcept {
    if (type == kind::integer) return integer;
    if (!is_string() || str.empty()) return std::nullopt;
    long long v = 0;
    const char* end = str.data() + str.size();
    auto [p, ec] = std::from_chars(str.data(), end, v);
    if (ec != std::errc{} || p != end) return std::nullopt;
    return v;
}

}  // namespace spool::redis
