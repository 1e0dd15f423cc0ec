// app/sse_parser.hpp
// Incremental Server-Sent Events parser (the text/event-stream rules of the
// HTML standard), sans-io: feed it bytes as they arrive, in chunks of any size,
// and get whole events back. Used by `spool watch` and `submit --wait`.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool::cli {

struct sse_event {
    std::string id;    // the last event id in effect when the event was dispatched ("" if none)
    std::string type;  // the `event:` field, "message" when absent
    std::string data;  // `data:` lines joined with '\n'
};

class sse_parser {
public:
    // Consumes `chunk` and returns the events it completed (a blank line ends an
    // event; a partial line or event waits for the next chunk). Lines may end in
    // "\n", "\r\n" or "\r", also when split across chunks. Comment lines
    // (":...") and unknown fields are ignored; an event without data lines is
    // not dispatched (its `id:` still counts).
    std::vector<sse_event> feed(std::string_view chunk);

    // The id to send as Last-Event-ID on reconnect: the id in effect at the end
    // of the last complete event ("" before any).
    const std::string& last_event_id() const noexcept { return last_id_; }
    // The `retry:` reconnection time the server asked for, in ms.
    std::optional<long> retry_ms() const noexcept { return retry_ms_; }
    // Forgets a partially received event (the connection dropped mid-event); keeps last_event_id.
    void reset_pending();

private:
    void line(std::string_view l, std::vector<sse_event>& out);

    std::string partial_;   // bytes of an unfinished line
    bool skip_lf_ = false;  // the previous chunk ended in '\r': a leading '\n' belongs to it
    bool bom_checked_ = false;
    std::string data_;
    bool has_data_ = false;
    std::string type_;
    std::string id_buffer_;  // set by `id:`, in effect from the end of its event
    std::string last_id_;
    std::optional<long> retry_ms_;
};

}  // namespace spool::cli
