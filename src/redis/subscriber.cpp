// src/redis/subscriber.cpp
// Same shape as connection.cpp (run: connect, read+write until the link drops,
// back off, reconnect) without request matching: every reply on a subscribed
// link is a push (message, or a subscribe/unsubscribe confirmation).
#include "redis/subscriber.hpp"

#include "redis/command.hpp"
#include "redis/posting_handler.hpp"
#include "redis/reconnect.hpp"
#include "redis/reply_reader.hpp"
#include "redis/sentinel.hpp"
#include "redis/transport.hpp"
#include "redis/unique_function.hpp"
#include "util/log.hpp"

#include <spool/error.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>

#include <algorithm>
#include <deque>
#include <exception>
#include <set>

namespace spool::redis {

using boost::system::error_code;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t read_buffer_size = 64 * 1024;
using receive_signature = void(error_code, message);

}  // namespace

struct subscriber::impl {
    impl(asio::any_io_executor executor, connection_options options, std::size_t max_queued_messages)
        : ex{std::move(executor)},
          opts{std::move(options)},
          link{ex, opts},
          read_buf{std::make_unique<char[]>(read_buffer_size)},
          max_queued{std::max<std::size_t>(max_queued_messages, 1)},
          writer_wake{ex},
          backoff_timer{ex},
          health_timer{ex},
          retry{opts.backoff_min, opts.backoff_max},
          log{"subscriber " + describe(opts)} {}

    struct waiter {
        std::uint64_t id;
        detail::unique_function<receive_signature> done;
    };

    struct cancel_receive {
        std::weak_ptr<subscriber> owner;
        std::uint64_t id;
        void operator()(asio::cancellation_type type) const {
            if (type == asio::cancellation_type::none) return;
            auto s = owner.lock();
            if (!s) return;
            auto& waiters = s->impl_->waiters;
            auto it =
                std::find_if(waiters.begin(), waiters.end(), [this](const waiter& w) { return w.id == id; });
            if (it == waiters.end()) return;
            auto done = std::move(it->done);
            waiters.erase(it);
            std::move(done)(asio::error::operation_aborted, message{});
        }
    };

    template <class Handler>
    void receive(Handler&& handler, std::weak_ptr<subscriber> owner) {
        using handler_type = std::decay_t<Handler>;
        auto slot = asio::get_associated_cancellation_slot(handler);
        detail::unique_function<receive_signature> done{
            detail::posting_handler<handler_type>{std::forward<Handler>(handler), ex}};
        if (stopped) {
            std::move(done)(make_error_code(errc::shutting_down), message{});
            return;
        }
        if (!queue.empty()) {
            message m = std::move(queue.front());
            queue.pop_front();
            std::move(done)(error_code{}, std::move(m));
            return;
        }
        auto id = next_waiter++;
        waiters.push_back(waiter{id, std::move(done)});
        if (slot.is_connected()) slot.template emplace<cancel_receive>(std::move(owner), id);
    }

    struct receive_initiation {
        subscriber* owner;
        template <class Handler>
        void operator()(Handler&& handler) const {
            owner->impl_->receive(std::forward<Handler>(handler), owner->weak_from_this());
        }
    };

    void deliver(message m) {
        if (!waiters.empty()) {
            auto done = std::move(waiters.front().done);
            waiters.pop_front();
            std::move(done)(error_code{}, std::move(m));
            return;
        }
        if (queue.size() >= max_queued) {
            queue.pop_front();
            if (dropped_count++ == 0 || clock_type::now() - last_drop_report >= detail::connect_log::quiet) {
                last_drop_report = clock_type::now();
                log::get("redis")->warn(
                    "subscriber queue full ({} messages): dropping the oldest ({} so far)", max_queued,
                    dropped_count);
            }
        }
        queue.push_back(std::move(m));
    }

    void send(const char* verb, const std::vector<std::string>& names) {
        if (names.empty() || !link_up || dropping) return;
        command cmd{verb};
        for (const auto& n : names) cmd.arg(n);
        cmd.encode_to(out);
        wake_writer();
    }

    void wake_writer() {
        if (writer_idle) {
            writer_idle = false;
            writer_wake.cancel();
        }
    }

    void drop(std::string why) {
        if (!dropping) {
            dropping = true;
            drop_why = std::move(why);
        }
        link.close();
        health_timer.cancel();
        wake_writer();
    }

    // A subscribed link may stay silent for hours: probe it with PING when nothing
    // was read for an interval, and drop it when the next interval brings nothing.
    asio::awaitable<void> health_loop() {
        auto interval = opts.health_check;
        if (interval.count() <= 0) co_return;
        auto seen = bytes_read;
        bool pinged = false;
        for (;;) {
            health_timer.expires_after(interval);
            auto [ec] = co_await health_timer.async_wait(use_tuple);
            if (ec || dropping) co_return;
            if (bytes_read != seen) {
                seen = bytes_read;
                pinged = false;
                continue;
            }
            if (pinged) {
                drop("no answer to PING within " + std::to_string(interval.count()) + " ms");
                co_return;
            }
            command{"PING"}.encode_to(out);
            wake_writer();
            pinged = true;
        }
    }

    asio::awaitable<void> run() {
        bool failed = false;
        while (!stopped) {
            // Sentinel: the master's address now; several hosts: the next after a failure.
            auto no_address = co_await detail::choose_address(ex, opts, failed);
            if (stopped) break;
            if (!no_address.empty()) {
                log.failed(no_address);
                co_await pause(retry.next());
                continue;
            }
            auto res = co_await link.open(reader);
            if (stopped) break;
            failed = bool(res.ec);
            if (res.ec) {
                log.failed(res.why);
                co_await pause(retry.next());
                continue;
            }
            retry.reset();
            link_up = true;
            dropping = false;
            drop_why.clear();
            connected = true;
            ++connects;
            log.connected();
            // Subscriptions live on the link: send them all again.
            out.clear();
            send("SUBSCRIBE", std::vector<std::string>{channels.begin(), channels.end()});

            co_await (read_loop() && write_loop() && health_loop());

            link_up = false;
            connected = false;
            link.close();
            failed = true;
            if (stopped) break;
            log.lost(drop_why);
            co_await pause(retry.next());
        }
        log.closed();
    }

    asio::awaitable<void> read_loop() {
        for (;;) {
            auto op = link.read_some(asio::buffer(read_buf.get(), read_buffer_size));
            auto [ec, n] = co_await std::move(op);
            if (ec) {
                drop(ec == asio::error::eof ? std::string{"server closed the connection"} : ec.message());
                co_return;
            }
            bytes_read += n;
            if (!reader.feed(std::string_view{read_buf.get(), n})) {
                drop("protocol error");
                co_return;
            }
            for (;;) {
                auto next = reader.next();
                if (!next) {
                    drop("protocol error");
                    co_return;
                }
                if (!*next) break;
                reply& r = **next;
                if (r.is_array() && r.elements.size() == 3 && r.elements[0].str == "message") {
                    deliver(message{std::move(r.elements[1].str), std::move(r.elements[2].str)});
                } else if (r.is_error()) {
                    log::get("redis")->warn("subscriber: {}", r.str);
                }
                // subscribe/unsubscribe confirmations need no action.
            }
        }
    }

    asio::awaitable<void> write_loop() {
        for (;;) {
            if (dropping) co_return;
            if (out.empty()) {
                writer_idle = true;
                writer_wake.expires_at(clock_type::time_point::max());
                auto [ec] = co_await writer_wake.async_wait(use_tuple);
                (void)ec;
                writer_idle = false;
                continue;
            }
            writing.swap(out);
            out.clear();
            auto op = link.write(asio::buffer(writing));
            auto [ec, n] = co_await std::move(op);
            (void)n;
            writing.clear();
            if (ec) {
                drop(ec.message());
                co_return;
            }
        }
    }

    asio::awaitable<void> pause(std::chrono::milliseconds d) {
        backoff_timer.expires_after(d);
        auto [ec] = co_await backoff_timer.async_wait(use_tuple);
        (void)ec;
    }

    asio::any_io_executor ex;
    connection_options opts;
    detail::transport link;
    reply_reader reader;
    std::unique_ptr<char[]> read_buf;
    std::string out;      // commands waiting for the writer
    std::string writing;  // the write in flight
    std::set<std::string> channels;
    std::deque<message> queue;
    std::size_t max_queued;
    std::uint64_t dropped_count = 0;
    clock_type::time_point last_drop_report{};
    std::deque<waiter> waiters;
    std::uint64_t next_waiter = 1;
    asio::steady_timer writer_wake;
    asio::steady_timer backoff_timer;
    asio::steady_timer health_timer;
    std::uint64_t bytes_read = 0;
    bool started = false;
    bool stopped = false;
    bool connected = false;
    bool link_up = false;
    bool dropping = false;
    bool writer_idle = false;
    std::uint64_t connects = 0;
    std::string drop_why;
    detail::backoff retry;
    detail::connect_log log;
};

namespace {

struct log_unexpected_exit {
    std::shared_ptr<subscriber> keep_alive;
    void operator()(std::exception_ptr e) const {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log::get("redis")->error("subscriber loop failed: {}", ex.what());
        } catch (...) {
            log::get("redis")->error("subscriber loop failed");
        }
    }
};

}  // namespace

std::shared_ptr<subscriber> subscriber::create(asio::any_io_executor ex, connection_options opts,
                                               std::size_t max_queued) {
    return std::shared_ptr<subscriber>{new subscriber{std::move(ex), std::move(opts), max_queued}};
}

subscriber::subscriber(asio::any_io_executor ex, connection_options opts, std::size_t max_queued)
    : impl_{std::make_unique<impl>(std::move(ex), std::move(opts), max_queued)} {}

subscriber::~subscriber() = default;

void subscriber::start() {
    if (impl_->started || impl_->stopped) return;
    impl_->started = true;
    asio::co_spawn(impl_->ex, impl_->run(), log_unexpected_exit{shared_from_this()});
}

void subscriber::stop() {
    auto& m = *impl_;
    if (m.stopped) return;
    m.stopped = true;
    m.connected = false;
    m.dropping = true;
    m.link.close();
    m.writer_wake.cancel();
    m.backoff_timer.cancel();
    m.health_timer.cancel();
    m.queue.clear();
    auto waiters = std::move(m.waiters);
    m.waiters.clear();
    for (auto& w : waiters) std::move(w.done)(make_error_code(errc::shutting_down), message{});
}

void subscriber::subscribe(std::vector<std::string> channels) {
    std::vector<std::string> fresh;
    for (auto& c : channels)
        if (impl_->channels.insert(c).second) fresh.push_back(std::move(c));
    impl_->send("SUBSCRIBE", fresh);
}

void subscriber::unsubscribe(std::vector<std::string> channels) {
    std::vector<std::string> gone;
    for (auto& c : channels)
        if (impl_->channels.erase(c) > 0) gone.push_back(std::move(c));
    impl_->send("UNSUBSCRIBE", gone);
}

asio::awaitable<result<message>> subscriber::receive() {
    auto op = asio::async_initiate<decltype(use_tuple), receive_signature>(impl::receive_initiation{this},
                                                                           use_tuple);
    auto [ec, m] = co_await std::move(op);
    if (ec) co_return ec;
    co_return std::move(m);
}

bool subscriber::is_connected() const noexcept { return impl_->connected; }

std::uint64_t subscriber::dropped() const noexcept { return impl_->dropped_count; }

std::uint64_t subscriber::connect_count() const noexcept { return impl_->connects; }

}  // namespace spool::redis
