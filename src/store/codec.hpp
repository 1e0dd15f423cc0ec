// src/store/codec.hpp
// Job records <-> Redis hash fields, and result blobs <-> stored bytes (zstd
// above a threshold; a stored blob is compressed exactly when it starts with the
// zstd frame magic, which JSON text never does).
#pragma once

#include "redis/reply.hpp"

#include <spool/job.hpp>
#include <spool/result.hpp>

#include <string>
#include <string_view>

namespace spool::store::codec {

// Decodes an HGETALL reply (flat field/value array). errc::job_not_found when empty.
// `now` turns a completed job whose result TTL passed into `expired`.
result<job_record> decode_job(const redis::reply& fields, millis now);

// The bytes to store for a result: the JSON itself, or its zstd frame when larger
// than `threshold` bytes.
std::string encode_result(std::string_view json, std::size_t threshold);
// The JSON text back from stored bytes. errc::bad_reply when a frame is corrupt.
result<std::string> decode_result(std::string_view stored);

// History entries (docs/keys.md, "Job history"). The two entries every job gets,
// its start and its completion, are stored compactly so that a record of short
// fields stays in Redis's listpack encoding (values of at most 64 bytes):
//   S<ts> <attempt> <worker id>      {"status":"in_progress","ts":..,"attempt":..,"worker_id":".."}
//   V<ts> <attempt> <worker id>      the same with "status":"validating"
//   C<ts> <duration ms> <wait ms>    {"status":"completed","ts":..,"duration_ms":..,"wait_ms":..}
// Every other entry (and every entry of earlier versions) is its JSON text.
// The completion entry; its JSON when `compact` is false (the earlier layout).
std::string completed_entry(millis ts, millis duration, millis wait, bool compact = true);
// The JSON text of a stored entry; a JSON entry is returned as it is, an empty
// one stays empty (a write not finished yet).
std::string history_json(std::string stored);

// True when `text` parses as one JSON value (Boost.JSON; no trailing garbage).
bool is_json(std::string_view text) noexcept;

}  // namespace spool::store::codec
