// src/worker/backoff.hpp
// Retry delay after a failed attempt: base * 2^(attempt-1), capped, with "equal
// jitter" (half fixed, half random) so retries of many jobs spread out. Pure.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace spool::worker_detail {

inline constexpr std::chrono::milliseconds max_backoff{24 * 3600 * 1000LL};

// `unit_random` in [0, 1).
inline std::chrono::milliseconds retry_backoff(std::chrono::milliseconds base, int attempt, double unit_random) {
    if (base.count() <= 0) return std::chrono::milliseconds{0};
    int shift = std::clamp(attempt - 1, 0, 40);
    long double full = static_cast<long double>(base.count()) * static_cast<long double>(1ULL << shift);
    full = std::min<long double>(full, static_cast<long double>(max_backoff.count()));
    long double half = full / 2;
    auto ms = static_cast<std::int64_t>(half + half * std::clamp(unit_random, 0.0, 1.0));
    return std::chrono::milliseconds{ms};
}

}  // namespace spool::worker_detail
