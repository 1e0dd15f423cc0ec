// src/schedule/cron_test.cpp
// Cron parsing and next fire times on fixed instants (the "fake clock": every
// case names the instant it starts from), in UTC and in zones with DST.
#include "schedule/cron.hpp"

#include <date/date.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

using spool::millis;
using spool::schedule::cron;
using spool::schedule::zone;

namespace {

// Milliseconds since the epoch of a UTC time.
millis utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0, int ms = 0) {
    using namespace std::chrono;
    auto day = date::sys_days{date::year{y} / date::month{mo} / date::day{d}};
    return duration_cast<milliseconds>(day.time_since_epoch()).count() + ((h * 60 + mi) * 60 + s) * 1000LL +
           ms;
}

std::string show(std::optional<millis> t) {
    if (!t) return "none";
    return date::format("%F %T", date::sys_time<std::chrono::milliseconds>{std::chrono::milliseconds{*t}});
}

cron parse(const std::string& text) {
    auto c = cron::parse(text);
    EXPECT_TRUE(c.has_value()) << text << ": " << (c ? "" : c.error().message);
    return c ? *c : cron{};
}

zone tz(const std::string& name) {
    auto z = zone::find(name);
    EXPECT_TRUE(z.has_value()) << name;
    return z ? *z : zone{};
}

std::string error_of(const std::string& text) {
    auto c = cron::parse(text);
    EXPECT_FALSE(c.has_value()) << text << " parsed";
    return c ? "" : c.error().message;
}

// next_after, shown as text so failures read as times.
std::string next(const std::string& expr, millis from, const zone& z = zone{}) {
    return show(parse(expr).next_after(from, z));
}

}  // namespace

TEST(Cron, FiveFieldsFireOnWholeMinutes) {
    EXPECT_EQ(next("*/15 * * * *", utc(2024, 5, 1, 10, 7, 30)), "2024-05-01 10:15:00.000");
    EXPECT_EQ(next("*/15 * * * *", utc(2024, 5, 1, 10, 15)), "2024-05-01 10:30:00.000");  // strictly after
    EXPECT_EQ(next("0 0 * * *", utc(2024, 12, 31, 23, 59, 59, 999)), "2025-01-01 00:00:00.000");
    EXPECT_EQ(next("5,10-12 3 * * *", utc(2024, 5, 1, 3, 10, 0, 1)), "2024-05-01 03:11:00.000");
}

TEST(Cron, SixthFieldIsSecondsAndComesFirst) {
    EXPECT_EQ(next("*/10 * * * * *", utc(2024, 5, 1, 10, 0, 5)), "2024-05-01 10:00:10.000");
    EXPECT_EQ(next("0-30/10 * * * * *", utc(2024, 5, 1, 10, 0, 31)), "2024-05-01 10:01:00.000");
    EXPECT_EQ(next("* * * * * *", utc(2024, 5, 1, 10, 0, 5, 300)), "2024-05-01 10:00:06.000");
    EXPECT_EQ(next("30 0 12 * * *", utc(2024, 5, 1, 12, 0, 30)), "2024-05-02 12:00:30.000");
}

TEST(Cron, MonthAndDayNamesInAnyCase) {
    // 2024-06-01 is a Saturday: the next weekday 09:00 in JAN is Wed 2025-01-01.
    EXPECT_EQ(next("0 9 * JAN MON-FRI", utc(2024, 6, 1)), "2025-01-01 09:00:00.000");
    EXPECT_EQ(next("0 9 * * sun", utc(2024, 6, 3)), "2024-06-09 09:00:00.000");
    EXPECT_EQ(next("0 0 * * 7", utc(2024, 6, 3)), "2024-06-09 00:00:00.000");  // 7 is Sunday too
    EXPECT_EQ(next("0 0 * * 5-7", utc(2024, 6, 8, 1)), "2024-06-09 00:00:00.000");
    EXPECT_EQ(next("0 0 1 jun,Dec *", utc(2024, 6, 2)), "2024-12-01 00:00:00.000");
}

TEST(Cron, RestrictedDayOfMonthAndDayOfWeekMatchEither) {
    // Vixie cron: "13th OR Friday". From Sunday 2024-09-01 the first Friday is the 6th.
    EXPECT_EQ(next("0 0 13 * FRI", utc(2024, 9, 1)), "2024-09-06 00:00:00.000");
    EXPECT_EQ(next("0 0 13 * FRI", utc(2024, 9, 7)), "2024-09-13 00:00:00.000");
    // One side unrestricted (starting with * or ?): both must hold.
    EXPECT_EQ(next("0 0 13 * *", utc(2024, 9, 1)), "2024-09-13 00:00:00.000");
    EXPECT_EQ(next("0 0 ? * FRI", utc(2024, 9, 7)), "2024-09-13 00:00:00.000");
    // "*/2" starts with *: odd days that are Mondays (2024-09-09 is one).
    EXPECT_EQ(next("0 0 */2 * MON", utc(2024, 9, 1)), "2024-09-09 00:00:00.000");
}

TEST(Cron, LeapDaysAndMonthEnds) {
    EXPECT_EQ(next("0 0 29 2 *", utc(2024, 3, 1)), "2028-02-29 00:00:00.000");
    EXPECT_EQ(next("0 0 29 2 *", utc(2024, 1, 15)), "2024-02-29 00:00:00.000");
    EXPECT_EQ(next("0 0 31 * *", utc(2024, 4, 1)), "2024-05-31 00:00:00.000");    // April has 30 days
    EXPECT_EQ(next("0 12 30 * *", utc(2024, 1, 31)), "2024-03-30 12:00:00.000");  // skips February
    EXPECT_EQ(next("0 0 31 2 *", utc(2024, 1, 1)), "none");                       // never
    EXPECT_EQ(next("0 0 1 * *", utc(2024, 2, 29, 23, 59)), "2024-03-01 00:00:00.000");
}

TEST(Cron, SpringForwardSkipsTheMissingLocalTimeNewYork) {
    auto ny = tz("America/New_York");
    // 2024-03-10: 02:00 EST jumps to 03:00 EDT. 02:30 does not exist that day.
    EXPECT_EQ(next("30 2 * * *", utc(2024, 3, 9, 12), ny), "2024-03-11 06:30:00.000");  // 02:30 EDT
    // Hourly: 01:00 EST, then 03:00 EDT (no 02:00).
    EXPECT_EQ(next("0 * * * *", utc(2024, 3, 10, 6, 30), ny), "2024-03-10 07:00:00.000");
    EXPECT_EQ(next("0 * * * *", utc(2024, 3, 10, 5, 30), ny), "2024-03-10 06:00:00.000");
    // A time before the gap on the same day still runs.
    EXPECT_EQ(next("30 1 * * *", utc(2024, 3, 10, 5), ny), "2024-03-10 06:30:00.000");  // 01:30 EST
}

TEST(Cron, FallBackRunsTheRepeatedHourOnceNewYork) {
    auto ny = tz("America/New_York");
    // 2024-11-03: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice
    // (05:30Z EDT and 06:30Z EST). Only the first runs.
    EXPECT_EQ(next("30 1 * * *", utc(2024, 11, 3, 4), ny), "2024-11-03 05:30:00.000");
    EXPECT_EQ(next("30 1 * * *", utc(2024, 11, 3, 5, 30), ny), "2024-11-04 06:30:00.000");
    // Half-hourly through the repeat: 01:00 and 01:30 EDT run, their EST repeats do not.
    EXPECT_EQ(next("*/30 * * * *", utc(2024, 11, 3, 5, 0), ny), "2024-11-03 05:30:00.000");
    EXPECT_EQ(next("*/30 * * * *", utc(2024, 11, 3, 5, 30), ny), "2024-11-03 07:00:00.000");  // 02:00 EST
    // Starting inside the second 01:xx: nothing until 02:00 EST.
    EXPECT_EQ(next("* * * * *", utc(2024, 11, 3, 6, 10), ny), "2024-11-03 07:00:00.000");
}

TEST(Cron, DstInBerlin) {
    auto berlin = tz("Europe/Berlin");
    // 2024-03-31: 02:00 CET jumps to 03:00 CEST.
    EXPECT_EQ(next("0 2 * * *", utc(2024, 3, 30, 12), berlin), "2024-04-01 00:00:00.000");
    EXPECT_EQ(next("15 3 * * *", utc(2024, 3, 30, 12), berlin), "2024-03-31 01:15:00.000");
    // 2024-10-27: 03:00 CEST falls back to 02:00 CET; 02:30 once, at CEST.
    EXPECT_EQ(next("30 2 * * *", utc(2024, 10, 26, 12), berlin), "2024-10-27 00:30:00.000");
    EXPECT_EQ(next("30 2 * * *", utc(2024, 10, 27, 0, 30), berlin), "2024-10-28 01:30:00.000");
    // Midnight in summer is 22:00 UTC the day before.
    EXPECT_EQ(next("@daily", utc(2024, 6, 1, 10), berlin), "2024-06-01 22:00:00.000");
}

TEST(Cron, MacrosExpand) {
    EXPECT_EQ(next("@hourly", utc(2024, 5, 1, 10, 0, 1)), "2024-05-01 11:00:00.000");
    EXPECT_EQ(next("@daily", utc(2024, 5, 1, 10)), "2024-05-02 00:00:00.000");
    EXPECT_EQ(next("@midnight", utc(2024, 5, 1, 10)), "2024-05-02 00:00:00.000");
    EXPECT_EQ(next("@weekly", utc(2024, 5, 1)), "2024-05-05 00:00:00.000");  // Sunday
    EXPECT_EQ(next("@monthly", utc(2024, 5, 1)), "2024-06-01 00:00:00.000");
    EXPECT_EQ(next("@yearly", utc(2024, 5, 1)), "2025-01-01 00:00:00.000");
    EXPECT_EQ(next("@annually", utc(2024, 5, 1)), "2025-01-01 00:00:00.000");
    EXPECT_EQ(parse("@HOURLY").text(), "@HOURLY");
}

TEST(Cron, EveryIsAFixedIntervalFromTheEpoch) {
    EXPECT_EQ(next("@every 30s", utc(2024, 5, 1, 10, 0, 10, 500)), "2024-05-01 10:00:30.000");
    EXPECT_EQ(next("@every 30s", utc(2024, 5, 1, 10, 0, 30)), "2024-05-01 10:01:00.000");
    EXPECT_EQ(next("@every 5m", utc(2024, 5, 1, 10, 7)), "2024-05-01 10:10:00.000");
    EXPECT_EQ(next("@every 1h30m", utc(2024, 5, 1, 1)), "2024-05-01 01:30:00.000");
    EXPECT_EQ(next("@every 1s", utc(2024, 5, 1, 1, 0, 0, 1)), "2024-05-01 01:00:01.000");
    // The zone does not matter, DST or not.
    EXPECT_EQ(next("@every 1h", utc(2024, 3, 10, 6, 30), tz("America/New_York")), "2024-03-10 07:00:00.000");
    EXPECT_EQ(parse("@every 1h30m").every()->count(), 5'400'000);
}

TEST(Cron, MalformedExpressionsNameTheProblem) {
    EXPECT_NE(error_of("61 * * * *").find("field 1 (minute)"), std::string::npos);
    EXPECT_NE(error_of("0 24 * * *").find("field 2 (hour): 24 is out of range 0..23"), std::string::npos);
    EXPECT_NE(error_of("* * *").find("expected 5 fields"), std::string::npos);
    EXPECT_NE(error_of("* * * * * * *").find("got 7"), std::string::npos);
    EXPECT_NE(error_of("0 0 0 * *").find("day-of-month"), std::string::npos);
    EXPECT_NE(error_of("* * * FOO *").find("field 4 (month)"), std::string::npos);
    EXPECT_NE(error_of("5-1 * * * *").find("backwards"), std::string::npos);
    EXPECT_NE(error_of("*/0 * * * *").find("step"), std::string::npos);
    EXPECT_NE(error_of("1,,2 * * * *").find("empty"), std::string::npos);
    EXPECT_NE(error_of("? * * * *").find("day fields"), std::string::npos);
    EXPECT_NE(error_of("@sometimes").find("unknown macro"), std::string::npos);
    EXPECT_NE(error_of("@hourly 5").find("takes no fields"), std::string::npos);
    EXPECT_NE(error_of("@every 0s").find("at least 1s"), std::string::npos);
    EXPECT_NE(error_of("@every 5x").find("units"), std::string::npos);
    EXPECT_NE(error_of("@every 5").find("duration"), std::string::npos);
    EXPECT_NE(error_of("@every").find("one duration"), std::string::npos);
    EXPECT_NE(error_of("").find("empty"), std::string::npos);
}

TEST(Cron, ZonesComeFromTheSystemDatabase) {
    EXPECT_EQ(zone{}.name(), "UTC");
    EXPECT_TRUE(zone::find("Asia/Kolkata").has_value());
    auto bad = zone::find("Mars/Olympus_Mons");
    ASSERT_FALSE(bad.has_value());
    EXPECT_NE(bad.error().message.find("unknown time zone"), std::string::npos);
    EXPECT_FALSE(zone::find("").has_value());
    // Kolkata is UTC+05:30 all year: 09:00 local is 03:30Z.
    EXPECT_EQ(next("0 9 * * *", utc(2024, 5, 1), tz("Asia/Kolkata")), "2024-05-01 03:30:00.000");
}
