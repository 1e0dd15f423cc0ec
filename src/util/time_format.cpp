// src/util/time_format.cpp
#include "util/time_format.hpp"

#include <chrono>
#include <cstdio>

namespace spool {

std::string format_iso8601(millis t) {
    using namespace std::chrono;
    sys_days day = floor<days>(sys_time<milliseconds>{milliseconds{t}});
    year_month_day ymd{day};
    auto rest = milliseconds{t} - duration_cast<milliseconds>(day.time_since_epoch());
    hh_mm_ss hms{rest};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
    return buf;
}

namespace {

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    out = v;
    return true;
}

}  // namespace

std::optional<millis> parse_iso8601(std::string_view s) {
    using namespace std::chrono;
    int y, mo, d, h, mi, sec, ms = 0;
    if (!digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
        !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, h) ||
        s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, sec))
        return std::nullopt;
    std::size_t pos = 19;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        int scale = 100;
        std::size_t start = pos;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            ms += (s[pos] - '0') * scale;
            scale /= 10;
            ++pos;
        }
        if (pos == start) return std::nullopt;
    }
    long offset_min = 0;
    if (pos < s.size()) {
        if (s[pos] == 'Z' || s[pos] == 'z') {
            ++pos;
        } else if (s[pos] == '+' || s[pos] == '-') {
            int oh, om;
            if (!digits(s, pos + 1, 2, oh)) return std::nullopt;
            std::size_t mpos = pos + 3;
            if (mpos < s.size() && s[mpos] == ':') ++mpos;
            if (!digits(s, mpos, 2, om)) return std::nullopt;
            if (oh > 23 || om > 59) return std::nullopt;  // RFC 3339: -23:59 .. +23:59
            offset_min = (s[pos] == '-' ? -1 : 1) * (oh * 60 + om);
            pos = mpos + 2;
        } else {
            return std::nullopt;
        }
    }
    if (pos != s.size()) return std::nullopt;
    year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
    auto tp = sys_days{ymd} + hours{h} + minutes{mi} + seconds{sec} + milliseconds{ms} - minutes{offset_min};
    return duration_cast<milliseconds>(tp.time_since_epoch()).count();
}

}  // namespace spool
