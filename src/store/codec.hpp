// src/store/codec.hpp
// Job records <-> Redis hash fields, and result blobs <-> stored bytes (zstd
// above a threshold; a stored blob is compressed exactly when it starts with the
// zstd frame magic, which JSON text never does).
#pragma once

#include "redis/reply.hpp"

#include <spool/job.hpp>
#include <spool/result.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool::store::codec {

// Decodes an HGETALL reply (flat field/value array). errc::job_not_found when empty.
// `now` turns a completed job whose result TTL passed into `expired`. started_at,
// worker_id and completed_at come from the compact history entries when the record
// has them (below), else from the fields of that name. A pending start (`st`)
// counts as the attempt it began and as the entry after the stored history.
result<job_record> decode_job(const redis::reply& fields, millis now);

// A record's inline result (stored bytes, its pieces joined: result, result+2 ..
// result+<rk>) from an HGETALL reply; nullopt when the record holds none.
std::optional<std::string> inline_result(const redis::reply& fields);

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
// A pending start (field `st`: `S<ts> <worker id>` or `V…`, written by `take`
// without reading the record; docs/keys.md) as the history entry of attempt
// `attempt`: `S<ts> <attempt> <worker id>`. Empty when `st` is not one.
std::string start_entry(std::string_view st, int attempt);
// The JSON text of a stored entry; a JSON entry is returned as it is, an empty
// one stays empty (a write not finished yet).
std::string history_json(std::string stored);

// Long values of a compact record (a payload, an inline result) of 65..1024 bytes
// are stored in pieces of 64 (scripts.cpp, put_long, writes results the same way).
inline constexpr std::size_t piece_bytes = 64;
inline constexpr std::size_t max_pieced_bytes = 1024;

// A new job's first status: `scheduled` when it runs later than `now`, else `queued`.
std::string_view new_status(const job_spec& s, millis now) noexcept;

// A new job's record as flat HSET arguments (field, value, ...), appended to `out`:
// status (new_status), the spec's limits,
// created_at = now, the payload, scheduled_at, tenant, unique_key when they apply, and
// the first history entry (hn = 1; h1 only for a scheduled job: a queued one's is
// implied by created_at). `compact` (docs/keys.md, "Compact records") stores a
// payload of 65..1024 bytes in 64-byte pieces and leaves out the limits that are at
// their built-in defaults (priority 0, max_retries, timeout, ttl of spool/job.hpp),
// which every reader assumes when the field is absent; otherwise every field is
// written whole, the layout of earlier versions.
void append_new_record(std::vector<std::string>& out, const job_spec& s, millis now, bool compact);

// True when `text` parses as one JSON value (Boost.JSON; no trailing garbage).
bool is_json(std::string_view text) noexcept;

}  // namespace spool::store::codec
