// src/redis/connection.cpp
// Three loops share one pipeline: run() (connect, then read and write until the
// link drops, then back off and reconnect), the reader and writer of the current
// link, and watchdog() (fails requests at their deadline). Everything runs on
// the connection's executor, so plain members need no locking.
#include "redis/connection.hpp"

#include "redis/cluster.hpp"
#include "redis/pipeline.hpp"
#include "redis/posting_handler.hpp"
#include "redis/reconnect.hpp"
#include "redis/reply_reader.hpp"
#include "redis/sentinel.hpp"
#include "redis/transport.hpp"
#include "util/log.hpp"

#include <spool/error.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>

#include <algorithm>
#include <boost/asio/detached.hpp>

#include <exception>

namespace spool::redis {

using boost::system::error_code;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t read_buffer_size = 64 * 1024;
// A write buffer that grew past this for one huge batch is released afterwards.
constexpr std::size_t max_kept_write_buffer = 1 << 20;

struct log_unexpected_exit {
    const char* loop;
    std::shared_ptr<connection> keep_alive;  // the loop may touch the connection until here
    void operator()(std::exception_ptr e) const {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log::get("redis")->error("connection {} loop failed: {}", loop, ex.what());
        } catch (...) {
            log::get("redis")->error("connection {} loop failed", loop);
        }
    }
};

}  // namespace

struct connection::impl {
    explicit impl(connection& owner)
        : self{owner},
          link{owner.ex_, owner.opts_},
          read_buf{std::make_unique<char[]>(read_buffer_size)},
          writer_wake{owner.ex_},
          deadline_timer{owner.ex_},
          backoff_timer{owner.ex_},
          connected_signal{owner.ex_, clock_type::time_point::max()},
          health_timer{owner.ex_},
          retry{owner.opts_.backoff_min, owner.opts_.backoff_max},
          log{describe(owner.opts_), owner.opts_.cluster_node} {}

    // Cancels one request when its awaiting operation is cancelled.
    struct cancel_request {
        std::weak_ptr<connection> conn;
        std::uint64_t seq;
        void operator()(asio::cancellation_type type) const {
            if (type == asio::cancellation_type::none) return;
            if (auto c = conn.lock()) c->impl_->pipe.cancel(seq);
        }
    };

    template <class Handler>
    void submit(Handler&& handler, std::vector<command> cmds, clock_type::time_point deadline) {
        using handler_type = std::decay_t<Handler>;
        auto slot = asio::get_associated_cancellation_slot(handler);
        pipeline::completion done{
            detail::posting_handler<handler_type>{std::forward<Handler>(handler), self.ex_}};

        errc refused{};
        if (self.stopped_)
            refused = errc::shutting_down;
        else if (!started || rejected || (self.opts_.fail_fast_when_down && down))
            refused = errc::not_connected;
        else
            for (const auto& c : cmds)
                if (c.empty()) refused = errc::invalid_argument;
        if (refused != errc{}) {
            std::move(done)(make_error_code(refused), std::vector<reply>{});
            return;
        }

        auto seq = pipe.push(std::move(cmds), deadline, std::move(done));
        if (slot.is_connected()) slot.template emplace<cancel_request>(self.weak_from_this(), seq);
        wake_writer();
        if (deadline < armed_at) {
            armed_at = deadline;
            deadline_timer.cancel();
        }
    }

    struct submit_initiation {
        connection* conn;
        template <class Handler>
        void operator()(Handler&& handler, std::vector<command> cmds, clock_type::time_point deadline) const {
            conn->impl_->submit(std::forward<Handler>(handler), std::move(cmds), deadline);
        }
    };

    template <class Token>
    static auto async_submit(connection& c, std::vector<command> cmds, clock_type::time_point deadline,
                             Token&& token) {
        return asio::async_initiate<Token, void(error_code, std::vector<reply>)>(submit_initiation{&c}, token,
                                                                                 std::move(cmds), deadline);
    }

    // Tears the current link down; the first reason given is the one reported.
    void drop(std::string why) {
        if (!dropping) {
            dropping = true;
            drop_why = std::move(why);
        }
        link.close();
        health_timer.cancel();
        wake_writer();
    }

    void wake_writer() {
        if (writer_idle) {
            writer_idle = false;
            writer_wake.cancel();
        }
    }

    // Probes an idle link with a PING whose deadline is one interval away: when it
    // goes unanswered the watchdog drops the link like for any late request.
    asio::awaitable<void> health_loop() {
        auto interval = self.opts_.health_check;
        if (interval.count() <= 0) co_return;
        auto seen = stats.bytes_read;
        for (;;) {
            health_timer.expires_after(interval);
            auto [ec] = co_await health_timer.async_wait(use_tuple);
            if (ec || dropping) co_return;
            if (stats.bytes_read != seen || pipe.pending() > 0) {
                // Traffic proves the link; pending requests have deadlines of their own.
                seen = stats.bytes_read;
                continue;
            }
            auto deadline = clock_type::now() + interval;
            auto ignore = [](error_code, std::vector<reply>) {};
            std::vector<command> ping;
            ping.emplace_back("PING");
            pipe.push(std::move(ping), deadline, std::move(ignore));
            wake_writer();
            if (deadline < armed_at) {
                armed_at = deadline;
                deadline_timer.cancel();
            }
        }
    }

    asio::awaitable<void> read_loop() {
        for (;;) {
            auto op = link.read_some(asio::buffer(read_buf.get(), read_buffer_size));
            auto [ec, n] = co_await std::move(op);
            if (ec) {
                drop(ec == asio::error::eof ? std::string{"server closed the connection"} : ec.message());
                co_return;
            }
            stats.bytes_read += n;
            if (!reader.feed(std::string_view{read_buf.get(), n})) {
                drop("protocol error in reply");
                co_return;
            }
            for (;;) {
                auto next = reader.next();
                if (!next) {
                    drop("protocol error in reply");
                    co_return;
                }
                if (!*next) break;
                ++stats.replies;
                if (!pipe.on_reply(std::move(**next))) {
                    drop("reply without a request");
                    co_return;
                }
            }
        }
    }

    asio::awaitable<void> write_loop() {
        for (;;) {
            if (dropping) co_return;
            if (!pipe.has_unwritten()) {
                writer_idle = true;
                writer_wake.expires_at(clock_type::time_point::max());
                auto [ec] = co_await writer_wake.async_wait(use_tuple);
                (void)ec;  // woken by submit() or drop()
                writer_idle = false;
                continue;
            }
            // Everything queued since the last write goes out in this one.
            write_buf.clear();
            stats.commands += pipe.take_writes(write_buf);
            auto op = link.write(asio::buffer(write_buf));
            auto [ec, n] = co_await std::move(op);
            ++stats.writes;
            stats.bytes_written += n;
            if (ec) {
                drop(ec.message());
                co_return;
            }
            if (write_buf.capacity() > max_kept_write_buffer) std::string{}.swap(write_buf);
        }
    }

    asio::awaitable<void> watchdog() {
        while (!self.stopped_) {
            // Armed at the earliest deadline, and at most one request timeout ahead
            // when no request is waiting: a request made later with the usual
            // timeout then has a later deadline and need not re-arm the timer (a
            // cancel and a wake-up per request on an otherwise idle link).
            armed_at = std::min(pipe.next_deadline(), clock_type::now() + self.opts_.request_timeout);
            deadline_timer.expires_at(armed_at);
            auto [ec] = co_await deadline_timer.async_wait(use_tuple);
            if (self.stopped_) break;
            if (ec) continue;  // an earlier deadline arrived: re-arm
            // While no link is up an expired request never reached Redis: not_connected.
            bool late = pipe.expire(clock_type::now(), link_up ? errc::timeout : errc::not_connected);
            if (late && link_up) drop("a request got no reply before its deadline");
        }
    }

    asio::awaitable<void> pause(std::chrono::milliseconds d) {
        backoff_timer.expires_after(d);
        auto [ec] = co_await backoff_timer.async_wait(use_tuple);
        (void)ec;  // cancelled by stop()
    }

    connection& self;
    detail::transport link;
    reply_reader reader;
    pipeline pipe;
    std::unique_ptr<char[]> read_buf;
    std::string write_buf;
    asio::steady_timer writer_wake;       // the idle writer waits here
    asio::steady_timer deadline_timer;    // the watchdog waits here
    asio::steady_timer backoff_timer;     // run() waits here between connect attempts
    asio::steady_timer connected_signal;  // never expires; cancelled on connect and stop
    asio::steady_timer health_timer;      // health_loop waits here
    clock_type::time_point armed_at = clock_type::time_point::max();
    bool started = false;
    bool link_up = false;      // the reader and writer of a link are running
    bool dropping = false;     // the current link is being torn down
    bool writer_idle = false;  // the writer waits on writer_wake
    bool down = false;         // a connect attempt failed since the last link (fail_fast_when_down)
    bool rejected = false;     // the server refused our credentials: fail fast until a connect works
    std::string drop_why;
    std::string last_error;
    connection_stats stats;
    detail::backoff retry;
    detail::connect_log log;
};

std::shared_ptr<connection> connection::create(asio::any_io_executor ex, connection_options opts) {
    return std::shared_ptr<connection>{new connection{std::move(ex), std::move(opts)}};
}

connection::connection(asio::any_io_executor ex, connection_options opts)
    : ex_{std::move(ex)}, opts_{std::move(opts)} {
    impl_ = std::make_unique<impl>(*this);
}

connection::~connection() = default;

void connection::start() {
    if (impl_->started || stopped_) return;
    impl_->started = true;
    if (opts_.cluster == cluster_mode::on) {
        become_cluster();
        return;
    }
    if (!opts_.sentinel_master.empty()) {
        // A failover moves the link at once, not when the old master stops answering.
        sentinel_watch_ = std::make_unique<detail::switch_watch>(
            ex_, opts_, [weak = weak_from_this()](endpoint to) {
                auto c = weak.lock();
                if (!c || c->stopped_) return;
                if (to.host == c->opts_.host && to.port == c->opts_.port) return;
                c->impl_->drop("sentinel: master switched to " + to.host + ":" + std::to_string(to.port));
            });
    }
    asio::co_spawn(ex_, run(), log_unexpected_exit{"run", shared_from_this()});
    asio::co_spawn(ex_, impl_->watchdog(), log_unexpected_exit{"watchdog", shared_from_this()});
}

void connection::become_cluster() {
    auto o = opts_;
    o.cluster = cluster_mode::on;
    // The node that answered first, then the other seeds.
    endpoint here{opts_.host, opts_.port};
    std::erase(o.hosts, here);
    o.hosts.insert(o.hosts.begin(), here);
    router_ = detail::cluster_router::create(ex_, std::move(o));
    router_->on_state = [weak = weak_from_this()](bool up) {
        auto c = weak.lock();
        if (!c || c->stopped_) return;
        c->connected_ = up;
        if (!up) return;
        ++c->connects_;
        c->impl_->connected_signal.cancel();
        if (c->on_connect_) c->on_connect_();
    };
    router_->start();
}

void connection::stop() {
    if (stopped_) return;
    if (router_) router_->stop();
    sentinel_watch_.reset();
    stopped_ = true;
    connected_ = false;
    auto& m = *impl_;
    m.dropping = true;
    m.link.close();
    m.writer_wake.cancel();
    m.deadline_timer.cancel();
    m.backoff_timer.cancel();
    m.connected_signal.cancel();
    m.health_timer.cancel();
    m.pipe.fail_all(errc::shutting_down);
}

asio::awaitable<void> connection::run() {
    auto& m = *impl_;
    bool failed = false;
    while (!stopped_) {
        // Sentinel: the master's address now; several hosts: the next after a failure.
        auto no_address = co_await detail::choose_address(ex_, opts_, failed);
        if (stopped_) break;
        detail::open_result res;
        if (!no_address.empty()) {
            res.ec = make_error_code(errc::not_connected);
            res.why = std::move(no_address);
        } else {
            res = co_await m.link.open(m.reader);
        }
        if (stopped_) break;
        failed = bool(res.ec);
        if (!res.ec && res.cluster_enabled) {
            // A cluster node: from now on requests are routed over the cluster. What
            // waits here was never written: hand it over.
            m.log.connected();
            log::get("redis")->info("{} is a Redis Cluster node: routing by hash slot", describe(opts_));
            m.link.close();
            if (opts_.db != 0) {
                m.last_error = "Redis Cluster has database 0 only, the URL asks for " + std::to_string(opts_.db);
                m.rejected = true;
                m.pipe.fail_all(errc::not_connected);
                co_await m.pause(m.retry.next());
                continue;
            }
            become_cluster();
            for (auto& h : m.pipe.take_unwritten()) {
                auto forward = [](std::shared_ptr<detail::cluster_router> r, pipeline::handover h)
                    -> asio::awaitable<void> {
                    auto replies = co_await r->exec_many(std::move(h.cmds), h.deadline);
                    if (!replies) std::move(h.done)(replies.error(), std::vector<reply>{});
                    else std::move(h.done)(error_code{}, std::move(*replies));
                };
                asio::co_spawn(ex_, forward(router_, std::move(h)), asio::detached);
            }
            break;
        }
        if (res.ec) {
            m.last_error = res.why;
            m.log.failed(res.why);
            m.down = true;
            if (res.rejected) {
                // Waiting out each request's deadline would only hide a configuration error.
                m.rejected = true;
                m.pipe.fail_all(errc::not_connected);
            } else if (opts_.fail_fast_when_down) {
                m.pipe.fail_all(errc::not_connected);
            }
            co_await m.pause(m.retry.next());
            continue;
        }
        m.rejected = false;
        m.down = false;
        m.retry.reset();
        m.link_up = true;
        m.dropping = false;
        m.drop_why.clear();
        connected_ = true;
        ++connects_;
        m.log.connected();
        m.connected_signal.cancel();
        if (on_connect_) {
            auto notify = [weak = weak_from_this()] {
                if (auto c = weak.lock(); c && c->connected_ && c->on_connect_) c->on_connect_();
            };
            asio::post(ex_, std::move(notify));
        }

        co_await (m.read_loop() && m.write_loop() && m.health_loop());

        m.link_up = false;
        connected_ = false;
        m.link.close();
        m.pipe.fail_written(errc::connection_lost);
        if (stopped_) break;
        m.last_error = m.drop_why;
        m.log.lost(m.drop_why);
        co_await m.pause(m.retry.next());
    }
    m.log.closed();
}

namespace {

clock_type::time_point deadline_after(std::chrono::milliseconds timeout, std::chrono::milliseconds fallback) {
    return clock_type::now() + (timeout.count() > 0 ? timeout : fallback);
}

}  // namespace

asio::awaitable<result<reply>> connection::exec(command cmd, std::chrono::milliseconds timeout) {
    if (router_) co_return co_await router_->exec(std::move(cmd), deadline_after(timeout, opts_.request_timeout));
    std::vector<command> cmds;
    cmds.push_back(std::move(cmd));
    auto op =
        impl::async_submit(*this, std::move(cmds), deadline_after(timeout, opts_.request_timeout), use_tuple);
    auto [ec, replies] = co_await std::move(op);
    if (ec) co_return ec;
    if (replies.size() != 1) co_return make_error_code(errc::bad_reply);
    co_return std::move(replies.front());
}

asio::awaitable<result<std::vector<reply>>> connection::exec_many(std::vector<command> cmds,
                                                                  std::chrono::milliseconds timeout) {
    if (cmds.empty()) co_return std::vector<reply>{};
    if (router_)
        co_return co_await router_->exec_many(std::move(cmds), deadline_after(timeout, opts_.request_timeout));
    auto op =
        impl::async_submit(*this, std::move(cmds), deadline_after(timeout, opts_.request_timeout), use_tuple);
    auto [ec, replies] = co_await std::move(op);
    if (ec) co_return ec;
    co_return std::move(replies);
}

asio::awaitable<bool> connection::wait_connected(std::chrono::milliseconds timeout) {
    auto deadline = clock_type::now() + timeout;
    asio::steady_timer limit{ex_, deadline};
    while (!connected_) {
        if (stopped_ || clock_type::now() >= deadline) co_return false;
        co_await (impl_->connected_signal.async_wait(use_tuple) || limit.async_wait(use_tuple));
    }
    co_return true;
}

connection_stats connection::stats() const noexcept { return router_ ? router_->stats() : impl_->stats; }

const std::string& connection::last_error() const noexcept {
    if (router_ && !router_->last_error().empty()) return router_->last_error();
    return impl_->last_error;
}

}  // namespace spool::redis
