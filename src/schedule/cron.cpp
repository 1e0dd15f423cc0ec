// src/schedule/cron.cpp
// Parsing walks the fields left to right and reports the first problem with the
// field's number and name. The next fire time is searched in local wall-clock
// time, field by field (a month that does not match skips to the next month, and
// so on), and each local candidate is then mapped to UTC through the zone's rules.
#include "schedule/cron.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <charconv>
#include <stdexcept>
#include <vector>

namespace spool::schedule {

void throw_exception_from_error(const cron_error& e, const boost::source_location&) {
    throw std::invalid_argument(e.message);
}

// ------------------------------------------------------------------ zones

zone::zone() : name_{"UTC"} {
    // Without a tz database (no tzdata installed) UTC still works: tz_ stays null.
    try {
        tz_ = date::locate_zone("UTC");
    } catch (const std::exception&) {
        tz_ = nullptr;
    }
}

cron_result<zone> zone::find(std::string_view name) {
    zone z;
    if (name.empty()) return cron_error{"must name an IANA time zone, e.g. \"Europe/Berlin\""};
    if (name == "UTC") return z;
    try {
        z.tz_ = date::locate_zone(name);
    } catch (const std::exception&) {
        return cron_error{fmt::format(
            "unknown time zone \"{}\" (expected an IANA name such as \"America/New_York\")", name)};
    }
    z.name_ = std::string{name};
    return z;
}

// ------------------------------------------------------------------ parsing

namespace {

struct field_spec {
    const char* name;
    int min, max;
    const std::array<const char*, 12>* names;  // names[i] stands for min_named + i
    int min_named;
};

constexpr std::array<const char*, 12> month_names = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                     "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<const char*, 12> day_names = {"SUN", "MON",   "TUE",   "WED",   "THU",   "FRI",
                                                   "SAT", nullptr, nullptr, nullptr, nullptr, nullptr};

const field_spec second_field{"second", 0, 59, nullptr, 0};
const field_spec minute_field{"minute", 0, 59, nullptr, 0};
const field_spec hour_field{"hour", 0, 23, nullptr, 0};
const field_spec day_field{"day-of-month", 1, 31, nullptr, 0};
const field_spec month_field{"month", 1, 12, &month_names, 1};
const field_spec weekday_field{"day-of-week", 0, 7, &day_names, 0};

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (;;) {
        auto p = s.find(sep, start);
        out.push_back(s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
        if (p == std::string_view::npos) return out;
        start = p + 1;
    }
}

std::vector<std::string_view> words(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
        std::size_t j = i;
        while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
        if (j > i) out.push_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

std::optional<int> to_int(std::string_view s) {
    int v = 0;
    if (s.empty()) return std::nullopt;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
}

class field_parser {
public:
    field_parser(const field_spec& f, int index) : f_{f}, index_{index} {}

    // Sets the bits of `text` in `bits` (indexed by value). Errors name the field.
    template <std::size_t N>
    cron_result<void> parse(std::string_view text, std::bitset<N>& bits) const {
        if (text.empty()) return fail("empty");
        for (auto item : split(text, ',')) {
            if (item.empty()) return fail(fmt::format("\"{}\" has an empty list item", text));
            auto slash = item.find('/');
            std::string_view base = item.substr(0, slash);
            int step = 1;
            if (slash != std::string_view::npos) {
                auto s = to_int(item.substr(slash + 1));
                if (!s || *s < 1) return fail(fmt::format("step in \"{}\" must be a positive integer", item));
                step = *s;
            }
            int lo = f_.min, hi = f_.max;
            if (base == "*" || base == "?") {
                if (base == "?" && f_.names != &day_names && std::string_view{f_.name} != "day-of-month")
                    return fail("\"?\" is only allowed in the day fields");
                if (f_.names == &day_names) hi = 6;  // * is 0..6 (7 is Sunday again)
            } else {
                auto dash = base.find('-');
                auto a = value(base.substr(0, dash));
                if (!a) return a.error();
                lo = *a;
                if (dash != std::string_view::npos) {
                    auto b = value(base.substr(dash + 1));
                    if (!b) return b.error();
                    hi = *b;
                    if (hi < lo) return fail(fmt::format("range \"{}\" runs backwards", base));
                } else if (slash == std::string_view::npos) {
                    hi = lo;
                }
            }
            for (int v = lo; v <= hi; v += step) bits.set(static_cast<std::size_t>(v % static_cast<int>(N)));
        }
        return {};
    }

private:
    cron_result<int> value(std::string_view s) const {
        if (s.empty()) return fail("empty value");
        if (f_.names) {
            for (std::size_t i = 0; i < f_.names->size(); ++i)
                if ((*f_.names)[i] && iequals(s, (*f_.names)[i])) return f_.min_named + static_cast<int>(i);
        }
        auto v = to_int(s);
        if (!v) return fail(fmt::format("\"{}\" is not a number{}", s, f_.names ? " or a name" : ""));
        if (*v < f_.min || *v > f_.max)
            return fail(fmt::format("{} is out of range {}..{}", *v, f_.min, f_.max));
        return *v;
    }
    cron_error fail(const std::string& what) const {
        return cron_error{fmt::format("field {} ({}): {}", index_, f_.name, what)};
    }

    const field_spec& f_;
    int index_;
};

const std::array<std::pair<const char*, const char*>, 7> macros = {{{"@yearly", "0 0 1 1 *"},
                                                                    {"@annually", "0 0 1 1 *"},
                                                                    {"@monthly", "0 0 1 * *"},
                                                                    {"@weekly", "0 0 * * 0"},
                                                                    {"@daily", "0 0 * * *"},
                                                                    {"@midnight", "0 0 * * *"},
                                                                    {"@hourly", "0 * * * *"}}};

bool unrestricted(std::string_view field) { return !field.empty() && (field[0] == '*' || field[0] == '?'); }

}  // namespace

cron_result<std::chrono::milliseconds> parse_duration(std::string_view text) {
    if (text.empty()) return cron_error{"expected a duration such as 30s, 5m or 1h30m, got nothing"};
    constexpr std::array<std::pair<char, long long>, 4> units = {
        {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}}};
    long long total = 0;
    std::size_t next_unit = 0, i = 0;
    while (i < text.size()) {
        std::size_t j = i;
        while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
        if (j == i || j == text.size())
            return cron_error{fmt::format("expected a duration such as 30s, 5m or 1h30m, got \"{}\"", text)};
        long long n = 0;
        auto [end, ec] = std::from_chars(text.data() + i, text.data() + j, n);
        if (ec != std::errc{} || n > 1'000'000'000)
            return cron_error{fmt::format("\"{}\" is too large", text)};
        std::size_t u = next_unit;
        while (u < units.size() && units[u].first != text[j]) ++u;
        if (u == units.size())
            return cron_error{fmt::format("\"{}\": units are d, h, m, s, each once and in that order", text)};
        total += n * units[u].second;
        next_unit = u + 1;
        i = j + 1;
    }
    if (total < 1) return cron_error{fmt::format("\"{}\" must be at least 1s", text)};
    if (total > 366LL * 86400) return cron_error{fmt::format("\"{}\" is longer than a year", text)};
    return std::chrono::milliseconds{total * 1000};
}

cron_result<cron> cron::parse(std::string_view text) {
    cron c;
    c.text_ = std::string{text};
    auto w = words(text);
    if (w.empty())
        return cron_error{"is empty: expected 5 or 6 fields, or a macro such as @hourly or @every 30s"};
    if (w[0][0] == '@') {
        if (iequals(w[0], "@every")) {
            if (w.size() != 2) return cron_error{"@every takes one duration, e.g. \"@every 30s\""};
            auto d = parse_duration(w[1]);
            if (!d) return cron_error{"@every: " + d.error().message};
            c.every_ = *d;
            return c;
        }
        for (const auto& [name, expansion] : macros) {
            if (iequals(w[0], name)) {
                if (w.size() != 1) return cron_error{fmt::format("{} takes no fields", name)};
                auto inner = parse(expansion);
                if (!inner) return inner.error();
                inner->text_ = c.text_;
                return inner;
            }
        }
        return cron_error{
            fmt::format("unknown macro \"{}\" (expected @yearly, @annually, @monthly, @weekly, "
                        "@daily, @midnight, @hourly or @every <duration>)",
                        w[0])};
    }
    if (w.size() != 5 && w.size() != 6)
        return cron_error{
            fmt::format("expected 5 fields (minute hour day-of-month month day-of-week) or 6 "
                        "(second first), got {}",
                        w.size())};
    std::size_t k = 0;
    int index = 1;
    if (w.size() == 6) {
        if (auto r = field_parser{second_field, index++}.parse(w[k++], c.seconds_); !r) return r.error();
    } else {
        c.seconds_.set(0);
    }
    if (auto r = field_parser{minute_field, index++}.parse(w[k++], c.minutes_); !r) return r.error();
    if (auto r = field_parser{hour_field, index++}.parse(w[k++], c.hours_); !r) return r.error();
    c.days_star_ = unrestricted(w[k]);
    if (auto r = field_parser{day_field, index++}.parse(w[k++], c.days_); !r) return r.error();
    if (auto r = field_parser{month_field, index++}.parse(w[k++], c.months_); !r) return r.error();
    c.weekdays_star_ = unrestricted(w[k]);
    if (auto r = field_parser{weekday_field, index++}.parse(w[k++], c.weekdays_); !r) return r.error();
    return c;
}

// ------------------------------------------------------------------ next fire time

bool cron::day_matches(int year, unsigned month, unsigned day, unsigned weekday) const {
    (void)year;
    (void)month;
    const bool dom = days_.test(day), dow = weekdays_.test(weekday);
    if (!days_star_ && !weekdays_star_) return dom || dow;  // Vixie cron: either restricted field
    return dom && dow;
}

std::optional<millis> cron::next_after(millis t, const zone& z) const {
    if (every_) {
        const auto iv = every_->count();
        // Floor division (t may be negative in tests of far-past times).
        auto k = t >= 0 ? t / iv : -((-t + iv - 1) / iv);
        return (k + 1) * iv;
    }
    return next_calendar(t, z);
}

std::optional<millis> cron::next_calendar(millis t, const zone& z) const {
    using namespace std::chrono;
    using date::local_days;
    using date::local_seconds;
    using date::sys_seconds;
    const date::time_zone* tz = z.get();

    const sys_seconds start =
        date::floor<seconds>(date::sys_time<milliseconds>{milliseconds{t}}) + seconds{1};
    auto to_local = [tz](sys_seconds s) {
        return tz ? tz->to_local(s) : local_seconds{s.time_since_epoch()};
    };
    local_seconds l = to_local(start);
    const auto last_year = date::year_month_day{date::floor<date::days>(l)}.year() + date::years{8};

    // Each step either returns or moves `l` forward; the bound is a safety net
    // (8 years of day skips plus the hour/minute/second skips within matching days).
    for (int guard = 0; guard < 2'000'000; ++guard) {
        const local_days day = date::floor<date::days>(l);
        const date::year_month_day ymd{day};
        if (ymd.year() > last_year) return std::nullopt;
        const unsigned month = static_cast<unsigned>(ymd.month());
        if (!months_.test(month)) {
            const date::year_month next = date::year_month{ymd.year(), ymd.month()} + date::months{1};
            l = local_days{next / 1};
            continue;
        }
        const unsigned weekday = date::weekday{day}.c_encoding();
        if (!day_matches(static_cast<int>(ymd.year()), month, static_cast<unsigned>(ymd.day()), weekday)) {
            l = day + date::days{1};
            continue;
        }
        const date::hh_mm_ss<seconds> tod{l - day};
        const auto h = static_cast<std::size_t>(tod.hours().count());
        const auto m = static_cast<std::size_t>(tod.minutes().count());
        const auto s = static_cast<std::size_t>(tod.seconds().count());
        if (!hours_.test(h)) {
            l = day + hours{h + 1};
            continue;
        }
        if (!minutes_.test(m)) {
            l = day + hours{h} + minutes{m + 1};
            continue;
        }
        if (!seconds_.test(s)) {
            l = day + hours{h} + minutes{m} + seconds{s + 1};
            continue;
        }
        // A local candidate: map it to UTC through the zone's rules.
        if (!tz) {
            sys_seconds at{l.time_since_epoch()};
            if (at >= start) return duration_cast<milliseconds>(at.time_since_epoch()).count();
            l += seconds{1};
            continue;
        }
        const auto info = tz->get_info(l);
        if (info.result == date::local_info::nonexistent) {
            // Skipped by the clocks going forward: resume where local time resumes.
            l = tz->to_local(info.second.begin);
            continue;
        }
        // Unique, or the first occurrence of a repeated local time.
        const sys_seconds at{l.time_since_epoch() - info.first.offset};
        if (at >= start) return duration_cast<milliseconds>(at.time_since_epoch()).count();
        if (info.result == date::local_info::ambiguous) {
            // We are in the repeat: every candidate before its end already ran
            // (first occurrence); continue after the repeated range.
            l = local_seconds{(info.first.end + info.first.offset).time_since_epoch()};
            continue;
        }
        l += seconds{1};
    }
    return std::nullopt;
}

}  // namespace spool::schedule
