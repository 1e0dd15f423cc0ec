// src/http/ws_session.hpp
// GET /ws: a WebSocket carrying JSON requests and replies plus pushed job
// events. Requests: submit_job, subscribe_progress, unsubscribe,
// subscribe_updates, unsubscribe_updates, ping (docs/http-api.md). Every reply
// carries the request's "id"; a bad message gets an "error" reply and the
// connection stays open.
//
// Three loops share the connection: the reader handles requests in order, the
// writer sends queued messages (one write in flight), the pump reads new
// events of subscribed jobs when the event_hub rings (or every ping interval).
// At most stream_queue_limit messages wait for the writer; a client slower
// than that is disconnected.
#pragma once

#include "http/event_hub.hpp"
#include "http/route.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json/object.hpp>

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace spool::http {

class ws_session : public event_listener, public std::enable_shared_from_this<ws_session> {
public:
    // `tenant`: the caller's tenant ("" when auth is off); `client_key`: its rate-limit key.
    ws_session(server_state& s, std::string tenant, std::string client_key);

    // Accepts the upgrade `req` on `stream`, then serves the connection until it closes.
    asio::awaitable<void> run(boost::beast::tcp_stream stream, request req);
    // Sends a close frame after the queued messages and ends (server shutdown).
    void stop();

    void on_update(const job_update& u) override;

private:
    struct subscription {
        boost::json::value request_id;
        std::string last_id = "0";
        event_hub::registration reg;
    };

    asio::awaitable<void> reader();
    asio::awaitable<void> writer();
    asio::awaitable<void> pump();
    asio::awaitable<void> handle(std::string text);
    asio::awaitable<void> submit_job(boost::json::value id, boost::json::object msg);
    asio::awaitable<void> subscribe_progress(boost::json::value id, boost::json::object msg);
    // Reads and queues new events of `job_id`'s subscription; drops it after a terminal event.
    asio::awaitable<void> drain(std::string job_id);

    bool forward(std::map<std::string, subscription>::iterator it, const job_event& e);
    // Auth on and not an admin: only this tenant's jobs are visible.
    bool tenant_scoped() const noexcept;
    // Queues a job_updates message as published.
    void forward_update(const std::string& raw);
    // Looks up the tenant of the jobs in unresolved_ and forwards their updates
    // when they are this session's tenant's; false when Redis could not answer.
    asio::awaitable<bool> resolve_owners();
    void send(boost::json::object msg);
    void send_error(const boost::json::value& id, const api_error& e);
    void close_now();  // abort: the reader's pending read fails, the loops end

    server_state& s_;
    std::string tenant_;
    std::string client_key_;
    std::unique_ptr<boost::beast::websocket::stream<boost::beast::tcp_stream>> ws_;
    std::deque<std::string> outbox_;
    asio::steady_timer outbox_ready_;
    asio::steady_timer doorbell_;
    std::map<std::string, subscription> subs_;
    std::set<std::string> dirty_;
    event_hub::registration all_updates_;
    std::unordered_map<std::string, bool> owned_;  // job id -> this tenant's (subscribe_updates, scoped)
    std::map<std::string, std::vector<std::string>> unresolved_;  // updates of jobs not looked up yet

    bool stopping_ = false;
    bool closed_ = false;
};

}  // namespace spool::http
