// src/http/history_recorder.cpp
#include "http/history_recorder.hpp"

#include <boost/asio/steady_timer.hpp>

namespace spool::http {

asio::awaitable<void> record_history(server_state& s) {
    const millis bucket = s.opts.history_bucket.count();
    if (bucket <= 0) co_return;
    asio::steady_timer tick{s.ex};
    millis last_warning = 0;
    for (;;) {
        const millis now = s.now();
        const millis start = now - now % bucket;
        if (s.conn->is_connected()) {
            auto r = co_await s.broker.record_history(start, start - s.opts.history_keep.count());
            if (!r && now - last_warning >= 60'000) {
                last_warning = now;
                s.log->warn("dashboard history: {}", r.error().message());
            }
        }
        // Just after the next boundary (a little later, so clocks a few ms apart agree).
        const millis next = start + bucket + 25;
        tick.expires_after(std::chrono::milliseconds{std::max<millis>(next - s.now(), 1)});
        auto [ec] = co_await tick.async_wait(use_tuple);
        if (ec) co_return;  // cancelled: shutting down
    }
}

}  // namespace spool::http
