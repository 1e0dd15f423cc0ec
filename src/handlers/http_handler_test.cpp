// src/handlers/http_handler_test.cpp
// The http handler against a small Beast server on 127.0.0.1 run by the test on
// the same io_context (plain HTTP, and HTTPS with a test CA).
#include "handlers/http.hpp"
#include "handlers/testing_context.hpp"
#include "testing/redis_server.hpp"  // free_port
#include "testing/run_coro.hpp"

#include <gtest/gtest.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdlib>
#include <filesystem>
#include <map>

using namespace spool;
using namespace spool::handlers;
using spool::handlers::testing::test_job;
using spool::testing::run_coro;

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct recorded_request {
    std::string method;
    std::string target;
    std::string body;
    std::map<std::string, std::string> headers;
};

struct server_state {
    explicit server_state(asio::io_context& io)
        : acceptor{io, tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}} {}
    tcp::acceptor acceptor;
    ssl::context* tls = nullptr;
    std::vector<recorded_request> requests;
    std::function<void()> on_slow_request;
};

template <class Stream>
asio::awaitable<void> serve_one(Stream& stream, std::shared_ptr<server_state> st) {
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    auto [ec, n] = co_await http::async_read(stream, buf, req, use_tuple);
    if (ec) co_return;
    recorded_request rec;
    rec.method = std::string{req.method_string()};
    rec.target = std::string{req.target()};
    rec.body = req.body();
    for (const auto& field : req) rec.headers[std::string{field.name_string()}] = std::string{field.value()};
    st->requests.push_back(rec);

    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::content_type, "application/json");
    if (rec.target == "/json") {
        res.body() = R"({"ok":true,"got":)" + rec.body + "}";
    } else if (rec.target == "/empty") {
    } else if (rec.target == "/status/500") {
        res.result(http::status::internal_server_error);
        res.body() = "boom: database down\n";
    } else if (rec.target == "/status/502") {
        res.result(http::status::bad_gateway);
        res.body() = std::string(2000, 'e');
    } else if (rec.target == "/status/404") {
        res.result(http::status::not_found);
    } else if (rec.target == "/text") {
        res.body() = "this is not json";
    } else if (rec.target == "/big") {
        res.body() = "\"" + std::string(17 * 1024 * 1024, 'b') + "\"";
    } else if (rec.target == "/slow") {
        if (st->on_slow_request) st->on_slow_request();
        asio::steady_timer never{co_await asio::this_coro::executor, std::chrono::minutes{5}};
        co_await never.async_wait(use_tuple);
        co_return;
    }
    res.prepare_payload();
    co_await http::async_write(stream, res, use_tuple);
}

asio::awaitable<void> plain_session(tcp::socket socket, std::shared_ptr<server_state> st) {
    beast::tcp_stream stream{std::move(socket)};
    co_await serve_one(stream, st);
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
}

asio::awaitable<void> tls_session(tcp::socket socket, std::shared_ptr<server_state> st) {
    ssl::stream<beast::tcp_stream> stream{beast::tcp_stream{std::move(socket)}, *st->tls};
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
    if (ec) co_return;
    co_await serve_one(stream, st);
}

asio::awaitable<void> accept_loop(std::shared_ptr<server_state> st) {
    for (;;) {
        auto [ec, socket] = co_await st->acceptor.async_accept(use_tuple);
        if (ec) co_return;
        if (st->tls)
            asio::co_spawn(st->acceptor.get_executor(), tls_session(std::move(socket), st), asio::detached);
        else
            asio::co_spawn(st->acceptor.get_executor(), plain_session(std::move(socket), st), asio::detached);
    }
}

class test_server {
public:
    explicit test_server(asio::io_context& io, ssl::context* tls = nullptr)
        : st_{std::make_shared<server_state>(io)} {
        st_->tls = tls;
        asio::co_spawn(io, accept_loop(st_), asio::detached);
    }
    std::uint16_t port() const { return st_->acceptor.local_endpoint().port(); }
    std::string url(const std::string& path, const std::string& host = "127.0.0.1") const {
        return std::string{st_->tls ? "https" : "http"} + "://" + host + ":" + std::to_string(port()) + path;
    }
    const std::vector<recorded_request>& requests() const { return st_->requests; }
    void on_slow_request(std::function<void()> fn) { st_->on_slow_request = std::move(fn); }

private:
    std::shared_ptr<server_state> st_;
};

queue_policy http_policy(const std::string& url) {
    queue_policy p;
    p.name = "hooks";
    p.handler = "http";
    p.http.url = url;
    return p;
}

std::string run(asio::io_context& io, const queue_policy& p, test_job& job) {
    auto h = make_http_handler(p);
    if (!h) return "NO HANDLER: " + h.error().message();
    try {
        return run_coro(io, h->async_fn(job.context()), std::chrono::seconds{10});
    } catch (const job_failure& e) {
        return std::string{"FAILED: "} + e.what();
    }
}

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST(HttpHandler, PostsThePayloadAndReturnsTheJsonResponse) {
    asio::io_context io;
    test_server server{io};
    test_job job{io, test_job::info(R"({"a":1})")};
    EXPECT_EQ(run(io, http_policy(server.url("/json")), job), R"({"ok":true,"got":{"a":1}})");
    ASSERT_EQ(server.requests().size(), 1u);
    const auto& req = server.requests()[0];
    EXPECT_EQ(req.method, "POST");
    EXPECT_EQ(req.target, "/json");
    EXPECT_EQ(req.body, R"({"a":1})");
    EXPECT_EQ(req.headers.at("Content-Type"), "application/json");
    EXPECT_EQ(req.headers.at("Host"), "127.0.0.1:" + std::to_string(server.port()));
    EXPECT_EQ(req.headers.at("X-Spool-Job-Id"), "job-1");
    EXPECT_EQ(req.headers.at("X-Spool-Queue"), "test");
    EXPECT_EQ(req.headers.at("X-Spool-Attempt"), "1");
}

TEST(HttpHandler, PassesPolicyHeadersMethodAndQuery) {
    asio::io_context io;
    test_server server{io};
    test_job job{io, test_job::info("[1,2]")};
    auto p = http_policy(server.url("/empty?token=abc&x=1"));
    p.http.method = "PUT";
    p.http.headers = {{"Authorization", "Bearer secret"}, {"X-Custom", "v 1"}};
    EXPECT_EQ(run(io, p, job), "null");  // an empty 2xx body
    ASSERT_EQ(server.requests().size(), 1u);
    const auto& req = server.requests()[0];
    EXPECT_EQ(req.method, "PUT");
    EXPECT_EQ(req.target, "/empty?token=abc&x=1");
    EXPECT_EQ(req.body, "[1,2]");
    EXPECT_EQ(req.headers.at("Authorization"), "Bearer secret");
    EXPECT_EQ(req.headers.at("X-Custom"), "v 1");
}

TEST(HttpHandler, ErrorStatusesFailWithTheBodyStart) {
    asio::io_context io;
    test_server server{io};
    test_job job{io, test_job::info("{}")};
    EXPECT_EQ(run(io, http_policy(server.url("/status/500")), job), "FAILED: HTTP 500: boom: database down");
    EXPECT_EQ(run(io, http_policy(server.url("/status/502")), job),
              "FAILED: HTTP 502: " + std::string(512, 'e'));
    EXPECT_EQ(run(io, http_policy(server.url("/status/404")), job), "FAILED: HTTP 404 (Not Found)");
}

TEST(HttpHandler, NonJsonSuccessBodyFails) {
    asio::io_context io;
    test_server server{io};
    test_job job{io, test_job::info("{}")};
    auto r = run(io, http_policy(server.url("/text")), job);
    EXPECT_TRUE(starts_with(r, "FAILED: HTTP 200: response is not JSON: ")) << r;
    EXPECT_NE(r.find("this is not json"), std::string::npos) << r;
}

TEST(HttpHandler, ResponseOverTheLimitFails) {
    asio::io_context io;
    test_server server{io};
    test_job job{io, test_job::info("{}")};
    EXPECT_EQ(run(io, http_policy(server.url("/big")), job),
              "FAILED: POST http://127.0.0.1:" + std::to_string(server.port()) +
                  "/big: response exceeds 16777216 bytes");
}

TEST(HttpHandler, TimeoutFails) {
    asio::io_context io;
    test_server server{io};
    test_job job{io, test_job::info("{}")};
    auto p = http_policy(server.url("/slow"));
    p.http.timeout = std::chrono::milliseconds{200};
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(run(io, p, job), "FAILED: timed out after 200 ms");
    auto took = std::chrono::steady_clock::now() - started;
    EXPECT_GE(took, std::chrono::milliseconds{200});
    EXPECT_LT(took, std::chrono::seconds{2});
}

TEST(HttpHandler, CancelEndsTheRequest) {
    asio::io_context io;
    test_server server{io};
    test_job job{io, test_job::info("{}")};
    server.on_slow_request([&] { job.cancel(); });
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(run(io, http_policy(server.url("/slow")), job), "FAILED: cancelled");
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{2});
    EXPECT_EQ(server.requests().size(), 1u);
}

TEST(HttpHandler, TransportErrorsFail) {
    asio::io_context io;
    test_job job{io, test_job::info("{}")};
    auto port = std::to_string(spool::testing::free_port());
    EXPECT_EQ(run(io, http_policy("http://127.0.0.1:" + port + "/run?secret=1"), job),
              "FAILED: POST http://127.0.0.1:" + port + "/run: connect: Connection refused");
}

TEST(HttpHandler, BadUrlIsAConfigError) {
    EXPECT_FALSE(make_http_handler(http_policy("ftp://127.0.0.1/")));
    EXPECT_FALSE(make_http_handler(http_policy("not a url")));
    auto p = http_policy("http://127.0.0.1/");
    p.http.method = "NOPE";
    EXPECT_FALSE(make_http_handler(p));
}

namespace {

// A CA and a server certificate for localhost / 127.0.0.1, made once per suite.
class HttpsHandler : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        char tmpl[] = "/tmp/spool-https-test-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        std::string cmd = "cd '" + dir_ +
                          "' && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=spool-test-ca "
                          "-keyout ca.key -out ca.crt >/dev/null 2>&1 && "
                          "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out "
                          "server.csr >/dev/null 2>&1 && "
                          "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf && "
                          "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
                          "-extfile ext.cnf -out server.crt >/dev/null 2>&1";
        ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make test certificates";
    }
    static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

    void SetUp() override {
        server_ctx_.use_certificate_chain_file(dir_ + "/server.crt");
        server_ctx_.use_private_key_file(dir_ + "/server.key", ssl::context::pem);
        SSL_CTX_set_tlsext_servername_callback(server_ctx_.native_handle(), &record_sni);
        SSL_CTX_set_tlsext_servername_arg(server_ctx_.native_handle(), &sni_);
    }

    // The handler reads the trust store when it is made: point it at our CA.
    static result<handler> make_trusting(const queue_policy& p) {
        ::setenv("SSL_CERT_FILE", (dir_ + "/ca.crt").c_str(), 1);
        auto h = make_http_handler(p);
        ::unsetenv("SSL_CERT_FILE");
        return h;
    }

    static int record_sni(SSL* ssl, int*, void* arg) {
        if (const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name))
            *static_cast<std::string*>(arg) = name;
        return SSL_TLSEXT_ERR_OK;
    }

    static inline std::string dir_;
    ssl::context server_ctx_{ssl::context::tls_server};
    std::string sni_;
};

std::string run_handler(asio::io_context& io, const result<handler>& h, test_job& job) {
    if (!h) return "NO HANDLER";
    try {
        return run_coro(io, h->async_fn(job.context()), std::chrono::seconds{10});
    } catch (const job_failure& e) {
        return std::string{"FAILED: "} + e.what();
    }
}

}  // namespace

TEST_F(HttpsHandler, VerifiesTheServerAndSendsSni) {
    asio::io_context io;
    test_server server{io, &server_ctx_};
    test_job job{io, test_job::info(R"({"tls":true})")};
    EXPECT_EQ(run_handler(io, make_trusting(http_policy(server.url("/json", "localhost"))), job),
              R"({"ok":true,"got":{"tls":true}})");
    EXPECT_EQ(sni_, "localhost");
    EXPECT_EQ(run_handler(io, make_trusting(http_policy(server.url("/json"))), job),  // 127.0.0.1: IP SAN
              R"({"ok":true,"got":{"tls":true}})");
}

TEST_F(HttpsHandler, UntrustedCertificateFails) {
    asio::io_context io;
    test_server server{io, &server_ctx_};
    test_job job{io, test_job::info("{}")};
    auto r = run_handler(io, make_http_handler(http_policy(server.url("/json"))), job);
    EXPECT_TRUE(starts_with(
        r, "FAILED: POST https://127.0.0.1:" + std::to_string(server.port()) + "/json: TLS handshake: "))
        << r;
    EXPECT_NE(r.find("certificate verify failed"), std::string::npos) << r;
    EXPECT_TRUE(server.requests().empty());
}

TEST_F(HttpsHandler, HttpsToAPlainServerFails) {
    asio::io_context io;
    test_server plain{io};
    test_job job{io, test_job::info("{}")};
    auto url = "https://127.0.0.1:" + std::to_string(plain.port()) + "/json";
    auto r = run_handler(io, make_trusting(http_policy(url)), job);
    EXPECT_TRUE(starts_with(r, "FAILED: POST " + url + ": ")) << r;
}
