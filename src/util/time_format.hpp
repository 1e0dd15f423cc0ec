// src/util/time_format.hpp
// ISO 8601 text for job timestamps ("2025-11-24T14:53:10.114Z") and back.
#pragma once

#include <spool/job.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace spool {

// UTC with millisecond precision and a trailing Z.
std::string format_iso8601(millis t);
// Accepts "YYYY-MM-DDTHH:MM:SS[.fff][Z|+hh:mm|-hh:mm]" (a space may replace T; no
// zone means UTC). nullopt on anything else.
std::optional<millis> parse_iso8601(std::string_view s);

}  // namespace spool
