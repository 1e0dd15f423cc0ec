// src/http/sse_stream.hpp
// One Server-Sent Events stream of one job's events (GET /api/jobs/{id}/events).
// Replays the job's Redis event stream after `last_id` ("0" or the client's
// Last-Event-ID), then follows it live: the event_hub rings the doorbell when a
// job_updates message names the job, and the stream reads what is new with
// broker.events(). Idle streams get a ": ping" comment every sse_ping_interval
// (and re-read the stream then, in case a doorbell was missed). The stream ends
// after a terminal status event, when the job disappears, when the client goes
// away, when a write takes longer than write_timeout (slow consumer), or on stop().
//
// Memory per client is bounded: events are read from Redis in batches of
// `batch` and written one at a time (one write in flight).
#pragma once

#include "http/event_hub.hpp"
#include "http/route.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>

#include <memory>
#include <string>

namespace spool::http {

class sse_stream : public event_listener, public std::enable_shared_from_this<sse_stream> {
public:
    // `terminal` says the job was already terminal when the request arrived (the
    // stream then ends once the replay is done).
    sse_stream(server_state& s, std::string job_id, std::string last_id, bool terminal);

    // The response header to send before the events (200, text/event-stream, no-cache).
    static beast_http::response<beast_http::empty_body> make_header(unsigned version);

    // Writes the header, then events until the stream ends. `chunked`: frame the
    // body with chunked transfer coding (HTTP/1.1); otherwise the body ends when
    // the connection closes (HTTP/1.0). The socket is shut down at the end.
    asio::awaitable<void> run(asio::ip::tcp::socket sock, std::string leftover, bool chunked,
                              unsigned version);
    // Ends the stream soon (server shutdown). Callable any time from the executor.
    void stop();

    void on_update(const job_update& u) override;

    static constexpr std::size_t batch = 100;

private:
    asio::awaitable<void> pump();
    asio::awaitable<void> watch_peer();
    // One write with the write timeout; false on error or timeout.
    asio::awaitable<bool> write(std::string data);

    server_state& s_;
    std::string job_id_;
    std::string last_id_;
    bool terminal_at_start_;
    std::unique_ptr<asio::ip::tcp::socket> sock_;
    asio::steady_timer doorbell_;
    bool dirty_ = true;
    bool stopping_ = false;
    bool chunked_ = true;
};

}  // namespace spool::http
