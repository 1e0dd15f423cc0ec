// src/http/server_test_fixture.hpp
// Shared by the HTTP server's Redis tests: a real redis-server, a real broker
// and the server on an ephemeral port on its own I/O thread, driven by small
// blocking Beast clients (plain requests, an SSE reader, a WebSocket client).
// Test-only; included by *_redistest.cpp files of this folder.
#pragma once

#include "http/server.hpp"
#include "store/broker.hpp"
#include "testing/redis_server.hpp"

#include <spool/error.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

using namespace spool;
using namespace std::chrono_literals;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using tcp = boost::asio::ip::tcp;
using spool::testing::wait_until;

namespace server_testing {

struct reply {
    unsigned status = 0;
    std::string body;
    bhttp::fields headers;
    json::value json() const {
        boost::system::error_code ec;
        auto v = json::parse(body, ec);
        EXPECT_FALSE(ec) << "not JSON: " << body;
        return v;
    }
    std::string header(bhttp::field f) const { return std::string{headers[f]}; }
};

struct sse_event {
    std::string id, type, data;
};

std::vector<sse_event> parse_sse(const std::string& text) {
    std::vector<sse_event> out;
    std::size_t pos = 0;
    while (true) {
        auto end = text.find("\n\n", pos);
        if (end == std::string::npos) break;
        auto block = text.substr(pos, end - pos);
        pos = end + 2;
        sse_event e;
        bool any = false;
        std::size_t lp = 0;
        while (lp <= block.size()) {
            auto le = block.find('\n', lp);
            auto line = block.substr(lp, le == std::string::npos ? std::string::npos : le - lp);
            if (line.rfind("id: ", 0) == 0)
                e.id = line.substr(4), any = true;
            else if (line.rfind("event: ", 0) == 0)
                e.type = line.substr(7), any = true;
            else if (line.rfind("data: ", 0) == 0)
                e.data += line.substr(6), any = true;
            if (le == std::string::npos) break;
            lp = le + 1;
        }
        if (any) out.push_back(e);
    }
    return out;
}

std::set<std::string> keys_of(const json::value& v) {
    std::set<std::string> out;
    for (const auto& kv : v.as_object()) out.insert(std::string{kv.key()});
    return out;
}

class ServerTest : public spool::testing::RedisTest {
protected:
    void SetUp() override {
        RedisTest::SetUp();
        work_.emplace(ioc_.get_executor());
        io_thread_ = std::thread{[this] { ioc_.run(); }};
        // Blocking Asio reads ignore SO_RCVTIMEO (they poll without a limit): a
        // server that never answers would hang the test. After the deadline the
        // client sockets are shut down, so the waiting read fails instead.
        watchdog_ = std::thread{[this] {
            std::unique_lock lock{watch_mu_};
            if (watch_cv_.wait_for(lock, test_deadline, [this] { return test_done_; })) return;
            ADD_FAILURE() << "test deadline passed: shutting the client sockets down";
            for (int fd : client_fds_) ::shutdown(fd, SHUT_RDWR);
        }};
    }

    void TearDown() override {
        {
            std::lock_guard lock{watch_mu_};
            test_done_ = true;
        }
        watch_cv_.notify_all();
        watchdog_.join();
        if (server_) on_io(server_->stop(2s), 10s);
        asio::post(ioc_, [this] {
            if (conn_) conn_->stop();
            if (sub_) sub_->stop();
        });
        work_.reset();
        // Let the loops see stop(), then end the thread whatever remains.
        wait_until([&] { return ioc_.stopped(); }, 1s);
        ioc_.stop();
        io_thread_.join();
        server_.reset();
        broker_.reset();
    }

    static http::server_options defaults() {
        http::server_options o;
        o.port = 0;
        o.read_timeout = 2s;
        o.idle_timeout = 10s;
        o.sse_ping_interval = 10s;  // long: live events must come through the event hub
        return o;
    }

    void start(http::server_options opts = defaults(), store::broker_options bo = {}) {
        auto copts = redis::parse_url(redis().url()).value();
        copts.request_timeout = 1000ms;
        copts.backoff_max = 100ms;
        std::promise<void> done;
        asio::post(ioc_, [&] {
            conn_ = redis::connection::create(ioc_.get_executor(), copts);
            conn_->start();
            sub_ = redis::subscriber::create(ioc_.get_executor(), copts);
            sub_->start();
            broker_ = std::make_unique<store::broker>(*conn_, bo);
            server_ = std::make_unique<http::server>(ioc_, opts, *broker_, conn_, sub_);
            auto r = server_->start();
            EXPECT_TRUE(r.has_value());
            done.set_value();
        });
        done.get_future().wait();
        port_ = server_->port();
        ASSERT_NE(port_, 0);
        ASSERT_TRUE(wait_until([&] { return conn_->is_connected() && sub_->is_connected(); }, 5s));
    }

    template <class T>
    T on_io(asio::awaitable<T> aw, std::chrono::milliseconds timeout = 5s) {
        auto f = asio::co_spawn(ioc_, std::move(aw), asio::use_future);
        if (f.wait_for(timeout) != std::future_status::ready) {
            ADD_FAILURE() << "on_io timed out";
            if constexpr (!std::is_void_v<T>)
                return T{};
            else
                return;
        }
        return f.get();
    }

    tcp::socket connect() {
        tcp::socket s{client_ctx_};
        s.connect({asio::ip::make_address("127.0.0.1"), port_});
        std::lock_guard lock{watch_mu_};
        client_fds_.push_back(s.native_handle());
        return s;
    }

    reply request(bhttp::verb method, const std::string& target, const std::string& body = "",
                  const std::vector<std::pair<std::string, std::string>>& headers = {}) {
        auto s = connect();
        bhttp::request<bhttp::string_body> req{method, target, 11};
        req.set(bhttp::field::host, "127.0.0.1");
        for (const auto& [k, v] : headers) req.set(k, v);
        if (!body.empty() || method == bhttp::verb::post) {
            req.set(bhttp::field::content_type, "application/json");
            req.body() = body;
        }
        req.prepare_payload();
        bhttp::write(s, req);
        beast::flat_buffer buf;
        bhttp::response_parser<bhttp::string_body> p;
        p.body_limit(64 * 1024 * 1024);
        boost::system::error_code ec;
        bhttp::read(s, buf, p, ec);
        EXPECT_FALSE(ec) << method << " " << target << ": " << ec.message();
        reply r;
        r.status = p.get().result_int();
        r.body = p.get().body();
        r.headers = p.get().base();
        return r;
    }
    reply get(const std::string& target, const std::vector<std::pair<std::string, std::string>>& h = {}) {
        return request(bhttp::verb::get, target, "", h);
    }
    reply post(const std::string& target, const std::string& body,
               const std::vector<std::pair<std::string, std::string>>& h = {}) {
        return request(bhttp::verb::post, target, body, h);
    }
    reply del(const std::string& target, const std::vector<std::pair<std::string, std::string>>& h = {}) {
        return request(bhttp::verb::delete_, target, "", h);
    }

    std::string submit(const std::string& body = R"({"queue":"q1","payload":{"n":1}})",
                       const std::vector<std::pair<std::string, std::string>>& h = {}) {
        auto r = post("/api/jobs", body, h);
        EXPECT_EQ(r.status, 201u) << r.body;
        return r.status == 201 ? std::string{r.json().at("job_id").as_string()} : std::string{};
    }

    // Worker-side transitions, straight through the broker.
    store::claimed_job claim(const std::string& queue) {
        store::claim_request req;
        req.queue = queue;
        req.worker_id = "test-worker";
        auto r = on_io(broker_->claim(req, now_millis()));
        EXPECT_TRUE(r.has_value());
        EXPECT_EQ(r->jobs.size(), 1u);
        return r && !r->jobs.empty() ? r->jobs.front() : store::claimed_job{};
    }
    void progress(const store::claimed_job& j, int pct, std::string msg) {
        auto r = on_io(
            broker_->progress(j.queue, store::lease_ref{j.id, j.token}, pct, std::move(msg), now_millis()));
        EXPECT_TRUE(r.has_value());
    }
    void complete(const store::claimed_job& j, std::string result, std::chrono::seconds ttl = 3600s) {
        store::completion c;
        c.id = j.id;
        c.token = j.token;
        c.result = std::move(result);
        c.ttl = ttl;
        c.history = j.history;
        std::vector<store::completion> done{std::move(c)};
        auto r = on_io(broker_->complete(j.queue, std::move(done), now_millis()));
        ASSERT_TRUE(r.has_value());
        ASSERT_TRUE(r->at(0).has_value());
    }
    void fail(const store::claimed_job& j, std::string error) {
        store::failure f;
        f.id = j.id;
        f.token = j.token;
        f.error = std::move(error);
        f.retryable = false;
        std::vector<store::failure> failed{f};
        auto r = on_io(broker_->fail(j.queue, std::move(failed), now_millis()));
        ASSERT_TRUE(r.has_value());
    }

    static constexpr std::chrono::seconds test_deadline{20};
    std::thread watchdog_;
    std::mutex watch_mu_;
    std::condition_variable watch_cv_;
    bool test_done_ = false;
    std::vector<int> client_fds_;

    asio::io_context ioc_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
    std::thread io_thread_;
    asio::io_context client_ctx_;
    std::shared_ptr<redis::connection> conn_;
    std::shared_ptr<redis::subscriber> sub_;
    std::unique_ptr<store::broker> broker_;
    std::unique_ptr<http::server> server_;
    std::uint16_t port_ = 0;
};

// Reads an SSE response incrementally until `enough(body)` or the stream ends.
class sse_reader {
public:
    sse_reader(tcp::socket s, const std::string& target, const std::string& last_event_id = "")
        : s_{std::move(s)} {
        bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
        req.set(bhttp::field::host, "127.0.0.1");
        req.set(bhttp::field::accept, "text/event-stream");
        if (!last_event_id.empty()) req.set("Last-Event-ID", last_event_id);
        bhttp::write(s_, req);
        p_.body_limit(boost::none);
        boost::system::error_code ec;
        bhttp::read_header(s_, buf_, p_, ec);
        EXPECT_FALSE(ec) << ec.message();
    }
    unsigned status() { return p_.get().result_int(); }
    std::string header(bhttp::field f) { return std::string{p_.get()[f]}; }
    // Reads until `n` events arrived or the stream ended; returns all events so far.
    std::vector<sse_event> read_events(std::size_t n) {
        while (!done_ && parse_sse(p_.get().body()).size() < n) read_some();
        return parse_sse(p_.get().body());
    }
    // Reads until the response ends (the server closed the stream).
    std::vector<sse_event> read_to_end() {
        while (!done_) read_some();
        return parse_sse(p_.get().body());
    }
    bool done() const { return done_; }
    const std::string& text() { return p_.get().body(); }

private:
    void read_some() {
        boost::system::error_code ec;
        bhttp::read_some(s_, buf_, p_, ec);
        if (ec || p_.is_done()) {
            ended_cleanly_ = p_.is_done();
            done_ = true;
        }
    }
    tcp::socket s_;
    beast::flat_buffer buf_;
    bhttp::response_parser<bhttp::string_body> p_;
    bool done_ = false;
    bool ended_cleanly_ = false;
};

class ws_client {
public:
    ws_client(tcp::socket s, const std::vector<std::pair<std::string, std::string>>& headers = {})
        : ws_{std::move(s)} {
        ws_.set_option(
            beast::websocket::stream_base::decorator([headers](beast::websocket::request_type& req) {
                for (const auto& [k, v] : headers) req.set(k, v);
            }));
        ws_.handshake("127.0.0.1", "/ws");
    }
    void send(const std::string& text) { ws_.write(asio::buffer(text)); }
    json::value recv() {
        beast::flat_buffer buf;
        boost::system::error_code ec;
        ws_.read(buf, ec);
        EXPECT_FALSE(ec) << ec.message();
        if (ec) return nullptr;
        return json::parse(beast::buffers_to_string(buf.data()));
    }
    // The next message of `type` (others are skipped).
    json::value recv_type(std::string_view type) {
        for (int i = 0; i < 50; ++i) {
            auto v = recv();
            if (v.is_null()) return v;
            if (v.as_object().at("type").as_string() == type) return v;
        }
        return nullptr;
    }
    beast::websocket::stream<tcp::socket>& stream() { return ws_; }

private:
    beast::websocket::stream<tcp::socket> ws_;
};

}  // namespace server_testing

using namespace server_testing;
