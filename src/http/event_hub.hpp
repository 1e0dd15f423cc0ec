// src/http/event_hub.hpp
// One subscription per process to the job_updates channel, fanned out to the
// streams (SSE, WebSocket) of this process. A message only rings a doorbell:
// the woken stream reads the job's events from its Redis stream (the source of
// truth), so nothing is lost between replay and live, or while pub/sub reconnects.
//
// Threading: the hub, its listeners and their registrations live on the
// server's executor. on_update() is called synchronously from run(); it must
// not block or co_await (set a flag, cancel a timer, queue a message).
#pragma once

#include "redis/subscriber.hpp"
#include "util/asio.hpp"

#include <boost/json/object.hpp>

#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>

namespace spool::http {

// One job_updates event, parsed: {"type","job_id","queue","status","ts",...} (a
// message carries an array of them: the events of one script call).
struct job_update {
    std::string type;  // job_created, job_started, job_progress, job_completed, ...
    std::string job_id;
    std::string queue;
    const boost::json::object* fields = nullptr;  // the whole event (valid during the call)
    const std::string* raw = nullptr;             // its JSON text (valid during the call)
};

class event_listener {
public:
    virtual ~event_listener() = default;
    virtual void on_update(const job_update& u) = 0;
};

class event_hub {
    struct state;

public:
    // Removes its listener from the hub when destroyed (or reset). Move-only.
    class registration {
    public:
        registration() = default;
        registration(registration&& o) noexcept;
        registration& operator=(registration&& o) noexcept;
        registration(const registration&) = delete;
        registration& operator=(const registration&) = delete;
        ~registration() { reset(); }
        void reset() noexcept;
        explicit operator bool() const noexcept { return !hub_.expired(); }

    private:
        friend class event_hub;
        std::weak_ptr<state> hub_;
        std::multimap<std::string, event_listener*>::iterator job_it_;
        std::list<event_listener*>::iterator all_it_;
        bool all_ = false;
    };

    // `observer` sees every parsed message first (metrics); may be empty.
    event_hub(std::shared_ptr<redis::subscriber> sub, std::string channel,
              std::function<void(const boost::json::object&)> observer);
    ~event_hub();

    // Subscribes to the channel and dispatches messages until cancelled or the
    // subscriber stops. Spawn it once on the server's executor.
    asio::awaitable<void> run();

    // Wake `l` for every update of job `job_id` / for every update. `l` must
    // outlive the registration.
    registration watch_job(std::string job_id, event_listener* l);
    registration watch_all(event_listener* l);

    // Dispatches one message (run() calls it; tests may too). Ignores non-JSON text.
    void dispatch(const std::string& payload);
    const std::string& channel() const noexcept { return channel_; }
    std::size_t listeners() const noexcept;

private:
    // One event of a message; `raw` is its text when the message was that event alone.
    void dispatch_one(const boost::json::object& event, const std::string* raw);
    std::shared_ptr<redis::subscriber> sub_;
    std::string channel_;
    std::function<void(const boost::json::object&)> observer_;
    std::shared_ptr<state> state_;
};

}  // namespace spool::http
