// src/util/ids.hpp
// Job ids: UUIDv7 strings (RFC 9562). They sort by creation time, so the text
// order of ids is the order they were made in (monotonic within one process).
#pragma once

#include <spool/job.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace spool {

// A new UUIDv7 for time `at` (ms since the epoch). Thread-safe.
std::string make_job_id(millis at);
// The same, carrying `tag` (1..65535: the job store's number for the job's queue)
// in its last random bits behind a fixed marker, so the id says where the job
// lives. Still an opaque, well-formed UUIDv7 to everyone else.
std::string make_job_id(millis at, std::uint16_t tag);
// The tag of an id made by make_job_id(at, tag); nullopt for other ids (ones
// made without a tag, by an earlier version, or by hand).
std::optional<std::uint16_t> job_id_tag(std::string_view id) noexcept;
// True when `s` has the canonical 8-4-4-4-12 lowercase hex shape.
bool is_valid_job_id(std::string_view s) noexcept;

}  // namespace spool
