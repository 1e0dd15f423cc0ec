// src/schedule/cron.hpp
// Cron expressions and their next fire time in an IANA time zone.
//
// Syntax (docs/operations.md, "Schedules"):
//   5 fields  minute hour day-of-month month day-of-week
//   6 fields  second minute hour day-of-month month day-of-week (seconds FIRST,
//             as in Quartz and most 6-field crons)
//   each field: `*` (also `?` in the day fields), a value, `a-b`, `*/n`, `a-b/n`,
//   `a/n` (a to the field's end), comma lists of those; months JAN..DEC and days
//   SUN..SAT by name (any case); day-of-week 0..7 (0 and 7 are Sunday).
//   macros: @yearly @annually @monthly @weekly @daily @midnight @hourly, and
//   @every <duration> (e.g. 30s, 5m, 1h30m, 2d; at least 1s): a fixed interval
//   counted from the Unix epoch, so every replica computes the same ticks.
// Day rule (Vixie cron): when both day-of-month and day-of-week are restricted
// (neither starts with `*` or `?`), a day matches when EITHER matches.
// DST: fire times are local wall-clock times of the zone. A local time the zone
// skips (spring forward) does not run; a local time that occurs twice (fall
// back) runs once, at its first occurrence. @every ignores the zone.
//
// Thread-safe: a parsed cron is immutable; the tz database (the system's, via
// Howard Hinnant's date library) is loaded once, on first use.
#pragma once

#include <spool/job.hpp>

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace date {
class time_zone;
}

namespace spool::schedule {

struct cron_error {
    std::string message;  // what is wrong, e.g. "field 2 (hour): 24 is out of range 0..23"
};
[[noreturn]] void throw_exception_from_error(const cron_error& e, const boost::source_location& loc);

template <class T>
using cron_result = boost::system::result<T, cron_error>;

// A time zone of the system tz database. UTC when default-constructed.
class zone {
public:
    zone();
    // The zone named `name` ("Europe/Berlin", "UTC"); an error for unknown names.
    static cron_result<zone> find(std::string_view name);
    const std::string& name() const noexcept { return name_; }
    const date::time_zone* get() const noexcept { return tz_; }

private:
    const date::time_zone* tz_ = nullptr;
    std::string name_;
};

class cron {
public:
    static cron_result<cron> parse(std::string_view text);

    // The earliest fire time strictly after `t` (ms since the epoch), in whole
    // seconds; nullopt when there is none within the next 8 years (e.g. "0 0 31 2 *").
    std::optional<millis> next_after(millis t, const zone& z) const;

    const std::string& text() const noexcept { return text_; }
    // @every: the interval; nullopt for calendar expressions.
    std::optional<std::chrono::milliseconds> every() const noexcept { return every_; }

private:
    bool day_matches(int year, unsigned month, unsigned day, unsigned weekday) const;
    std::optional<millis> next_calendar(millis t, const zone& z) const;

    std::string text_;
    std::optional<std::chrono::milliseconds> every_;
    std::bitset<60> seconds_, minutes_;
    std::bitset<24> hours_;
    std::bitset<32> days_;     // 1..31
    std::bitset<13> months_;   // 1..12
    std::bitset<7> weekdays_;  // 0 = Sunday
    bool days_star_ = true, weekdays_star_ = true;
};

// "1h30m" -> 5400000 ms. Units d, h, m, s (in that order, each at most once);
// errors name what is wrong. At least one second.
cron_result<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace spool::schedule
