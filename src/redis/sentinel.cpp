// src/redis/sentinel.cpp
#include "redis/sentinel.hpp"

#include "redis/connection.hpp"
#include "redis/subscriber.hpp"
#include "util/log.hpp"

#include <spool/error.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <charconv>

namespace spool::redis {

namespace {

// Options for talking to one sentinel (its own credentials, no database).
connection_options sentinel_options(const connection_options& o, const endpoint& e) {
    connection_options s;
    s.host = e.host;
    s.port = e.port;
    s.hosts = {e};
    s.user = o.sentinel_user;
    s.password = o.sentinel_password;
    s.tls = o.tls;
    s.cluster = cluster_mode::off;
    s.connect_timeout = std::min(o.connect_timeout, std::chrono::milliseconds{1000});
    s.request_timeout = s.connect_timeout;
    s.backoff_min = o.backoff_min;
    s.backoff_max = o.backoff_max;
    s.health_check = std::chrono::milliseconds{0};
    s.fail_fast_when_down = true;
    return s;
}

}  // namespace

asio::awaitable<result<endpoint>> ask_sentinels(asio::any_io_executor ex, const connection_options& o,
                                                std::string& why) {
    why.clear();
    for (const auto& s : o.hosts) {
        auto so = sentinel_options(o, s);
        auto conn = connection::create(ex, so);
        conn->start();
        std::string answer;
        if (!co_await conn->wait_connected(so.connect_timeout)) {
            answer = conn->last_error().empty() ? "no answer" : conn->last_error();
        } else {
            auto r = co_await conn->exec(command{"SENTINEL", "get-master-addr-by-name", o.sentinel_master});
            if (!r) {
                answer = r.error().message();
            } else if (r->is_error()) {
                answer = r->str;
            } else if (r->is_nil() || (r->is_array() && r->elements.empty())) {
                answer = "knows no master named \"" + o.sentinel_master + "\"";
            } else if (r->is_array() && r->elements.size() == 2) {
                endpoint e{r->elements[0].str, 0};
                auto port = r->elements[1].as_integer();
                if (port && *port > 0 && *port <= 65535) {
                    e.port = static_cast<std::uint16_t>(*port);
                    conn->stop();
                    co_return e;
                }
                answer = "gave an address without a port";
            } else {
                answer = "gave an unexpected answer";
            }
        }
        conn->stop();
        why += (why.empty() ? "" : "; ") + std::string{"sentinel "} + host_port(s) + ": " + answer;
    }
    if (o.hosts.empty()) why = "no sentinels given";
    co_return make_error_code(errc::not_connected);
}

namespace detail {

asio::awaitable<std::string> choose_address(asio::any_io_executor ex, connection_options& o, bool failed) {
    if (!o.sentinel_master.empty()) {
        std::string why;
        auto master = co_await ask_sentinels(ex, o, why);
        if (!master) co_return "cannot find the master \"" + o.sentinel_master + "\": " + why;
        o.host = master->host;
        o.port = master->port;
        co_return std::string{};
    }
    if (failed && o.hosts.size() > 1) {
        endpoint now{o.host, o.port};
        auto it = std::find(o.hosts.begin(), o.hosts.end(), now);
        auto next = (it == o.hosts.end() || it + 1 == o.hosts.end()) ? o.hosts.begin() : it + 1;
        o.host = next->host;
        o.port = next->port;
    }
    co_return std::string{};
}

struct switch_watch::state : std::enable_shared_from_this<state> {
    std::shared_ptr<subscriber> sub;
    std::function<void(endpoint)> switched;
    std::string master;
    bool stopped = false;

    asio::awaitable<void> run() {
        auto keep = shared_from_this();
        while (!stopped) {
            auto m = co_await sub->receive();
            if (!m || stopped) co_return;
            // "<master-name> <old-ip> <old-port> <new-ip> <new-port>"
            std::vector<std::string> f;
            std::size_t pos = 0;
            const auto& p = m->payload;
            while (pos < p.size()) {
                auto sp = p.find(' ', pos);
                if (sp == std::string::npos) sp = p.size();
                f.push_back(p.substr(pos, sp - pos));
                pos = sp + 1;
            }
            if (f.size() != 5 || f[0] != master) continue;
            unsigned port = 0;
            auto [end, ec] = std::from_chars(f[4].data(), f[4].data() + f[4].size(), port);
            if (ec != std::errc{} || port == 0 || port > 65535) continue;
            if (switched) switched(endpoint{f[3], static_cast<std::uint16_t>(port)});
        }
    }
};

switch_watch::switch_watch(asio::any_io_executor ex, const connection_options& o,
                           std::function<void(endpoint)> switched)
    : state_{std::make_shared<state>()} {
    // One subscription on one sentinel at a time; its reconnects go round them all.
    auto so = sentinel_options(o, o.hosts.empty() ? endpoint{o.host, o.port} : o.hosts.front());
    so.hosts = o.hosts;
    so.fail_fast_when_down = false;
    state_->sub = subscriber::create(ex, so, 64);
    state_->switched = std::move(switched);
    state_->master = o.sentinel_master;
    state_->sub->subscribe({"+switch-master"});
    state_->sub->start();
    asio::co_spawn(ex, state_->run(), asio::detached);
}

switch_watch::~switch_watch() {
    state_->stopped = true;
    state_->switched = nullptr;
    state_->sub->stop();
}

}  // namespace detail
}  // namespace spool::redis
