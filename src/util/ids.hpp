// src/util/ids.hpp
// Job ids: UUIDv7 strings (RFC 9562). They sort by creation time, so the text
// order of ids is the order they were made in (monotonic within one process).
#pragma once

#include <spool/job.hpp>

#include <string>

namespace spool {

// A new UUIDv7 for time `at` (ms since the epoch). Thread-safe.
std::string make_job_id(millis at);
// True when `s` has the canonical 8-4-4-4-12 lowercase hex shape.
bool is_valid_job_id(std::string_view s) noexcept;

}  // namespace spool
