// src/http/event_hub.cpp
#include "http/event_hub.hpp"

#include "util/log.hpp"

#include <spool/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <vector>

namespace spool::http {

struct event_hub::state {
    std::multimap<std::string, event_listener*> jobs;
    std::list<event_listener*> all;
};

event_hub::registration::registration(registration&& o) noexcept
    : hub_{std::move(o.hub_)}, job_it_{o.job_it_}, all_it_{o.all_it_}, all_{o.all_} {
    o.hub_.reset();
}

event_hub::registration& event_hub::registration::operator=(registration&& o) noexcept {
    if (this != &o) {
        reset();
        hub_ = std::move(o.hub_);
        job_it_ = o.job_it_;
        all_it_ = o.all_it_;
        all_ = o.all_;
        o.hub_.reset();
    }
    return *this;
}

void event_hub::registration::reset() noexcept {
    if (auto s = hub_.lock()) {
        if (all_)
            s->all.erase(all_it_);
        else
            s->jobs.erase(job_it_);
    }
    hub_.reset();
}

event_hub::event_hub(std::shared_ptr<redis::subscriber> sub, std::string channel,
                     std::function<void(const boost::json::object&)> observer)
    : sub_{std::move(sub)},
      channel_{std::move(channel)},
      observer_{std::move(observer)},
      state_{std::make_shared<state>()} {}

event_hub::~event_hub() = default;

std::size_t event_hub::listeners() const noexcept { return state_->jobs.size() + state_->all.size(); }

event_hub::registration event_hub::watch_job(std::string job_id, event_listener* l) {
    registration r;
    r.hub_ = state_;
    r.job_it_ = state_->jobs.emplace(std::move(job_id), l);
    return r;
}

event_hub::registration event_hub::watch_all(event_listener* l) {
    registration r;
    r.hub_ = state_;
    r.all_ = true;
    r.all_it_ = state_->all.insert(state_->all.end(), l);
    return r;
}

void event_hub::dispatch(const std::string& payload) {
    boost::system::error_code ec;
    auto v = boost::json::parse(payload, ec);
    if (ec) return;
    // A message is one script call's events: a JSON array of event objects (a
    // single object is taken too).
    if (v.is_object()) {
        dispatch_one(v.get_object(), &payload);
        return;
    }
    if (!v.is_array()) return;
    for (const auto& e : v.get_array())
        if (e.is_object()) dispatch_one(e.get_object(), nullptr);
}

void event_hub::dispatch_one(const boost::json::object& o, const std::string* raw) {
    auto text = [&](std::string_view name) -> std::string {
        auto* f = o.if_contains(name);
        return f && f->is_string() ? std::string{f->get_string()} : std::string{};
    };
    if (observer_) observer_(o);
    // Listeners may drop their registrations while being called: collect first.
    std::vector<event_listener*> targets;
    auto id = text("job_id");
    auto [lo, hi] = state_->jobs.equal_range(id);
    for (auto it = lo; it != hi; ++it) targets.push_back(it->second);
    targets.insert(targets.end(), state_->all.begin(), state_->all.end());
    if (targets.empty()) return;
    // The event's own text, for listeners that forward it (subscribe_updates).
    std::string own;
    if (!raw && !state_->all.empty()) {
        own = boost::json::serialize(o);
        raw = &own;
    }
    job_update u{text("type"), std::move(id), text("queue"), &o, raw};
    for (auto* l : targets) l->on_update(u);
}

asio::awaitable<void> event_hub::run() {
    // The frame may outlive the hub when the subscriber ignores cancellation:
    // keep what the loop needs and check the hub is still there after each wait.
    auto log = log::get("http");
    auto sub = sub_;
    std::weak_ptr<state> alive = state_;
    if (!sub) co_return;
    sub->subscribe({channel_});
    for (;;) {
        auto m = co_await sub->receive();
        if (alive.expired()) co_return;
        if (!m) {
            if (m.error() == errc::shutting_down || m.error() == asio::error::operation_aborted) co_return;
            log->warn("job_updates subscription: {}", m.error().message());
            constexpr std::chrono::milliseconds pause{100};
            if (!co_await sleep_for(pause) || alive.expired()) co_return;
            continue;
        }
        if (m->channel == channel_) dispatch(m->payload);
    }
}

}  // namespace spool::http
