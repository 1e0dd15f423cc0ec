// src/util/ids.cpp
// UUIDv7 with a 12-bit counter in rand_a (RFC 9562 method 1), so ids minted in
// the same millisecond by one process still sort in order.
#include "util/ids.hpp"

#include <cstdint>
#include <mutex>
#include <random>

namespace spool {

namespace {

struct id_state {
    std::mutex mu;
    std::mt19937_64 rng{std::random_device{}()};
    millis last_ms = 0;
    std::uint32_t counter = 0;
};

id_state& state() {
    static id_state s;
    return s;
}

}  // namespace

namespace {
constexpr std::uint64_t tag_marker = 0x5b0d;  // bits 16..31 of rand_b in a tagged id
}

std::string make_job_id(millis at) { return make_job_id(at, 0); }

std::string make_job_id(millis at, std::uint16_t tag) {
    std::uint64_t hi, lo;
    {
        auto& s = state();
        std::lock_guard lock{s.mu};
        if (at <= s.last_ms) {
            // Same (or an earlier) millisecond: keep the timestamp, bump the counter.
            if (++s.counter > 0xfff) {
                ++s.last_ms;
                s.counter = 0;
            }
        } else {
            s.last_ms = at;
            s.counter = static_cast<std::uint32_t>(s.rng() & 0x1ff);  // random start, headroom left
        }
        hi = (static_cast<std::uint64_t>(s.last_ms) << 16) | 0x7000u | s.counter;
        lo = (s.rng() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
        if (tag != 0) lo = (lo & ~0xffffffffULL) | (tag_marker << 16) | tag;
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out(36, '-');
    int pos = 0;
    auto put = [&](std::uint64_t v, int nibbles) {
        for (int i = nibbles - 1; i >= 0; --i) {
            if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
            out[pos++] = hex[(v >> (i * 4)) & 0xf];
        }
    };
    put(hi, 16);
    put(lo, 16);
    return out;
}

std::optional<std::uint16_t> job_id_tag(std::string_view id) noexcept {
    if (!is_valid_job_id(id)) return std::nullopt;
    std::uint32_t low = 0;
    for (char c : id.substr(28)) low = low * 16 + static_cast<std::uint32_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    if ((low >> 16) != tag_marker || (low & 0xffff) == 0) return std::nullopt;
    return static_cast<std::uint16_t>(low & 0xffff);
}

bool is_valid_job_id(std::string_view s) noexcept {
    if (s.size() != 36) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

}  // namespace spool
