// src/http/sse_format.hpp
// Server-Sent Events framing for job events, sans-io. A job event's Redis stream
// id is its SSE id, so a client reconnecting with Last-Event-ID resumes exactly
// after the last event it saw.
#pragma once

#include <spool/job.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace spool::http {

// "id: <id>\nevent: <type>\ndata: <data>\n\n"; a data text with line breaks becomes
// several data: lines (the client joins them with '\n'). CR/LF in id or type are dropped.
std::string format_sse(const job_event& e);
// A comment line, ": <text>\n\n" (keep-alive pings).
std::string format_sse_comment(std::string_view text);
// The "status" field of the event's JSON data, when present and a known status.
std::optional<job_status> event_status(const job_event& e);
// True when the event reports a terminal status (completed, failed, cancelled,
// expired): nothing follows it unless the job is retried.
bool is_terminal_event(const job_event& e);
// A Last-Event-ID a client may send back: "0" (from the start), "<ms>" or
// "<ms>-<seq>", decimal numbers that fit 64 bits (a Redis stream id).
bool is_valid_event_id(std::string_view id);

}  // namespace spool::http
