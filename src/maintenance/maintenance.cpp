// src/maintenance/maintenance.cpp
#include "maintenance/maintenance.hpp"

#include "util/clock.hpp"
#include "util/log.hpp"

namespace spool::maintenance {

loops::loops(store::broker& broker, options opts) : broker_{broker}, opts_{opts} {}

void loops::spawn(task_group& group) {
    group.spawn(promoter(), "promoter");
    group.spawn(reaper(), "reaper");
    group.spawn(janitor(), "janitor");
}

template <class Step>
asio::awaitable<void> loops::every(std::chrono::milliseconds interval, const char* what, Step step) {
    auto log = log::get("maintenance");
    asio::steady_timer tick{co_await asio::this_coro::executor};
    millis last_warn = 0;
    for (;;) {
        auto names = co_await broker_.queue_names();
        if (names) {
            for (const auto& q : *names) {
                auto r = co_await step(q);
                if (!r && now_millis() - last_warn > 10000) {
                    last_warn = now_millis();
                    log->warn("{} {}: {}", what, q, r.error().message());
                }
            }
        } else if (now_millis() - last_warn > 10000) {
            last_warn = now_millis();
            log->warn("{}: {}", what, names.error().message());
        }
        tick.expires_after(interval);
        auto [ec] = co_await tick.async_wait(use_tuple);
        if (ec) co_return;  // cancelled: shutting down
    }
}

asio::awaitable<void> loops::promoter() {
    return every(opts_.promote_every, "promote", [this](const std::string& q) { return broker_.promote_due(q, now_millis()); });
}

asio::awaitable<void> loops::reaper() {
    return every(opts_.reap_every, "reclaim", [this](const std::string& q) -> asio::awaitable<result<std::size_t>> {
        auto r = co_await broker_.reclaim_expired(q, now_millis());
        // Parents' outcomes that a process died before delivering (and those of
        // the jobs just failed for good).
        auto d = co_await broker_.resolve_pending(q, now_millis());
        if (r && !d) co_return d.error();
        co_return r;
    });
}

asio::awaitable<void> loops::janitor() {
    return every(opts_.trim_every, "trim", [this](const std::string& q) { return broker_.trim(q, now_millis()); });
}

}  // namespace spool::maintenance
