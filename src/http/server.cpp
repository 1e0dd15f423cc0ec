// src/http/server.cpp
#include "http/server.hpp"

#include "http/history_recorder.hpp"
#include "http/http_session.hpp"
#include "http/listener.hpp"
#include "http/route.hpp"
#include "util/log.hpp"
#include "util/task_group.hpp"

#include <vector>

namespace spool::http {

struct server::impl {
    impl(asio::io_context& ioc, server_options opts, store::broker& broker,
         std::shared_ptr<redis::connection> conn, std::shared_ptr<redis::subscriber> sub, const clock& clk)
        : state{ioc.get_executor(), std::move(opts), broker, std::move(conn), std::move(sub), clk},
          routes{make_api_routes()},
          sessions{ioc.get_executor()},
          background{ioc.get_executor()},
          acceptor{state, routes, sessions} {}

    server_state state;
    route_table routes;
    task_group sessions;
    task_group background;
    listener acceptor;
    bool started = false;
    bool stopped = false;
};

server::server(asio::io_context& ioc, server_options opts, store::broker& broker,
               std::shared_ptr<redis::connection> conn, std::shared_ptr<redis::subscriber> sub,
               const clock& clk)
    : impl_{std::make_unique<impl>(ioc, std::move(opts), broker, std::move(conn), std::move(sub), clk)} {}

server::~server() {
    impl_->state.stopping = true;
    impl_->acceptor.close();
}

const server_options& server::options() const noexcept { return impl_->state.opts; }

std::uint16_t server::port() const noexcept { return impl_->acceptor.port(); }

result<void> server::start() {
    auto& i = *impl_;
    if (i.started) return {};
    auto bound = i.acceptor.bind(i.state.opts.host, i.state.opts.port);
    if (!bound) return bound;
    i.started = true;
    i.background.spawn(i.acceptor.run(), "http_listener");
    i.background.spawn(i.state.hub.run(), "event_hub");
    i.background.spawn(record_history(i.state), "history_recorder");
    i.state.log->info("HTTP API listening on {}:{}{}", i.state.opts.host, port(),
                      i.state.auth_enabled() ? " (API keys required)" : "");
    return {};
}

asio::awaitable<void> server::stop(std::chrono::milliseconds drain) {
    auto& i = *impl_;
    if (i.stopped) co_return;
    i.stopped = true;
    i.state.stopping = true;
    i.acceptor.close();
    // Copy: a session may end (and unregister) while we walk the set.
    std::vector<http_session*> live(i.state.sessions.begin(), i.state.sessions.end());
    for (auto* s : live)
        if (i.state.sessions.count(s)) s->stop();
    if (!co_await i.sessions.wait(drain)) {
        i.state.log->warn("HTTP API: {} connection(s) still open after the drain period; cancelling",
                          i.sessions.size());
        i.sessions.cancel();
        constexpr std::chrono::seconds grace{1};
        co_await i.sessions.wait(grace);
    }
    i.background.cancel();
    constexpr std::chrono::seconds grace{1};
    co_await i.background.wait(grace);
    i.state.log->info("HTTP API stopped");
}

}  // namespace spool::http
