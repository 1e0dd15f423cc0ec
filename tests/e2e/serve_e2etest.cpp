// tests/e2e/serve_e2etest.cpp
// Black-box tests of `spool serve`: a real serve process (with its supervised
// worker children) against a real redis-server, driven from the outside over
// HTTP/1.1, Server-Sent Events and WebSocket on 127.0.0.1. Nothing here links
// the server's code: the contract is /work/shared/DESIGN.md and docs/http-api.md.
#include "app/http_client.hpp"
#include "app/sse_parser.hpp"
#include "testing/redis_server.hpp"
#include "testing/spool_process.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>


using namespace std::chrono_literals;
using spool::testing::wait_until;

namespace {

using process = spool::testing::spool_process;
using spool::testing::spool_binary;
using spool::cli::url_encode;

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using verb = bhttp::verb;
using header_list = std::vector<std::pair<std::string, std::string>>;
using clock_type = std::chrono::steady_clock;


// wait_until, but evaluating `pred` at most every 20 ms: the predicates here are
// HTTP requests, and a 2-core machine should spend its time on the server.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    return wait_until(pred, timeout, 20ms);
}

std::int64_t ms_since(clock_type::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count();
}


// ---------------------------------------------------------------------------
// Runs one asynchronous operation on `io` with a deadline; on timeout `abort`
// is called (it closes the socket) and the operation's completion is drained.
template <class Start, class Abort>
error_code run_with_deadline(asio::io_context& io, std::chrono::milliseconds timeout, Start&& start,
                             Abort&& abort) {
    error_code result = asio::error::would_block;
    bool done = false;
    start([&](error_code ec, auto&&...) {
        result = ec;
        done = true;
    });
    io.restart();
    io.run_for(timeout);
    if (!done) {
        abort();
        io.restart();
        io.run();
        return asio::error::timed_out;
    }
    return result;
}

struct reply {
    unsigned status = 0;  // 0: no response (transport error, see `error`)
    std::string body;
    std::map<std::string, std::string> headers;  // lower-case names
    bool keep_alive = false;
    error_code error;

    std::string header(std::string name) const {
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto it = headers.find(name);
        return it == headers.end() ? std::string{} : it->second;
    }
};

std::ostream& operator<<(std::ostream& os, const reply& r) {
    return os << "HTTP " << r.status << " " << r.body.substr(0, 400) << (r.error ? " error=" + r.error.message() : "");
}

// A blocking HTTP/1.1 client that keeps its connection alive between requests
// (and reconnects when the server closed it). Every step is bounded by `timeout`.
class http_conn {
public:
    explicit http_conn(std::uint16_t port, std::string api_key = {}, std::chrono::milliseconds timeout = 10s)
        : port_{port}, api_key_{std::move(api_key)}, timeout_{timeout} {}

    reply request(verb method, const std::string& target, const std::string& body = {},
                  const header_list& headers = {}) {
        reply out;
        if (!sock_.is_open()) {
            out.error = connect();
            if (out.error) return out;
        }
        bhttp::request<bhttp::string_body> req{method, target, 11};
        req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(port_));
        req.set(bhttp::field::user_agent, "serve_e2etest");
        if (!api_key_.empty()) req.set(bhttp::field::authorization, "Bearer " + api_key_);
        if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
        for (const auto& [k, v] : headers) req.set(k, v);
        req.body() = body;
        req.keep_alive(true);
        req.prepare_payload();
        out.error = run([&](auto h) { bhttp::async_write(sock_, req, h); });
        if (out.error) {
            close();
            return out;
        }
        bhttp::response_parser<bhttp::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        out.error = run([&](auto h) { bhttp::async_read(sock_, buf_, parser, h); });
        if (out.error) {
            close();
            return out;
        }
        auto& res = parser.get();
        out.status = res.result_int();
        out.body = res.body();
        out.keep_alive = res.keep_alive();
        for (const auto& f : res) {
            std::string name{f.name_string()};
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            out.headers[name] = std::string{f.value()};
        }
        if (!out.keep_alive) close();
        return out;
    }

    reply get(const std::string& target, const header_list& headers = {}) {
        return request(verb::get, target, {}, headers);
    }
    reply post(const std::string& target, const std::string& body = {}) { return request(verb::post, target, body); }

    int connects() const noexcept { return connects_; }
    bool is_open() const noexcept { return sock_.is_open(); }

private:
    template <class Start>
    error_code run(Start&& start) {
        return run_with_deadline(io_, timeout_, std::forward<Start>(start), [this] {
            error_code ec;
            sock_.close(ec);
        });
    }
    error_code connect() {
        ++connects_;
        buf_.clear();
        tcp::endpoint ep{asio::ip::make_address_v4("127.0.0.1"), port_};
        auto ec = run([&](auto h) { sock_.async_connect(ep, h); });
        if (ec) close();
        return ec;
    }
    void close() {
        error_code ec;
        sock_.close(ec);
        buf_.clear();
    }

    std::uint16_t port_;
    std::string api_key_;
    std::chrono::milliseconds timeout_;
    asio::io_context io_;
    tcp::socket sock_{io_};
    beast::flat_buffer buf_;
    int connects_ = 0;
};

// A minimal blocking WebSocket client (Beast), every step bounded.
class ws_client {
public:
    // Connects and upgrades; the handshake's HTTP status (101 on success, 0 on transport errors).
    unsigned open(std::uint16_t port, const std::string& api_key = {}) {
        tcp::endpoint ep{asio::ip::make_address_v4("127.0.0.1"), port};
        auto ec = run([&](auto h) { beast::get_lowest_layer(ws_).async_connect(ep, h); });
        if (ec) return 0;
        if (!api_key.empty())
            ws_.set_option(websocket::stream_base::decorator(
                [api_key](websocket::request_type& r) { r.set(bhttp::field::authorization, "Bearer " + api_key); }));
        websocket::response_type res;
        ec = run([&](auto h) { ws_.async_handshake(res, "127.0.0.1:" + std::to_string(port), "/ws", h); });
        return res.result_int();
    }
    bool send(const std::string& text, bool binary = false) {
        ws_.binary(binary);
        return !run([&](auto h) { ws_.async_write(asio::buffer(text), h); });
    }
    // The next message as text; nullopt when none arrives in time or the connection ended.
    std::optional<std::string> next_text(std::chrono::milliseconds timeout = 10s) {
        buf_.consume(buf_.size());
        auto ec = run([&](auto h) { ws_.async_read(buf_, h); }, timeout);
        if (ec) {
            last_error_ = ec;
            return std::nullopt;
        }
        return beast::buffers_to_string(buf_.data());
    }
    // The next message, parsed (an empty object when none arrives or it is not an object).
    json::object next(std::chrono::milliseconds timeout = 10s) {
        auto t = next_text(timeout);
        if (!t) return {};
        error_code ec;
        auto v = json::parse(*t, ec);
        if (ec || !v.is_object()) {
            ADD_FAILURE() << "WebSocket message is not a JSON object: " << *t;
            return {};
        }
        return v.as_object();
    }
    error_code last_error() const { return last_error_; }
    bool is_open() const { return ws_.is_open(); }
    void close() {
        websocket::close_reason why{websocket::close_code::normal};
        run([&](auto h) { ws_.async_close(why, h); }, 2s);
    }

private:
    template <class Start>
    error_code run(Start&& start, std::chrono::milliseconds timeout = 10s) {
        return run_with_deadline(io_, timeout, std::forward<Start>(start), [this] {
            error_code ec;
            beast::get_lowest_layer(ws_).close(ec);
        });
    }

    asio::io_context io_;
    websocket::stream<tcp::socket> ws_{io_};
    beast::flat_buffer buf_;
    error_code last_error_;
};

// A raw TCP connection for requests no HTTP library would send.
class raw_socket {
public:
    explicit raw_socket(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        timeval tv{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    ~raw_socket() {
        if (fd_ >= 0) ::close(fd_);
    }
    raw_socket(const raw_socket&) = delete;
    raw_socket& operator=(const raw_socket&) = delete;

    bool connected() const noexcept { return connected_; }
    // False when the peer reset or closed the connection (or the send timed out).
    bool send_all(std::string_view data) {
        while (!data.empty()) {
            auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }
    // Waits up to `timeout` for bytes: appends them to `got`; returns false once the peer closed.
    bool poll_read(std::string& got, std::chrono::milliseconds timeout) {
        pollfd p{fd_, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
        if (r <= 0) return true;
        char buf[16384];
        auto n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return false;
        got.append(buf, static_cast<std::size_t>(n));
        return true;
    }
    // Reads until the peer closes or `timeout` passes; true when it closed.
    bool read_until_close(std::string& got, std::chrono::milliseconds timeout) {
        auto deadline = clock_type::now() + timeout;
        while (clock_type::now() < deadline)
            if (!poll_read(got, 50ms)) return true;
        return false;
    }

private:
    int fd_ = -1;
    bool connected_ = false;
};

// "HTTP/1.1 431 Request Header Fields Too Large\r\n..." → 431 (0 when not a status line).
unsigned status_of(const std::string& raw) {
    if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12) return 0;
    return static_cast<unsigned>(std::atoi(raw.c_str() + 9));
}

// ---------------------------------------------------------------------------
// JSON helpers that fail the test (instead of throwing) on unexpected shapes.
json::object obj(const reply& r) {
    error_code ec;
    auto v = json::parse(r.body, ec);
    if (ec || !v.is_object()) {
        ADD_FAILURE() << "not a JSON object: " << r;
        return {};
    }
    return v.as_object();
}

json::object obj(const std::string& text) {
    error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object()) {
        ADD_FAILURE() << "not a JSON object: " << text;
        return {};
    }
    return v.as_object();
}

std::set<std::string> keys(const json::object& o) {
    std::set<std::string> out;
    for (const auto& kv : o) out.emplace(kv.key());
    return out;
}

std::string str(const json::object& o, std::string_view k) {
    auto* v = o.if_contains(k);
    return v && v->is_string() ? std::string{v->get_string()} : std::string{};
}

std::int64_t num(const json::object& o, std::string_view k) {
    auto* v = o.if_contains(k);
    if (!v) return -1;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
    if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
    return -1;
}

json::object sub(const json::object& o, std::string_view k) {
    auto* v = o.if_contains(k);
    return v && v->is_object() ? v->get_object() : json::object{};
}

bool is_null(const json::object& o, std::string_view k) {
    auto* v = o.if_contains(k);
    return v && v->is_null();
}

std::string error_code_of(const reply& r) { return str(sub(obj(r), "error"), "code"); }

// Redis stream ids "<ms>-<seq>" compare numerically.
std::pair<long long, long long> stream_id(const std::string& id) {
    auto dash = id.find('-');
    if (dash == std::string::npos) return {-1, -1};
    return {std::atoll(id.c_str()), std::atoll(id.c_str() + dash + 1)};
}

const std::set<std::string> status_record_keys{
    "job_id",       "queue",           "status",           "priority",          "attempts",
    "max_retries",  "created_at",      "scheduled_at",     "started_at",        "completed_at",
    "error_message", "result_available", "result_size_bytes", "progress",        "worker_id"};
const std::set<std::string> submit_reply_keys{"job_id", "status", "created_at", "message"};
const std::string ghost_id = "01900000-0000-7000-8000-000000000000";  // well-formed, never submitted

// ---------------------------------------------------------------------------
class ServeE2E : public spool::testing::RedisTest {
public:
    // AOF on (appendfsync everysec): the outage test stops and restarts Redis
    // and expects the jobs it held to come back, as in production.
    static void SetUpTestSuite() {
        if (!server_) {
            spool::testing::redis_server_options o;
            o.appendonly = true;
            own_ = std::make_unique<spool::testing::redis_server>(o);
            server_ = own_.get();
        }
    }

protected:
    void SetUp() override {
        RedisTest::SetUp();
        dir_ = redis().dir() + "/serve-e2e";
        std::filesystem::create_directories(dir_);
        std::ofstream cfg{dir_ + "/spool.yaml"};
        cfg << "queues:\n"
               "  default:\n"
               "    handler: echo\n"
               "    lease_seconds: 2\n"
               "  solve:\n"
               "    handler: echo\n"
               "    lease_seconds: 2\n"
               "  bulk:\n"
               "    handler: echo\n"
               "    lease_seconds: 5\n"
               "  simulation:\n"
               "    handler: simulation\n"
               "    lease_seconds: 2\n"
               "    backoff_base_ms: 10\n"
               "worker:\n"
               "  grace_seconds: 1\n";
    }

    void TearDown() override {
        api_.reset();
        serve_.reset();
        if (HasFailure()) dump_log();
    }

    void dump_log() {
        std::ifstream in{log_path_};
        std::stringstream ss;
        ss << in.rdbuf();
        auto text = ss.str();
        if (text.size() > 6000) text = "..." + text.substr(text.size() - 6000);
        std::cerr << "---- tail of " << log_path_ << " ----\n" << text << "\n---- end ----\n";
    }

    // Starts `spool serve` against the fixture's Redis and waits until /health is 200.
    void start_serve(const header_list& env = {}, const std::vector<std::string>& extra = {}, int workers = 1) {
        port_ = spool::testing::free_port();
        log_path_ = dir_ + "/serve-" + std::to_string(++serves_) + ".log";
        std::vector<std::string> args{"serve",     "--redis",       redis().url(), "--config", dir_ + "/spool.yaml",
                                      "--port",    std::to_string(port_), "--host", "127.0.0.1",
                                      "--workers", std::to_string(workers), "--concurrency", "4"};
        args.insert(args.end(), extra.begin(), extra.end());
        serve_ = std::make_unique<process>(args, log_path_, env);
        bool up = eventually(
            [&] {
                http_conn probe{port_, {}, 1s};
                return probe.get("/health").status == 200 || !serve_->alive();
            },
            20s);
        ASSERT_TRUE(up && serve_->alive()) << "spool serve did not become healthy";
        api_ = std::make_unique<http_conn>(port_, api_key_);
    }

    std::unique_ptr<http_conn> client(const std::string& key = {}) { return std::make_unique<http_conn>(port_, key); }
    http_conn& api() { return *api_; }

    // Submits to /api/jobs and returns the job id ("" and a failure when not 201).
    std::string submit(const std::string& body) {
        auto r = api().post("/api/jobs", body);
        EXPECT_EQ(r.status, 201u) << r;
        return str(obj(r), "job_id");
    }

    json::object job(const std::string& id) { return obj(api().get("/api/jobs/" + id)); }

    bool wait_status(const std::string& id, const std::string& status, std::chrono::milliseconds timeout = 20s) {
        bool ok = eventually(
            [&] {
                auto r = api().get("/api/jobs/" + id);
                return r.status == 200 && r.body.find("\"status\":\"" + status + "\"") != std::string::npos;
            },
            timeout);
        if (!ok) ADD_FAILURE() << "job " << id << " did not reach " << status << ": " << api().get("/api/jobs/" + id);
        return ok;
    }

    // Reads an event stream until the server ends it.
    struct sse_capture {
        unsigned status = 0;
        std::string content_type;
        std::vector<spool::cli::sse_event> events;
        bool ended_cleanly = false;  // the server finished the body (no transport error)
        std::int64_t ms = 0;
    };
    sse_capture read_sse(const std::string& target, const spool::cli::http_headers& headers = {},
                         const std::string& key = {}) {
        sse_capture out;
        spool::cli::http_client c{spool::cli::parse_server_url("http://127.0.0.1:" + std::to_string(port_)).value(),
                                  key, 5s};
        spool::cli::sse_parser parser;
        auto t0 = clock_type::now();
        auto r = c.stream(
            target, headers,
            [&](std::string_view chunk) {
                for (auto& e : parser.feed(chunk)) out.events.push_back(std::move(e));
                return true;
            },
            10s);
        out.ms = ms_since(t0);
        if (!r) {
            ADD_FAILURE() << "SSE request failed: " << r.error().message();
            return out;
        }
        out.status = r->status;
        out.content_type = r->content_type;
        out.ended_cleanly = !r->stream_error;
        return out;
    }

    std::string dir_;
    std::string log_path_;
    std::string api_key_;
    int serves_ = 0;
    std::uint16_t port_ = 0;
    std::unique_ptr<process> serve_;
    std::unique_ptr<http_conn> api_;
};

}  // namespace

// ---------------------------------------------------------------------------
// 1. Routes and status codes.

TEST_F(ServeE2E, SubmitStatusAndResultFollowTheContract) {
    start_serve();
    const std::string payload = R"({"x":1,"nested":{"a":[1,2,3],"s":"t"}})";
    auto r = api().post("/api/jobs", R"({"queue":"default","payload":)" + payload + "}");
    ASSERT_EQ(r.status, 201u) << r;
    EXPECT_EQ(r.header("content-type"), "application/json");
    auto o = obj(r);
    EXPECT_EQ(keys(o), submit_reply_keys);
    EXPECT_EQ(str(o, "status"), "queued");
    EXPECT_EQ(str(o, "message"), "Job submitted successfully");
    EXPECT_TRUE(str(o, "created_at").size() > 20 && str(o, "created_at").back() == 'Z') << str(o, "created_at");
    auto id = str(o, "job_id");
    ASSERT_EQ(id.size(), 36u) << id;

    ASSERT_TRUE(wait_status(id, "completed"));
    auto rec = job(id);
    EXPECT_EQ(keys(rec), status_record_keys);
    EXPECT_EQ(str(rec, "job_id"), id);
    EXPECT_EQ(str(rec, "queue"), "default");
    EXPECT_EQ(num(rec, "priority"), 0);
    EXPECT_EQ(num(rec, "attempts"), 1);
    EXPECT_EQ(num(rec, "max_retries"), 3);
    EXPECT_EQ(num(rec, "progress"), 100);
    EXPECT_TRUE(is_null(rec, "error_message"));
    EXPECT_TRUE(is_null(rec, "scheduled_at"));
    EXPECT_FALSE(str(rec, "started_at").empty());
    EXPECT_FALSE(str(rec, "completed_at").empty());
    EXPECT_FALSE(str(rec, "worker_id").empty());
    EXPECT_TRUE(rec.at("result_available").as_bool());
    EXPECT_EQ(num(rec, "result_size_bytes"), static_cast<std::int64_t>(payload.size()));

    // The handler's output, byte for byte (echo returns the payload).
    auto res = api().get("/api/jobs/" + id + "/result");
    EXPECT_EQ(res.status, 200u) << res;
    EXPECT_EQ(res.header("content-type"), "application/json");
    EXPECT_EQ(res.body, payload);

    // Priority words, a delay → scheduled.
    auto sch = api().post("/api/jobs", R"({"queue":"default","payload":{},"priority":"high","delay_ms":600000})");
    ASSERT_EQ(sch.status, 201u) << sch;
    EXPECT_EQ(str(obj(sch), "status"), "scheduled");
    auto srec = job(str(obj(sch), "job_id"));
    EXPECT_EQ(str(srec, "status"), "scheduled");
    EXPECT_EQ(num(srec, "priority"), 10);
    EXPECT_FALSE(str(srec, "scheduled_at").empty());
    // Not completed: 409 result_not_ready.
    auto early = api().get("/api/jobs/" + str(srec, "job_id") + "/result");
    EXPECT_EQ(early.status, 409u) << early;
    EXPECT_EQ(error_code_of(early), "result_not_ready");

    // A result outliving ttl_seconds: 410 result_expired.
    auto ttl = submit(R"({"queue":"default","payload":{"short":"lived"},"ttl_seconds":1})");
    ASSERT_TRUE(wait_status(ttl, "completed"));
    reply gone;
    EXPECT_TRUE(eventually(
        [&] {
            gone = api().get("/api/jobs/" + ttl + "/result");
            return gone.status != 200;
        },
        6s));
    EXPECT_EQ(gone.status, 410u) << gone;
    EXPECT_EQ(error_code_of(gone), "result_expired");

    // Unknown jobs: 404 job_not_found on every job route.
    for (const auto& [method, target] : std::vector<std::pair<verb, std::string>>{
             {verb::get, "/api/jobs/" + ghost_id},
             {verb::get, "/api/jobs/" + ghost_id + "/result"},
             {verb::get, "/api/jobs/" + ghost_id + "/events"},
             {verb::get, "/api/jobs/" + ghost_id + "/progress"},
             {verb::delete_, "/api/jobs/" + ghost_id},
             {verb::post, "/api/jobs/" + ghost_id + "/cancel"},
             {verb::post, "/api/jobs/" + ghost_id + "/retry"},
             {verb::get, "/api/jobs/not-a-job-id"},
             {verb::get, "/solve/async/" + ghost_id},
             {verb::get, "/solve/async/" + ghost_id + "/result"},
             {verb::delete_, "/solve/async/" + ghost_id}}) {
        auto nf = api().request(method, target);
        EXPECT_EQ(nf.status, 404u) << target << ": " << nf;
        EXPECT_EQ(error_code_of(nf), "job_not_found") << target;
        EXPECT_EQ(nf.header("content-type"), "application/json") << target;
    }
    // No such route: 404 not_found; a route with other methods: 405 + Allow.
    auto nr = api().get("/api/nothing-here");
    EXPECT_EQ(nr.status, 404u) << nr;
    EXPECT_EQ(error_code_of(nr), "not_found");
    auto na = api().request(verb::put, "/api/jobs", "{}");
    EXPECT_EQ(na.status, 405u) << na;
    EXPECT_EQ(error_code_of(na), "method_not_allowed");
    EXPECT_NE(na.header("allow").find("POST"), std::string::npos) << na.header("allow");
    // /ws without an upgrade: 426.
    auto ws = api().get("/ws");
    EXPECT_EQ(ws.status, 426u) << ws;
    EXPECT_EQ(error_code_of(ws), "upgrade_required");
    // The same keep-alive connection served all of the above.
    EXPECT_EQ(api().connects(), 1);
}

TEST_F(ServeE2E, CancelRetryDeduplicateAndDelete) {
    start_serve();
    // unique_key: the second submit while the first is live returns the first (200).
    const std::string long_job =
        R"({"queue":"simulation","payload":{"duration_ms":30000,"steps":30},"unique_key":"order-42"})";
    auto first = api().post("/api/jobs", long_job);
    ASSERT_EQ(first.status, 201u) << first;
    auto id = str(obj(first), "job_id");
    auto dup = api().post("/api/jobs", long_job);
    EXPECT_EQ(dup.status, 200u) << dup;
    EXPECT_EQ(keys(obj(dup)), submit_reply_keys);
    EXPECT_EQ(str(obj(dup), "job_id"), id);
    EXPECT_EQ(str(obj(dup), "message"), "A live job with this unique_key exists");

    // Cancel a running job: 200, then it ends cancelled.
    ASSERT_TRUE(wait_status(id, "in_progress"));
    auto running = job(id);
    EXPECT_EQ(num(running, "attempts"), 1);
    EXPECT_FALSE(str(running, "worker_id").empty());
    auto c = api().post("/api/jobs/" + id + "/cancel");
    EXPECT_EQ(c.status, 200u) << c;
    EXPECT_EQ(keys(obj(c)), (std::set<std::string>{"job_id", "status", "message"}));
    auto cs = str(obj(c), "status");
    EXPECT_TRUE(cs == "cancelled" || cs == "in_progress") << cs;
    ASSERT_TRUE(wait_status(id, "cancelled", 10s));
    auto nr = api().get("/api/jobs/" + id + "/result");
    EXPECT_EQ(nr.status, 409u) << nr;
    // Cancelling a finished job: 409 invalid_state.
    auto c2 = api().post("/api/jobs/" + id + "/cancel");
    EXPECT_EQ(c2.status, 409u) << c2;
    EXPECT_EQ(error_code_of(c2), "invalid_state");

    // Retry a cancelled job: 200 queued, and it runs again.
    auto rt = api().post("/api/jobs/" + id + "/retry");
    EXPECT_EQ(rt.status, 200u) << rt;
    auto rto = obj(rt);
    EXPECT_EQ(keys(rto), (std::set<std::string>{"job_id", "status", "message"}));
    EXPECT_EQ(str(rto, "status"), "queued");
    EXPECT_EQ(str(rto, "message"), "Job requeued");
    ASSERT_TRUE(wait_status(id, "in_progress"));
    // Retrying a job that is neither failed nor cancelled: 409 invalid_state.
    auto rt2 = api().post("/api/jobs/" + id + "/retry");
    EXPECT_EQ(rt2.status, 409u) << rt2;
    EXPECT_EQ(error_code_of(rt2), "invalid_state");

    // Retries exhausted → failed with the handler's error; retry → queued again.
    auto fid = submit(R"({"queue":"simulation","payload":{"duration_ms":10,"fail":true},"max_retries":0})");
    ASSERT_TRUE(wait_status(fid, "failed"));
    auto frec = job(fid);
    EXPECT_NE(str(frec, "error_message").find("simulated failure"), std::string::npos) << str(frec, "error_message");
    EXPECT_EQ(num(frec, "attempts"), 1);
    EXPECT_FALSE(frec.at("result_available").as_bool());
    auto fr = api().get("/api/jobs/" + fid + "/result");
    EXPECT_EQ(fr.status, 409u) << fr;
    auto frt = api().post("/api/jobs/" + fid + "/retry");
    EXPECT_EQ(frt.status, 200u) << frt;

    // DELETE cancels the running job and removes it: 200, then 404 everywhere.
    auto del = api().request(verb::delete_, "/api/jobs/" + id);
    EXPECT_EQ(del.status, 200u) << del;
    auto delo = obj(del);
    EXPECT_EQ(keys(delo), (std::set<std::string>{"job_id", "message"}));
    EXPECT_EQ(str(delo, "message"), "Job " + id + " cancelled/deleted");
    EXPECT_EQ(api().get("/api/jobs/" + id).status, 404u);
    EXPECT_EQ(api().get("/api/jobs/" + id + "/result").status, 404u);
    EXPECT_EQ(api().request(verb::delete_, "/api/jobs/" + id).status, 404u);
    // The unique key is free again: a new submit creates a new job.
    auto again = api().post("/api/jobs", long_job);
    EXPECT_EQ(again.status, 201u) << again;
    EXPECT_NE(str(obj(again), "job_id"), id);
}

TEST_F(ServeE2E, ListIsNewestFirstAndPaginates) {
    start_serve();
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) ids.push_back(submit(R"({"queue":"default","payload":{"i":)" + std::to_string(i) + "}}"));
    auto other = submit(R"({"queue":"solve","payload":{}})");
    for (const auto& id : ids) ASSERT_TRUE(wait_status(id, "completed"));
    ASSERT_TRUE(wait_status(other, "completed"));

    std::vector<std::string> seen;
    std::string cursor;
    for (int page = 0; page < 10; ++page) {
        auto r = api().get("/api/jobs?queue=default&limit=2" + (cursor.empty() ? "" : "&cursor=" + url_encode(cursor)));
        ASSERT_EQ(r.status, 200u) << r;
        auto o = obj(r);
        EXPECT_EQ(keys(o), (std::set<std::string>{"jobs", "next_cursor"}));
        auto& jobs = o.at("jobs").as_array();
        EXPECT_LE(jobs.size(), 2u);
        for (const auto& j : jobs) {
            EXPECT_EQ(keys(j.as_object()), status_record_keys);
            EXPECT_EQ(str(j.as_object(), "queue"), "default");
            seen.push_back(str(j.as_object(), "job_id"));
        }
        if (o.at("next_cursor").is_null()) break;
        cursor = std::string{o.at("next_cursor").as_string()};
    }
    // Every job exactly once, newest first (UUIDv7 ids sort by creation time).
    std::vector<std::string> expected(ids.rbegin(), ids.rend());
    EXPECT_EQ(seen, expected);

    // Filters: status, all queues.
    auto all = obj(api().get("/api/jobs?limit=100"));
    EXPECT_EQ(all.at("jobs").as_array().size(), 6u);
    EXPECT_TRUE(all.at("next_cursor").is_null());
    auto done = obj(api().get("/api/jobs?status=completed&limit=100"));
    EXPECT_EQ(done.at("jobs").as_array().size(), 6u);
    auto none = obj(api().get("/api/jobs?status=failed"));
    EXPECT_EQ(none.at("jobs").as_array().size(), 0u);
    // A trailing slash is ignored.
    EXPECT_EQ(api().get("/api/jobs/").status, 200u);
    // Bad query parameters: 400 invalid_argument.
    for (const std::string q : {"status=bogus", "limit=0", "limit=1001", "limit=abc"}) {
        auto bad = api().get("/api/jobs?" + q);
        EXPECT_EQ(bad.status, 400u) << q << ": " << bad;
        EXPECT_EQ(error_code_of(bad), "invalid_argument") << q;
    }
}

TEST_F(ServeE2E, QueuesWorkersStatsHealthAndMetrics) {
    start_serve();
    // Workers register themselves; live ones are listed with the documented fields.
    reply wr;
    ASSERT_TRUE(eventually(
        [&] {
            wr = api().get("/api/workers");
            return wr.status == 200 && !obj(wr).at("workers").as_array().empty();
        },
        15s))
        << wr;
    auto w = obj(wr).at("workers").as_array().at(0).as_object();
    EXPECT_EQ(keys(w), (std::set<std::string>{"id", "host", "pid", "queues", "concurrency", "running", "running_jobs",
                                              "cpu_cores", "ram_bytes", "version", "started_at", "last_heartbeat"}));
    EXPECT_EQ(num(w, "concurrency"), 4);

    // Pause: jobs are accepted but not claimed; resume: they run.
    auto p = api().post("/api/queues/default/pause");
    EXPECT_EQ(p.status, 200u) << p;
    EXPECT_EQ(json::serialize(obj(p)), R"({"queue":"default","paused":true})");
    auto held = submit(R"({"queue":"default","payload":{"held":true}})");
    auto free_job = submit(R"({"queue":"solve","payload":{"free":true}})");
    ASSERT_TRUE(wait_status(free_job, "completed"));  // the worker is busy claiming, yet...
    EXPECT_EQ(str(job(held), "status"), "queued");    // ...the paused queue's job stays put
    auto q = obj(api().get("/api/queues"));
    bool found = false;
    for (const auto& e : q.at("queues").as_array()) {
        const auto& qo = e.as_object();
        EXPECT_EQ(keys(qo), (std::set<std::string>{"name", "paused", "depth", "totals"}));
        if (str(qo, "name") != "default") continue;
        found = true;
        EXPECT_TRUE(qo.at("paused").as_bool());
        EXPECT_EQ(keys(sub(qo, "depth")),
                  (std::set<std::string>{"queued", "scheduled", "in_progress", "completed", "failed", "cancelled"}));
        EXPECT_EQ(keys(sub(qo, "totals")), (std::set<std::string>{"submitted", "completed", "failed", "retried"}));
        EXPECT_EQ(num(sub(qo, "depth"), "queued"), 1);
        EXPECT_EQ(num(sub(qo, "totals"), "submitted"), 1);
    }
    EXPECT_TRUE(found) << json::serialize(q);
    auto rs = api().post("/api/queues/default/resume");
    EXPECT_EQ(rs.status, 200u) << rs;
    EXPECT_EQ(json::serialize(obj(rs)), R"({"queue":"default","paused":false})");
    ASSERT_TRUE(wait_status(held, "completed"));
    EXPECT_EQ(api().get("/api/queues/default/pause").status, 405u);

    auto st = api().get("/api/stats");
    ASSERT_EQ(st.status, 200u) << st;
    auto so = obj(st);
    EXPECT_EQ(keys(so), (std::set<std::string>{"total_jobs", "queues", "workers", "status_breakdown", "totals",
                                               "redis_connected", "timestamp"}));
    EXPECT_EQ(num(so, "total_jobs"), 2);
    EXPECT_EQ(num(sub(so, "totals"), "submitted"), 2);
    EXPECT_EQ(num(sub(so, "totals"), "completed"), 2);
    EXPECT_EQ(num(sub(so, "status_breakdown"), "completed"), 2);
    EXPECT_GE(num(so, "workers"), 1);
    EXPECT_TRUE(so.at("redis_connected").as_bool());

    auto h = api().get("/health");
    ASSERT_EQ(h.status, 200u) << h;
    auto ho = obj(h);
    EXPECT_EQ(keys(ho), (std::set<std::string>{"status", "timestamp", "redis"}));
    EXPECT_EQ(str(ho, "status"), "ok");
    auto hr = sub(ho, "redis");
    EXPECT_EQ(keys(hr), (std::set<std::string>{"connected", "latency_ms", "version", "used_memory",
                                               "connected_clients", "uptime_seconds"}));
    EXPECT_TRUE(hr.at("connected").as_bool());
    EXPECT_EQ(str(hr, "version").substr(0, 2), "7.") << str(hr, "version");
    EXPECT_GT(num(hr, "used_memory"), 0);
    EXPECT_GE(num(hr, "connected_clients"), 1);

    auto m = api().get("/metrics");
    ASSERT_EQ(m.status, 200u) << m;
    EXPECT_EQ(m.header("content-type").rfind("text/plain; version=0.0.4", 0), 0u) << m.header("content-type");
    for (const char* needle :
         {"spool_jobs_submitted_total{queue=\"default\"} 1", "spool_jobs_completed_total{queue=\"solve\"} 1",
          "spool_queue_depth{", "spool_queue_paused{queue=\"default\"} 0", "spool_workers ",
          "spool_http_requests_total{", "spool_http_request_duration_seconds_bucket{", "spool_redis_up 1",
          "spool_http_open_connections "})
        EXPECT_NE(m.body.find(needle), std::string::npos) << needle << " missing in:\n" << m.body.substr(0, 3000);
}

TEST_F(ServeE2E, CompatSolveAsyncRoutesHaveTheOriginalShapes) {
    start_serve();
    auto r = api().post("/solve/async", R"({"input_json":{"n":3},"priority":0,"ttl_seconds":3600})");
    ASSERT_EQ(r.status, 201u) << r;
    auto o = obj(r);
    EXPECT_EQ(keys(o), submit_reply_keys);
    EXPECT_EQ(str(o, "status"), "queued");
    EXPECT_EQ(str(o, "message"), "Job submitted successfully");
    auto id = str(o, "job_id");
    // input_json is required; wrong types are 400.
    EXPECT_EQ(api().post("/solve/async", R"({"priority":0})").status, 400u);
    EXPECT_EQ(api().post("/solve/async", R"({"input_json":{},"priority":"urgent"})").status, 400u);
    EXPECT_EQ(api().post("/solve/async", "{nope").status, 400u);

    reply st;
    ASSERT_TRUE(eventually(
        [&] {
            st = api().get("/solve/async/" + id);
            return st.status == 200 && str(obj(st), "status") == "completed";
        },
        20s))
        << st;
    auto so = obj(st);
    EXPECT_EQ(keys(so), (std::set<std::string>{"job_id", "status", "created_at", "started_at", "completed_at",
                                               "error_message", "result_available", "result_size_bytes"}));
    EXPECT_EQ(str(so, "job_id"), id);
    EXPECT_TRUE(so.at("result_available").as_bool());
    EXPECT_TRUE(is_null(so, "error_message"));
    // It went to the compat queue `solve`.
    EXPECT_EQ(str(job(id), "queue"), "solve");

    auto res = api().get("/solve/async/" + id + "/result");
    EXPECT_EQ(res.status, 200u) << res;
    EXPECT_EQ(res.body, R"({"n":3})");

    auto stats = api().get("/solve/async/stats");
    ASSERT_EQ(stats.status, 200u) << stats;
    auto sto = obj(stats);
    EXPECT_EQ(keys(sto), (std::set<std::string>{"total_jobs", "active_jobs", "queue_length", "results_cached",
                                                "status_breakdown", "ttl_seconds", "workers", "redis_connected"}));
    EXPECT_EQ(num(sto, "total_jobs"), 1);
    EXPECT_EQ(num(sto, "active_jobs"), 1);
    EXPECT_EQ(num(sto, "queue_length"), 0);
    EXPECT_EQ(num(sto, "results_cached"), 1);
    EXPECT_EQ(json::serialize(sub(sto, "status_breakdown")), R"({"completed":1})");
    EXPECT_EQ(num(sto, "ttl_seconds"), 3600);
    EXPECT_GE(num(sto, "workers"), 0);
    EXPECT_TRUE(sto.at("redis_connected").as_bool());

    auto del = api().request(verb::delete_, "/solve/async/" + id);
    EXPECT_EQ(del.status, 200u) << del;
    EXPECT_EQ(json::serialize(obj(del)), R"({"message":"Job )" + id + R"( cancelled/deleted"})");
    EXPECT_EQ(api().get("/solve/async/" + id).status, 404u);
    EXPECT_EQ(api().get("/solve/async/" + id + "/result").status, 404u);
}

// ---------------------------------------------------------------------------
// 2. Server-Sent Events.

TEST_F(ServeE2E, EventStreamReplaysEverythingResumesAfterLastEventIdAndCloses) {
    start_serve();
    auto id = submit(R"({"queue":"simulation","payload":{"duration_ms":600,"steps":3}})");
    ASSERT_FALSE(id.empty());
    // Live from the start: the stream follows the job and ends after its terminal event.
    auto live = read_sse("/api/jobs/" + id + "/events");
    EXPECT_EQ(live.status, 200u);
    EXPECT_EQ(live.content_type, "text/event-stream");
    EXPECT_TRUE(live.ended_cleanly);
    EXPECT_LT(live.ms, 10000);
    ASSERT_GE(live.events.size(), 6u);  // queued, in_progress, 3 × progress, completed

    std::vector<std::string> statuses;
    int progress_events = 0;
    std::pair<long long, long long> prev{-1, -1};
    for (const auto& e : live.events) {
        EXPECT_TRUE(e.type == "status" || e.type == "progress") << e.type;
        auto d = obj(e.data);
        EXPECT_FALSE(str(d, "status").empty()) << e.data;
        EXPECT_GT(num(d, "ts"), 0) << e.data;
        auto sid = stream_id(e.id);
        EXPECT_GT(sid, prev) << "event ids must increase: " << e.id;
        prev = sid;
        if (e.type == "progress") {
            ++progress_events;
            EXPECT_EQ(num(d, "progress"), 100 * progress_events / 3) << e.data;
            EXPECT_EQ(str(d, "message"), "step " + std::to_string(progress_events) + "/3");
        } else {
            statuses.push_back(str(d, "status"));
        }
    }
    EXPECT_EQ(progress_events, 3);
    ASSERT_FALSE(statuses.empty());
    EXPECT_EQ(statuses.front(), "queued");
    EXPECT_NE(std::find(statuses.begin(), statuses.end(), "in_progress"), statuses.end());
    EXPECT_EQ(live.events.back().type, "status");
    auto last = obj(live.events.back().data);
    EXPECT_EQ(str(last, "status"), "completed");
    EXPECT_GE(num(last, "duration_ms"), 500);
    EXPECT_GE(num(last, "wait_ms"), 0);

    auto ids_of = [](const std::vector<spool::cli::sse_event>& evs) {
        std::vector<std::string> out;
        for (const auto& e : evs) out.push_back(e.id);
        return out;
    };
    // A finished job: its whole history, then the end.
    auto replay = read_sse("/api/jobs/" + id + "/events");
    EXPECT_EQ(replay.status, 200u);
    EXPECT_TRUE(replay.ended_cleanly);
    EXPECT_EQ(ids_of(replay.events), ids_of(live.events));
    for (std::size_t i = 0; i < std::min(replay.events.size(), live.events.size()); ++i)
        EXPECT_EQ(replay.events[i].data, live.events[i].data);

    // Last-Event-ID: only the later events.
    const std::size_t k = 2;
    auto all_ids = ids_of(live.events);
    std::vector<std::string> later(all_ids.begin() + k + 1, all_ids.end());
    auto resumed = read_sse("/api/jobs/" + id + "/events", {{"Last-Event-ID", live.events[k].id}});
    EXPECT_EQ(resumed.status, 200u);
    EXPECT_TRUE(resumed.ended_cleanly);
    EXPECT_EQ(ids_of(resumed.events), later);
    // The same through the alias and the query parameter.
    auto by_query = read_sse("/api/jobs/" + id + "/progress?last_event_id=" + url_encode(live.events[k].id));
    EXPECT_EQ(by_query.status, 200u);
    EXPECT_EQ(ids_of(by_query.events), later);
    // After the terminal event: nothing more, and the stream still ends.
    auto after_end = read_sse("/api/jobs/" + id + "/events", {{"Last-Event-ID", live.events.back().id}});
    EXPECT_EQ(after_end.status, 200u);
    EXPECT_TRUE(after_end.ended_cleanly);
    EXPECT_TRUE(after_end.events.empty());
    EXPECT_LT(after_end.ms, 3000);

    // Unknown job: 404 JSON before any stream.
    http_conn c{port_};
    auto nf = c.get("/api/jobs/" + ghost_id + "/events");
    EXPECT_EQ(nf.status, 404u);
    EXPECT_EQ(nf.header("content-type"), "application/json");
}

// ---------------------------------------------------------------------------
// 3. WebSocket.

TEST_F(ServeE2E, WebSocketSubmitSubscribeAndErrorReplies) {
    start_serve();
    ws_client ws;
    ASSERT_EQ(ws.open(port_), 101u);

    ASSERT_TRUE(ws.send(R"({"id":"p1","type":"ping"})"));
    auto pong = ws.next();
    EXPECT_EQ(json::serialize(pong), R"({"id":"p1","type":"pong"})");

    ASSERT_TRUE(ws.send(
        R"({"id":1,"type":"submit_job","data":{"queue":"simulation","payload":{"duration_ms":400,"steps":2}}})"));
    auto submitted = ws.next();
    EXPECT_EQ(num(submitted, "id"), 1) << json::serialize(submitted);
    EXPECT_EQ(str(submitted, "type"), "job_submitted");
    EXPECT_EQ(keys(submitted), (std::set<std::string>{"id", "type", "job_id", "status", "created_at", "duplicate"}));
    EXPECT_FALSE(submitted.at("duplicate").as_bool());
    auto id = str(submitted, "job_id");
    ASSERT_EQ(id.size(), 36u);

    ASSERT_TRUE(ws.send(R"({"id":2,"type":"subscribe_progress","job_id":")" + id + R"("})"));
    auto ack = ws.next();
    EXPECT_EQ(json::serialize(ack), R"({"id":2,"type":"subscribed","job_id":")" + id + R"("})");
    // The job's events, every one carrying the request id, until completed.
    std::vector<json::object> events;
    for (int i = 0; i < 50; ++i) {
        auto m = ws.next();
        if (m.empty()) break;
        events.push_back(m);
        EXPECT_EQ(num(m, "id"), 2) << json::serialize(m);
        EXPECT_EQ(str(m, "job_id"), id);
        EXPECT_FALSE(str(m, "event_id").empty());
        if (str(m, "type") == "job_status" && str(m, "status") == "completed") break;
    }
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(str(events.front(), "status"), "queued");
    EXPECT_EQ(str(events.back(), "type"), "job_status");
    EXPECT_EQ(str(events.back(), "status"), "completed");
    int progress = 0;
    for (const auto& e : events)
        if (str(e, "type") == "job_progress") {
            ++progress;
            EXPECT_EQ(num(e, "progress"), 50 * progress);
        }
    EXPECT_EQ(progress, 2) << [&] {
        std::string all;
        for (const auto& e : events) all += json::serialize(e) + "\n";
        return all;
    }();

    // Bad messages get error replies (with the request id when there was one); the connection stays.
    ASSERT_TRUE(ws.send("{this is not json"));
    auto e1 = ws.next();
    EXPECT_EQ(str(e1, "type"), "error") << json::serialize(e1);
    EXPECT_TRUE(is_null(e1, "id"));
    EXPECT_EQ(str(sub(e1, "error"), "code"), "invalid_argument");
    ASSERT_TRUE(ws.send(R"({"id":7,"type":"x"})"));
    auto e2 = ws.next();
    EXPECT_EQ(json::serialize(e2),
              R"({"id":7,"type":"error","error":{"code":"invalid_argument","message":"unknown message type \"x\""}})");
    ASSERT_TRUE(ws.send(R"({"id":8,"type":"submit_job","data":{"queue":"simulation","priority":"urgent"}})"));
    auto e3 = ws.next();
    EXPECT_EQ(num(e3, "id"), 8);
    EXPECT_EQ(str(sub(e3, "error"), "code"), "invalid_argument") << json::serialize(e3);
    ASSERT_TRUE(ws.send(R"({"id":9,"type":"subscribe_progress","job_id":")" + ghost_id + R"("})"));
    auto e4 = ws.next();
    EXPECT_EQ(num(e4, "id"), 9);
    EXPECT_EQ(str(sub(e4, "error"), "code"), "job_not_found") << json::serialize(e4);
    ASSERT_TRUE(ws.send("[1,2,3]"));
    EXPECT_EQ(str(ws.next(), "type"), "error");
    ASSERT_TRUE(ws.send("binary\x01", true));
    EXPECT_EQ(str(ws.next(), "type"), "error");

    // Still open and serving: subscribe_updates forwards job_updates for a new job.
    ASSERT_TRUE(ws.send(R"({"id":10,"type":"subscribe_updates"})"));
    EXPECT_EQ(json::serialize(ws.next()), R"({"id":10,"type":"subscribed","channel":"job_updates"})");
    ASSERT_TRUE(ws.send(R"({"id":11,"type":"submit_job","data":{"queue":"default","payload":{"w":1}}})"));
    std::string id2;
    std::set<std::string> update_types;
    for (int i = 0; i < 50 && !update_types.count("job_completed"); ++i) {
        auto m = ws.next();
        if (m.empty()) break;
        if (str(m, "type") == "job_submitted") {
            EXPECT_EQ(num(m, "id"), 11);
            id2 = str(m, "job_id");
        } else if (!id2.empty() && str(m, "job_id") == id2) {
            update_types.insert(str(m, "type"));
        }
    }
    EXPECT_TRUE(update_types.count("job_completed")) << "updates seen: " << update_types.size();
    ASSERT_TRUE(ws.send(R"({"id":12,"type":"ping"})"));
    // Updates of the finished job may still trail in; the pong must come.
    bool ponged = false;
    for (int i = 0; i < 20 && !ponged; ++i) {
        auto m = ws.next();
        if (m.empty()) break;
        ponged = str(m, "type") == "pong" && num(m, "id") == 12;
    }
    EXPECT_TRUE(ponged);
    ws.close();
}

// ---------------------------------------------------------------------------
// 4. Authentication and tenants.

TEST_F(ServeE2E, ApiKeysRequireAuthAndIsolateTenants) {
    start_serve({{"SPOOL_API_KEYS", "k1:t1,k2:t2"}});
    auto anon = client();
    auto t1 = client("k1");
    auto t2 = client("k2");
    auto bogus = client("nope");

    // No key, or an unknown one: 401 with WWW-Authenticate; /health and /metrics stay open.
    for (auto* c : {anon.get(), bogus.get()}) {
        auto r = c->post("/api/jobs", R"({"queue":"default","payload":{}})");
        EXPECT_EQ(r.status, 401u) << r;
        EXPECT_EQ(error_code_of(r), "unauthorized");
        EXPECT_EQ(r.header("www-authenticate"), "Bearer");
        EXPECT_EQ(c->get("/api/jobs").status, 401u);
        EXPECT_EQ(c->get("/api/stats").status, 401u);
        EXPECT_EQ(c->get("/solve/async/stats").status, 401u);
    }
    EXPECT_EQ(anon->get("/health").status, 200u);
    EXPECT_EQ(anon->get("/metrics").status, 200u);

    // t1's job: t1 sees it, t2 gets 404 exactly as for an unknown job.
    auto r = t1->post("/api/jobs", R"({"queue":"default","payload":{"secret":1},"tenant":"t2"})");
    ASSERT_EQ(r.status, 201u) << r;
    auto id = str(obj(r), "job_id");
    ASSERT_TRUE(eventually([&] { return t1->get("/api/jobs/" + id).body.find("\"completed\"") != std::string::npos; },
                           20s));
    EXPECT_EQ(t1->get("/api/jobs/" + id + "/result").status, 200u);
    EXPECT_EQ(anon->get("/api/jobs/" + id).status, 401u);
    for (const auto& [method, target] : std::vector<std::pair<verb, std::string>>{
             {verb::get, "/api/jobs/" + id},
             {verb::get, "/api/jobs/" + id + "/result"},
             {verb::get, "/api/jobs/" + id + "/events"},
             {verb::post, "/api/jobs/" + id + "/retry"},
             {verb::post, "/api/jobs/" + id + "/cancel"},
             {verb::delete_, "/api/jobs/" + id},
             {verb::get, "/solve/async/" + id},
             {verb::get, "/solve/async/" + id + "/result"},
             {verb::delete_, "/solve/async/" + id}}) {
        auto x = t2->request(method, target);
        EXPECT_EQ(x.status, 404u) << target << ": " << x;
        EXPECT_EQ(error_code_of(x), "job_not_found") << target;
    }
    // Lists are filtered per tenant (a `tenant` in the body was ignored).
    auto l1 = obj(t1->get("/api/jobs"));
    auto l2 = obj(t2->get("/api/jobs"));
    ASSERT_EQ(l1.at("jobs").as_array().size(), 1u);
    EXPECT_EQ(str(l1.at("jobs").as_array()[0].as_object(), "job_id"), id);
    EXPECT_EQ(l2.at("jobs").as_array().size(), 0u);
    // unique_key deduplicates within a tenant only.
    const std::string uniq = R"({"queue":"simulation","payload":{"duration_ms":20000},"unique_key":"same"})";
    auto u1 = t1->post("/api/jobs", uniq);
    auto u2 = t2->post("/api/jobs", uniq);
    EXPECT_EQ(u1.status, 201u) << u1;
    EXPECT_EQ(u2.status, 201u) << u2;
    EXPECT_NE(str(obj(u1), "job_id"), str(obj(u2), "job_id"));
    EXPECT_EQ(t1->post("/api/jobs", uniq).status, 200u);
    // Tenant keys may not pause queues: 403.
    auto pz = t2->post("/api/queues/default/pause");
    EXPECT_EQ(pz.status, 403u) << pz;
    EXPECT_EQ(error_code_of(pz), "forbidden");
    // The job still belongs to t1 (t2's DELETE above did nothing).
    EXPECT_EQ(t1->get("/api/jobs/" + id).status, 200u);

    // WebSocket: the upgrade needs a key; t2 cannot subscribe to t1's job.
    ws_client no_key;
    EXPECT_EQ(no_key.open(port_), 401u);
    ws_client ws2;
    ASSERT_EQ(ws2.open(port_, "k2"), 101u);
    ASSERT_TRUE(ws2.send(R"({"id":1,"type":"subscribe_progress","job_id":")" + id + R"("})"));
    auto m = ws2.next();
    EXPECT_EQ(num(m, "id"), 1);
    EXPECT_EQ(str(sub(m, "error"), "code"), "job_not_found") << json::serialize(m);
    ws2.close();
}

// ---------------------------------------------------------------------------
// 5. Rate limiting.

TEST_F(ServeE2E, RateLimitAnswers429WithRetryAfter) {
    start_serve({{"SPOOL_RATE_LIMIT", "1"}, {"SPOOL_RATE_BURST", "3"}});
    // /health and /metrics are not limited.
    for (int i = 0; i < 15; ++i) ASSERT_EQ(api().get("/health").status, 200u) << i;
    for (int i = 0; i < 5; ++i) ASSERT_EQ(api().get("/metrics").status, 200u) << i;

    int ok = 0;
    reply limited;
    for (int i = 0; i < 12 && limited.status == 0; ++i) {
        auto r = api().get("/api/stats");
        if (r.status == 200)
            ++ok;
        else if (r.status == 429)
            limited = r;
        else
            ADD_FAILURE() << r;
    }
    ASSERT_EQ(limited.status, 429u) << "12 requests at a limit of 1/s (burst 3) were never limited";
    EXPECT_GE(ok, 3);  // the burst was honoured
    EXPECT_LE(ok, 5);
    EXPECT_EQ(error_code_of(limited), "rate_limited");
    auto retry_after = limited.header("retry-after");
    ASSERT_FALSE(retry_after.empty());
    EXPECT_GE(std::atoi(retry_after.c_str()), 1);
    EXPECT_LE(std::atoi(retry_after.c_str()), 2);
    // Submits are limited too; once Retry-After has passed, requests go through again.
    EXPECT_EQ(api().post("/api/jobs", R"({"payload":{}})").status, 429u);
    reply back;
    EXPECT_TRUE(eventually(
        [&] {
            back = api().get("/api/stats");
            return back.status == 200;
        },
        std::chrono::seconds{std::atoi(retry_after.c_str()) + 3}))
        << back;
    // Another connection from the same IP (auth off: per-IP buckets) shares the bucket.
    http_conn other{port_};
    int limited_again = 0;
    for (int i = 0; i < 8; ++i) limited_again += other.get("/api/queues").status == 429;
    EXPECT_GE(limited_again, 1);
}

// ---------------------------------------------------------------------------
// 6. Redis goes away and comes back.

TEST_F(ServeE2E, RedisOutageAnswers503FastAndLosesNoJob) {
    start_serve();
    auto running = submit(R"({"queue":"simulation","payload":{"duration_ms":1500,"steps":3}})");
    auto delayed = submit(R"({"queue":"default","payload":{"d":1},"delay_ms":300})");
    ASSERT_TRUE(wait_status(running, "in_progress"));
    auto queued = submit(R"({"queue":"simulation","payload":{"duration_ms":100},"priority":-5})");

    redis().stop();
    for (int i = 0; i < 3; ++i) {
        auto t0 = clock_type::now();
        auto h = api().get("/health");
        auto ms = ms_since(t0);
        EXPECT_EQ(h.status, 503u) << h;
        EXPECT_LT(ms, 2000) << "/health took " << ms << " ms with Redis down";
        auto ho = obj(h);
        EXPECT_EQ(str(ho, "status"), "unhealthy");
        EXPECT_FALSE(sub(ho, "redis").at("connected").as_bool());
        EXPECT_FALSE(str(sub(ho, "redis"), "error").empty());
    }
    {
        auto t0 = clock_type::now();
        auto s = api().post("/api/jobs", R"({"queue":"default","payload":{"during":"outage"}})");
        auto ms = ms_since(t0);
        EXPECT_EQ(s.status, 503u) << s;
        auto code = error_code_of(s);
        EXPECT_TRUE(code == "not_connected" || code == "connection_lost" || code == "timeout") << code;
        EXPECT_LT(ms, 5000) << "submit took " << ms << " ms with Redis down";
        auto g = api().get("/api/jobs/" + running);
        EXPECT_EQ(g.status, 503u) << g;
    }
    // The compat stats answer 200 with redis_connected: false.
    auto cs = api().get("/solve/async/stats");
    EXPECT_EQ(cs.status, 200u) << cs;
    if (cs.status == 200) {
        EXPECT_FALSE(obj(cs).at("redis_connected").as_bool());
    }
    // The server itself is alive and still takes new connections.
    EXPECT_TRUE(serve_->alive());
    http_conn fresh{port_};
    EXPECT_EQ(fresh.get("/health").status, 503u);

    redis().start();
    reply h;
    ASSERT_TRUE(eventually(
        [&] {
            h = api().get("/health");
            return h.status == 200;
        },
        15s))
        << h;
    auto after = submit(R"({"queue":"default","payload":{"after":"outage"}})");
    // Every job submitted before the outage completes; so does the new one.
    for (const auto& id : {running, delayed, queued, after}) {
        ASSERT_TRUE(wait_status(id, "completed", 30s)) << id;
        EXPECT_EQ(api().get("/api/jobs/" + id + "/result").status, 200u) << id;
    }
    EXPECT_EQ(api().get("/api/jobs/" + delayed + "/result").body, R"({"d":1})");
}

// ---------------------------------------------------------------------------
// 7. Bad input.

TEST_F(ServeE2E, BadInputIsRejectedAndTheServerStaysHealthy) {
    start_serve({}, {"--max-payload-bytes", "4096"});
    const auto port = port_;

    // Slow senders run in the background the whole test: headers one byte at a
    // time that never end, and a body that never arrives. The server must drop
    // (or answer 4xx to) each within its read timeout (15 s).
    struct slow_result {
        bool closed = false;
        std::string got;
        std::int64_t ms = 0;
    };
    auto trickle = std::async(std::launch::async, [port] {
        slow_result out;
        raw_socket s{port};
        if (!s.connected()) return out;
        std::string head = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
        auto t0 = clock_type::now();
        for (std::size_t i = 0; ms_since(t0) < 25000; ++i) {
            char c = i < head.size() ? head[i] : 'a';
            if (!s.send_all(std::string_view{&c, 1}) || !s.poll_read(out.got, 100ms)) {
                out.closed = true;
                break;
            }
            if (!out.got.empty()) {  // answered: read to the end
                out.closed = s.read_until_close(out.got, 5s);
                break;
            }
        }
        out.ms = ms_since(t0);
        return out;
    });
    auto stalled_body = std::async(std::launch::async, [port] {
        slow_result out;
        raw_socket s{port};
        if (!s.connected()) return out;
        auto t0 = clock_type::now();
        s.send_all(
            "POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n{\"queue\":");
        out.closed = s.read_until_close(out.got, 25s);
        out.ms = ms_since(t0);
        return out;
    });
    // An idle connection that never sends a byte is held open meanwhile.
    raw_socket idle{port};
    ASSERT_TRUE(idle.connected());

    // Malformed JSON and wrong types: 400 invalid_argument naming the problem.
    auto m = api().post("/api/jobs", R"({"queue":"default","payload":)");
    EXPECT_EQ(m.status, 400u) << m;
    EXPECT_EQ(error_code_of(m), "invalid_argument");
    EXPECT_EQ(str(sub(obj(m), "error"), "message").rfind("malformed JSON", 0), 0u) << m;
    for (const std::string& body :
         {std::string{"[1,2,3]"}, std::string{"\"just a string\""}, std::string{R"({"queue":5})"},
          std::string{R"({"queue":"no spaces allowed"})"}, std::string{R"({"queue":"default","priority":"urgent"})"},
          std::string{R"({"priority":5000})"}, std::string{R"({"priority":1.5})"}, std::string{R"({"max_retries":"3"})"},
          std::string{R"({"max_retries":-1})"}, std::string{R"({"timeout_seconds":0})"},
          std::string{R"({"ttl_seconds":"long"})"}, std::string{R"({"delay_ms":-5})"},
          std::string{R"({"scheduled_at":"yesterday"})"},
          std::string{R"({"delay_ms":10,"scheduled_at":"2030-01-01T00:00:00Z"})"},
          std::string{R"({"unique_key":42})"}, std::string{R"({"queue":")" + std::string(200, 'q') + "\"}"}}) {
        auto r = api().post("/api/jobs", body);
        EXPECT_EQ(r.status, 400u) << body << " → " << r;
        EXPECT_EQ(error_code_of(r), "invalid_argument") << body;
        auto msg = str(sub(obj(r), "error"), "message");
        EXPECT_FALSE(msg.empty()) << body;
    }
    // None of those created a job; the connection survived them all.
    EXPECT_EQ(obj(api().get("/api/jobs")).at("jobs").as_array().size(), 0u);
    EXPECT_EQ(api().connects(), 1);

    // Over --max-payload-bytes: 413 payload_too_large, and the connection is closed.
    {
        http_conn c{port};
        std::string big = R"({"queue":"default","payload":{"blob":")" + std::string(8000, 'x') + "\"}}";
        auto r = c.post("/api/jobs", big);
        EXPECT_EQ(r.status, 413u) << r;
        EXPECT_EQ(error_code_of(r), "payload_too_large");
        EXPECT_FALSE(r.keep_alive);
        EXPECT_FALSE(c.is_open());
    }
    // The same for a chunked body that grows past the limit while being read.
    {
        raw_socket s{port};
        std::string chunk(3000, 'y');
        std::string req = "POST /api/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (int i = 0; i < 3; ++i) req += "bb8\r\n" + chunk + "\r\n";
        req += "0\r\n\r\n";
        s.send_all(req);
        std::string got;
        EXPECT_TRUE(s.read_until_close(got, 5s));
        EXPECT_EQ(status_of(got), 413u) << got.substr(0, 200);
    }
    // A 100 KB request line: 431 header_too_large (docs/http-api.md), then closed.
    {
        raw_socket s{port};
        s.send_all("GET /api/jobs?q=" + std::string(100 * 1024, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
        std::string got;
        EXPECT_TRUE(s.read_until_close(got, 5s));
        EXPECT_EQ(status_of(got), 431u) << got.substr(0, 200);
        EXPECT_NE(got.find("header_too_large"), std::string::npos);
    }
    // Garbage instead of a request line, a bad header, a bad chunk: 400 bad_request, then closed.
    for (const std::string& bad :
         {std::string{"HELLO THERE\r\n\r\n"}, std::string{"GET /health HTTP/1.1\r\nBad Header\r\n\r\n"},
          std::string{"POST /api/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"},
          std::string{"POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}"}}) {
        raw_socket s{port};
        s.send_all(bad);
        std::string got;
        EXPECT_TRUE(s.read_until_close(got, 5s)) << bad;
        EXPECT_EQ(status_of(got), 400u) << bad << " → " << got.substr(0, 200);
        EXPECT_NE(got.find("bad_request"), std::string::npos) << got.substr(0, 300);
    }
    // Binary junk on a fresh connection: answered 400 or simply closed, never a hang.
    {
        raw_socket s{port};
        std::string junk;
        for (int i = 0; i < 4096; ++i) junk += static_cast<char>((i * 7919) & 0xff);
        s.send_all(junk);
        std::string got;
        EXPECT_TRUE(s.read_until_close(got, 5s));
        if (!got.empty()) {
            EXPECT_EQ(status_of(got) / 100, 4u) << got.substr(0, 200);
        }
    }

    // The slow senders are cut off within the read timeout (15 s, plus slack).
    auto t = trickle.get();
    EXPECT_TRUE(t.closed) << "a header trickle kept its connection for " << t.ms << " ms";
    EXPECT_LT(t.ms, 20000);
    if (!t.got.empty()) {
        EXPECT_EQ(status_of(t.got) / 100, 4u) << t.got.substr(0, 200);
    }
    auto b = stalled_body.get();
    EXPECT_TRUE(b.closed) << "a stalled body kept its connection for " << b.ms << " ms";
    EXPECT_LT(b.ms, 20000);
    if (!b.got.empty()) {
        EXPECT_EQ(status_of(b.got) / 100, 4u) << b.got.substr(0, 200);
    }

    // Healthy afterwards: health, a submit, a completed job.
    EXPECT_TRUE(serve_->alive());
    http_conn after{port};
    EXPECT_EQ(after.get("/health").status, 200u);
    auto id = submit(R"({"queue":"default","payload":{"still":"fine"}})");
    ASSERT_TRUE(wait_status(id, "completed"));
    EXPECT_EQ(api().get("/api/jobs/" + id + "/result").body, R"({"still":"fine"})");
}

// ---------------------------------------------------------------------------
// 8. Load: 2,000 jobs from 8 keep-alive clients, each completed exactly once.

TEST_F(ServeE2E, TwoThousandJobsFromEightKeepAliveClientsCompleteExactlyOnce) {
    start_serve({}, {}, 2);
    constexpr int threads = 8;
    constexpr int per_thread = 250;
    constexpr int total = threads * per_thread;
    std::vector<std::vector<std::string>> ids(threads);
    std::vector<int> failures(threads, 0), connects(threads, 0);
    std::mutex mu;
    std::string first_failure;
    auto t0 = clock_type::now();
    {
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([&, t] {
                http_conn c{port_};
                for (int i = 0; i < per_thread; ++i) {
                    auto r = c.post("/api/jobs", R"({"queue":"bulk","payload":{"t":)" + std::to_string(t) +
                                                     R"(,"i":)" + std::to_string(i) + "}}");
                    error_code ec;
                    auto v = json::parse(r.body, ec);
                    if (r.status != 201 || ec || !v.is_object() || !v.as_object().contains("job_id")) {
                        ++failures[t];
                        std::lock_guard lk{mu};
                        if (first_failure.empty()) first_failure = r.body + " status " + std::to_string(r.status);
                        continue;
                    }
                    ids[t].emplace_back(v.as_object().at("job_id").as_string());
                }
                connects[t] = c.connects();
            });
        for (auto& th : pool) th.join();
    }
    auto submit_ms = ms_since(t0);
    std::set<std::string> unique;
    for (int t = 0; t < threads; ++t) {
        EXPECT_EQ(failures[t], 0) << "thread " << t << ": " << first_failure;
        EXPECT_EQ(connects[t], 1) << "thread " << t << " had to reconnect (keep-alive broken)";
        unique.insert(ids[t].begin(), ids[t].end());
    }
    ASSERT_EQ(unique.size(), static_cast<std::size_t>(total));

    auto bulk_queue = [&] {
        auto q = obj(api().get("/api/queues"));
        if (auto* arr = q.if_contains("queues"); arr && arr->is_array())
            for (const auto& e : arr->as_array())
                if (str(e.as_object(), "name") == "bulk") return e.as_object();
        return json::object{};
    };
    json::object bq;
    ASSERT_TRUE(eventually(
        [&] {
            bq = bulk_queue();
            return num(sub(bq, "depth"), "completed") == total;
        },
        60s))
        << json::serialize(bq);
    auto done_ms = ms_since(t0);
    // Exactly once: one completion counted per job, nothing left anywhere else.
    EXPECT_EQ(num(sub(bq, "totals"), "submitted"), total);
    EXPECT_EQ(num(sub(bq, "totals"), "completed"), total);
    EXPECT_EQ(num(sub(bq, "totals"), "failed"), 0);
    EXPECT_EQ(num(sub(bq, "totals"), "retried"), 0);
    for (const char* state : {"queued", "scheduled", "in_progress", "failed", "cancelled"})
        EXPECT_EQ(num(sub(bq, "depth"), state), 0) << state;

    // Each job's record over HTTP: completed on its first attempt, with its own result.
    std::vector<int> bad(threads, 0);
    std::string first_bad;
    {
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([&, t] {
                http_conn c{port_};
                for (std::size_t i = 0; i < ids[t].size(); ++i) {
                    auto r = c.get("/api/jobs/" + ids[t][i]);
                    error_code ec;
                    auto v = json::parse(r.body, ec);
                    bool good = r.status == 200 && !ec && v.is_object() &&
                                str(v.as_object(), "status") == "completed" && num(v.as_object(), "attempts") == 1;
                    if (good && i % 50 == 0) {
                        auto res = c.get("/api/jobs/" + ids[t][i] + "/result");
                        good = res.status == 200 && res.body == R"({"t":)" + std::to_string(t) + R"(,"i":)" +
                                                                    std::to_string(i) + "}";
                    }
                    if (!good) {
                        ++bad[t];
                        std::lock_guard lk{mu};
                        if (first_bad.empty()) first_bad = ids[t][i] + ": " + r.body;
                    }
                }
            });
        for (auto& th : pool) th.join();
    }
    for (int t = 0; t < threads; ++t) EXPECT_EQ(bad[t], 0) << "thread " << t << ", first: " << first_bad;
    auto stats = obj(api().get("/api/stats"));
    EXPECT_EQ(num(sub(stats, "status_breakdown"), "completed"), total);
    std::cerr << "[ info ] " << total << " jobs submitted in " << submit_ms << " ms, all completed after " << done_ms
              << " ms\n";
}

// Graceful stop: SIGTERM with an open event stream and WebSocket → exit 0, quickly.
TEST_F(ServeE2E, SigtermEndsStreamsAndExitsZero) {
    start_serve();
    auto id = submit(R"({"queue":"simulation","payload":{"duration_ms":60000,"steps":60}})");
    ASSERT_TRUE(wait_status(id, "in_progress"));
    ws_client ws;
    ASSERT_EQ(ws.open(port_), 101u);
    ASSERT_TRUE(ws.send(R"({"id":1,"type":"subscribe_progress","job_id":")" + id + R"("})"));
    EXPECT_EQ(str(ws.next(), "type"), "subscribed");
    auto sse = std::async(std::launch::async, [&] { return read_sse("/api/jobs/" + id + "/events"); });
    // Wait until the stream is being served (it shows as an open connection).
    ASSERT_TRUE(eventually(
        [&] {
            auto m = api().get("/metrics");
            auto p = m.body.find("\nspool_http_open_connections ");
            return p != std::string::npos && std::atoi(m.body.c_str() + p + 29) >= 3;
        },
        5s));
    api_.reset();
    auto t0 = clock_type::now();
    serve_->signal(SIGTERM);
    // The WebSocket gets a close frame (1001); the event stream ends.
    std::optional<std::string> msg;
    while ((msg = ws.next_text(15s))) {
    }
    EXPECT_EQ(ws.last_error(), websocket::error::closed) << ws.last_error().message();
    auto s = sse.get();
    EXPECT_EQ(s.status, 200u);
    EXPECT_EQ(serve_->wait_exit(20s), 0);
    EXPECT_LT(ms_since(t0), 15000);
    // The running job was handed back, not lost.
    EXPECT_EQ(redis().hget("spool:{q:simulation}:job:" + id, "status"), "queued");
    EXPECT_EQ(redis().leased("spool:{q:simulation}:active"), 0);
}
