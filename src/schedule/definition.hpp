// src/schedule/definition.hpp
// What a schedule is: its name, cron expression and zone, the job it makes
// (queue, payload, options) and its catch-up and overlap policies; parsed from
// JSON (POST /api/schedules, and the YAML config through the same rules) with
// errors that name the field, and written back as the JSON stored in Redis.
// Sans-io.
#pragma once

#include "schedule/cron.hpp"

#include <spool/job.hpp>

#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace spool::schedule {

// Missed ticks (no replica was up): `none` makes one job at once and skips the
// rest; `all` makes one job per missed tick, at most `catch_up_limit` (the most
// recent ones).
enum class catch_up_policy { none, all };
// A tick whose previous job is still live (queued, scheduled, validating or
// in_progress): `skip` makes no job for it; `allow` makes one anyway.
enum class overlap_policy { allow, skip };

inline constexpr int default_catch_up_limit = 100;
inline constexpr int max_catch_up_limit = 10000;

struct definition {
    std::string name;
    std::string cron_text;
    std::string tz = "UTC";
    std::string queue{default_queue};
    std::string payload = "{}";  // JSON text
    int priority = 0;
    int max_retries = default_max_retries;
    std::chrono::seconds timeout = default_job_timeout;
    std::chrono::seconds ttl = default_result_ttl;
    catch_up_policy catch_up = catch_up_policy::none;
    int catch_up_limit = default_catch_up_limit;
    overlap_policy overlap = overlap_policy::allow;
    std::string tenant;          // the owner when API keys are on ("" otherwise)
    std::optional<bool> paused;  // requested state; unset: keep the stored one (new: running)
    // Declared in the config's `schedules:` (stored as "source":"config"): removed
    // from Redis when a server starts with a config that no longer declares it.
    bool from_config = false;

    // Parsed from cron_text / tz (valid after parse_definition).
    cron expr;
    zone tz_zone;

    // The part that decides the tick times: a change resets the next fire time.
    std::string timing() const { return cron_text + "|" + tz; }
    std::optional<millis> next_after(millis t) const { return expr.next_after(t, tz_zone); }
};

struct definition_error {
    std::string field;    // "cron", "tz", "catch_up", ...
    std::string message;  // the whole sentence, naming the field
};
[[noreturn]] void throw_exception_from_error(const definition_error& e, const boost::source_location& loc);

template <class T>
using definition_result = boost::system::result<T, definition_error>;

struct definition_defaults {
    std::string queue{default_queue};
    std::chrono::seconds ttl = default_result_ttl;
    std::size_t max_payload_bytes = default_max_payload_bytes;
};

// Fields: name (required; 1..128 of [A-Za-z0-9_.:-]), cron (required), tz,
// queue, payload (any JSON), priority (integer or high/normal/low), max_retries,
// timeout_seconds, ttl_seconds, catch_up (none|all), catch_up_limit,
// overlap (allow|skip), paused (boolean), tenant (string). Unknown fields are
// errors (a misspelt `overlpa` must not pass silently). `name_override`, when
// given, is the name (PUT-style routes and the YAML map form).
definition_result<definition> parse_definition(const boost::json::value& body, const definition_defaults& d,
                                               std::string_view name_override = {});
// The stored form (every field, no `paused`): parse_definition reads it back.
std::string to_json(const definition& d);
// The same as a JSON object (the API adds the schedule's run-time state to it).
boost::json::object to_object(const definition& d);
// Names: the same characters as queue names (they become part of Redis fields).
bool is_valid_name(std::string_view name) noexcept;

std::string_view to_string(catch_up_policy p) noexcept;
std::string_view to_string(overlap_policy p) noexcept;

}  // namespace spool::schedule
