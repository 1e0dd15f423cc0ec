// app/client_commands_test.cpp
// The CLI client commands against a scripted HTTP server on 127.0.0.1 (in this
// process, one thread): requests sent, text printed, exit codes, and the event
// stream of `watch` including a reconnect with Last-Event-ID.
#include "app/client_commands.hpp"

#include <gtest/gtest.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>

#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

using namespace spool::cli;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

struct recorded_request {
    std::string method;
    std::string target;
    std::string body;
    std::string authorization;
    std::string last_event_id;
};

// Serves one request per connection with `handler`, which writes the raw
// response; the connection is closed after it returns.
class fake_server {
public:
    using handler = std::function<void(const recorded_request&, tcp::socket&)>;

    explicit fake_server(handler h)
        : handler_{std::move(h)}, acceptor_{ctx_, {asio::ip::make_address("127.0.0.1"), 0}} {
        accept();
        thread_ = std::thread{[this] { ctx_.run(); }};
    }
    ~fake_server() {
        ctx_.stop();
        thread_.join();
    }

    std::string url() const {
        return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
    }
    std::vector<recorded_request> requests() {
        std::lock_guard lock{mu_};
        return requests_;
    }

private:
    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
            if (ec) return;
            serve(std::move(s));
            accept();
        });
    }
    void serve(tcp::socket s) {
        boost::beast::flat_buffer buf;
        http::request<http::string_body> req;
        boost::system::error_code ec;
        http::read(s, buf, req, ec);
        if (ec) return;
        recorded_request r{std::string{req.method_string()}, std::string{req.target()}, req.body(),
                           std::string{req[http::field::authorization]}, std::string{req["Last-Event-ID"]}};
        {
            std::lock_guard lock{mu_};
            requests_.push_back(r);
        }
        handler_(r, s);
        s.shutdown(tcp::socket::shutdown_both, ec);
    }

    handler handler_;
    asio::io_context ctx_;
    tcp::acceptor acceptor_;
    std::thread thread_;
    std::mutex mu_;
    std::vector<recorded_request> requests_;
};

void respond(tcp::socket& s, int status, std::string_view body, std::string_view type = "application/json") {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + std::string{type} +
                      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
                      std::string{body};
    asio::write(s, asio::buffer(out));
}

void write_raw(tcp::socket& s, std::string_view text) {
    asio::write(s, asio::buffer(text.data(), text.size()));
}

constexpr std::string_view sse_head =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: "
    "close\r\n\r\n";

std::string sse(std::string_view id, std::string_view type, std::string_view data) {
    return "id: " + std::string{id} + "\nevent: " + std::string{type} + "\ndata: " + std::string{data} +
           "\n\n";
}

struct run_result {
    int code = -1;
    std::string out;
    std::string err;
};

// Runs `spool <args...>` in-process with stdout/stderr captured.
run_result run(std::vector<std::string> args, std::string stdin_text = {}) {
    CLI::App app{"spool"};
    app.require_subcommand(1);
    add_client_commands(app);
    args.insert(args.begin(), "spool");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());

    std::ostringstream out, err;
    std::istringstream in{stdin_text};
    auto* old_out = std::cout.rdbuf(out.rdbuf());
    auto* old_err = std::cerr.rdbuf(err.rdbuf());
    auto* old_in = std::cin.rdbuf(in.rdbuf());
    run_result r;
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
        r.code = 0;
    } catch (const CLI::Error& e) {
        r.code = handle_cli_error(app, e);
    }
    std::cout.rdbuf(old_out);
    std::cerr.rdbuf(old_err);
    std::cin.rdbuf(old_in);
    r.out = out.str();
    r.err = err.str();
    return r;
}

std::string closed_port_url() {
    asio::io_context ctx;
    tcp::acceptor a{ctx, {asio::ip::make_address("127.0.0.1"), 0}};
    auto port = a.local_endpoint().port();
    a.close();
    return "http://127.0.0.1:" + std::to_string(port);
}

}  // namespace

TEST(ParseDuration, AcceptsUnitsAndBareSeconds) {
    using std::chrono::milliseconds;
    EXPECT_EQ(parse_duration("500ms"), milliseconds{500});
    EXPECT_EQ(parse_duration("10s"), milliseconds{10'000});
    EXPECT_EQ(parse_duration("1.5s"), milliseconds{1'500});
    EXPECT_EQ(parse_duration("2m"), milliseconds{120'000});
    EXPECT_EQ(parse_duration("1h"), milliseconds{3'600'000});
    EXPECT_EQ(parse_duration("7d"), milliseconds{604'800'000});
    EXPECT_EQ(parse_duration("30"), milliseconds{30'000});
    EXPECT_EQ(parse_duration("0"), milliseconds{0});
}

TEST(ParseDuration, RejectsGarbage) {
    for (auto bad : {"", "s", "-5s", "5x", "1.s", ".5s", "5 s", "1e3s", "10sec"})
        EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(ParsePriority, AcceptsIntegersAndWords) {
    EXPECT_EQ(parse_priority("high"), 10);
    EXPECT_EQ(parse_priority("normal"), 0);
    EXPECT_EQ(parse_priority("low"), -10);
    EXPECT_EQ(parse_priority("-5"), -5);
    EXPECT_EQ(parse_priority("42"), 42);
    EXPECT_FALSE(parse_priority("urgent"));
    EXPECT_FALSE(parse_priority("5x"));
    EXPECT_FALSE(parse_priority(""));
}

TEST(ExitCodes, MapCliErrors) {
    EXPECT_EQ(exit_code_for(CLI::RuntimeError(3)), 3);
    EXPECT_EQ(exit_code_for(CLI::RuntimeError(1)), 1);
    EXPECT_EQ(exit_code_for(CLI::CallForHelp()), 0);
    EXPECT_EQ(exit_code_for(CLI::RequiredError("id")), 2);
    EXPECT_EQ(exit_code_for(CLI::ExtrasError(std::vector<std::string>{"x"})), 2);
}

TEST(ClientCommands, UsageErrorsExitWith2) {
    auto missing_id = run({"status"});
    EXPECT_EQ(missing_id.code, 2);
    EXPECT_NE(missing_id.err.find("id is required"), std::string::npos) << missing_id.err;
    EXPECT_EQ(run({"submit", "--priority", "urgent", "{}"}).code, 2);
    EXPECT_EQ(run({"submit", "--delay", "soon", "{}"}).code, 2);
    EXPECT_EQ(run({"submit", "--at", "tomorrow", "{}"}).code, 2);
    EXPECT_EQ(run({"list", "--limit", "0"}).code, 2);
    EXPECT_EQ(run({"list", "--status", "done"}).code, 2);
    EXPECT_EQ(run({"status", "x", "--server", "ftp://host"}).code, 2);
    EXPECT_EQ(run({"status", "--help"}).code, 0);
}

TEST(ClientCommands, InvalidPayloadIsAUsageErrorAndSendsNothing) {
    fake_server server{
        [](const recorded_request&, tcp::socket& s) { respond(s, 201, R"({"job_id":"j1"})"); }};
    auto r = run({"submit", "--server", server.url(), "{not json"});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("spool: the payload is not valid JSON"), std::string::npos) << r.err;
    EXPECT_TRUE(server.requests().empty());
    auto missing = run({"submit", "--server", server.url(), "@/nonexistent/payload.json"});
    EXPECT_EQ(missing.code, 2);
    EXPECT_NE(missing.err.find("cannot read payload file"), std::string::npos) << missing.err;
}

TEST(ClientCommands, UnreachableServerExitsWith3AndSaysWhy) {
    auto url = closed_port_url();
    auto r = run({"stats", "--server", url});
    EXPECT_EQ(r.code, 3);
    EXPECT_EQ(r.err, "spool: cannot reach " + url + ": connection refused\n");
    EXPECT_EQ(run({"watch", "0193", "--server", url}).code, 3);
    EXPECT_EQ(run({"submit", "{}", "--wait", "--server", url}).code, 3);
}

TEST(ClientCommands, SubmitSendsEveryFieldAndPrintsTheId) {
    fake_server server{[](const recorded_request&, tcp::socket& s) {
        respond(s, 201, R"({"job_id":"j-1","status":"queued","created_at":"2025-01-01T00:00:00.000Z"})");
    }};
    auto r = run({"submit", "--server",   server.url(), "--api-key", "sekrit", "--queue",
                  "solve",  "--priority", "high",       "--delay",   "2m",     "--max-retries",
                  "5",      "--timeout",  "90s",        "--ttl",     "1h",     "--unique-key",
                  "k1",     R"({"n":1})"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "j-1\n");
    auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].method, "POST");
    EXPECT_EQ(reqs[0].target, "/api/jobs");
    EXPECT_EQ(reqs[0].authorization, "Bearer sekrit");
    auto body = boost::json::parse(reqs[0].body).as_object();
    EXPECT_EQ(body.at("queue"), "solve");
    EXPECT_EQ(body.at("payload"), boost::json::parse(R"({"n":1})"));
    EXPECT_EQ(body.at("priority"), 10);
    EXPECT_EQ(body.at("delay_ms"), 120000);
    EXPECT_EQ(body.at("max_retries"), 5);
    EXPECT_EQ(body.at("timeout_seconds"), 90);
    EXPECT_EQ(body.at("ttl_seconds"), 3600);
    EXPECT_EQ(body.at("unique_key"), "k1");
}

TEST(ClientCommands, SubmitReadsStdinAndFilesAndDefaultsToEmptyObject) {
    fake_server server{[](const recorded_request&, tcp::socket& s) { respond(s, 201, R"({"job_id":"j"})"); }};
    EXPECT_EQ(run({"submit", "--server", server.url(), "-"}, R"([1,2,3])").code, 0);
    char path[] = "/tmp/spool-payload-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    std::string text = R"({"from":"file"})";
    ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
    EXPECT_EQ(run({"submit", "--server", server.url(), std::string{"@"} + path}).code, 0);
    ::unlink(path);
    EXPECT_EQ(run({"submit", "--server", server.url()}).code, 0);
    auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 3u);
    EXPECT_EQ(boost::json::parse(reqs[0].body).at("payload"), boost::json::parse("[1,2,3]"));
    EXPECT_EQ(boost::json::parse(reqs[1].body).at("payload"), boost::json::parse(text));
    EXPECT_EQ(boost::json::parse(reqs[2].body).at("payload"), boost::json::parse("{}"));
    EXPECT_EQ(boost::json::parse(reqs[2].body).at("queue"), "default");
}

TEST(ClientCommands, ApiErrorsExitWith1AndShowTheServersMessage) {
    fake_server server{[](const recorded_request& r, tcp::socket& s) {
        if (r.target.ends_with("/result"))
            respond(s, 409, R"({"error":{"code":"result_not_ready","message":"job j is in_progress"}})");
        else
            respond(s, 404, R"({"error":{"code":"job_not_found","message":"job nope not found"}})");
    }};
    auto missing = run({"status", "nope", "--server", server.url()});
    EXPECT_EQ(missing.code, 1);
    EXPECT_EQ(missing.err, "spool: job nope not found (HTTP 404 job_not_found)\n");
    auto not_ready = run({"result", "j", "--server", server.url()});
    EXPECT_EQ(not_ready.code, 1);
    EXPECT_NE(not_ready.err.find("in_progress (HTTP 409 result_not_ready)"), std::string::npos)
        << not_ready.err;
}

TEST(ClientCommands, StatusResultCancelRetry) {
    fake_server server{[](const recorded_request& r, tcp::socket& s) {
        if (r.method == "GET" && r.target == "/api/jobs/j1")
            respond(
                s, 200,
                R"({"job_id":"j1","queue":"default","status":"in_progress","progress":40,"error_message":null})");
        else if (r.method == "GET" && r.target == "/api/jobs/j1/result")
            respond(s, 200, R"({"answer":42})");
        else if (r.method == "DELETE" && r.target == "/api/jobs/j1")
            respond(s, 200, R"({"message":"Job j1 cancelled/deleted"})");
        else if (r.method == "POST" && r.target == "/api/jobs/j1/retry")
            respond(s, 200, R"({"job_id":"j1","status":"queued"})");
        else
            respond(s, 500, "unexpected");
    }};
    auto st = run({"status", "j1", "--server", server.url()});
    EXPECT_EQ(st.code, 0) << st.err;
    EXPECT_EQ(st.out,
              "job_id:         j1\n"
              "queue:          default\n"
              "status:         in_progress\n"
              "progress:       40%\n"
              "error_message:  -\n");
    auto st_json = run({"status", "j1", "--json", "--server", server.url()});
    EXPECT_EQ(boost::json::parse(st_json.out).at("progress"), 40);
    auto res = run({"result", "j1", "--server", server.url()});
    EXPECT_EQ(res.out, "{\"answer\":42}\n");
    auto del = run({"cancel", "j1", "--server", server.url()});
    EXPECT_EQ(del.code, 0);
    EXPECT_EQ(del.out, "Job j1 cancelled/deleted\n");
    auto again = run({"retry", "j1", "--server", server.url()});
    EXPECT_EQ(again.code, 0);
    EXPECT_EQ(again.out, "job j1 requeued\n");
}

TEST(ClientCommands, ListSendsFiltersAndPrintsATable) {
    fake_server server{[](const recorded_request&, tcp::socket& s) {
        respond(s, 200, R"({"jobs":[
            {"job_id":"a1","queue":"solve","status":"failed","priority":0,"attempts":3,"created_at":"2025-01-01T00:00:00.000Z"},
            {"job_id":"b22","queue":"default","status":"completed","priority":10,"attempts":1,"created_at":"2025-01-02T00:00:00.000Z"}],
            "next_cursor":"c2"})");
    }};
    auto r =
        run({"list", "--server", server.url(), "--queue", "solve q", "--status", "failed", "--limit", "5"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(server.requests().at(0).target, "/api/jobs?queue=solve%20q&status=failed&limit=5");
    EXPECT_EQ(r.out,
              "ID   QUEUE    STATUS     PRIORITY  ATTEMPTS  CREATED\n"
              "a1   solve    failed     0         3         2025-01-01T00:00:00.000Z\n"
              "b22  default  completed  10        1         2025-01-02T00:00:00.000Z\n");
    EXPECT_NE(r.err.find("--cursor c2"), std::string::npos);
}

TEST(ClientCommands, QueuesWorkersAndStatsAreReadable) {
    fake_server server{[](const recorded_request& r, tcp::socket& s) {
        if (r.target == "/api/queues")
            respond(s, 200, R"({"queues":[{"name":"solve","paused":false,"depth":{"queued":2,"scheduled":0,
                "in_progress":1,"completed":5,"failed":0,"cancelled":0},"totals":{}}]})");
        else if (r.target == "/api/workers")
            respond(s, 200, R"({"workers":[{"id":"w1","host":"h","pid":12,"queues":["solve","default"],
                "concurrency":4,"running":1,"last_heartbeat":"2025-01-01T00:00:00.000Z"}]})");
        else
            respond(s, 200, R"({"total_jobs":8,"status_breakdown":{"queued":2}})");
    }};
    auto q = run({"queues", "--server", server.url()});
    EXPECT_EQ(q.out,
              "QUEUE  PAUSED  QUEUED  SCHEDULED  IN_PROGRESS  COMPLETED  FAILED  CANCELLED\n"
              "solve  no      2       0          1            5          0       0\n");
    auto w = run({"workers", "--server", server.url()});
    EXPECT_EQ(w.out,
              "ID  HOST  PID  QUEUES         CONCURRENCY  RUNNING  LAST_HEARTBEAT\n"
              "w1  h     12   solve,default  4            1        2025-01-01T00:00:00.000Z\n");
    auto st = run({"stats", "--server", server.url()});
    EXPECT_EQ(st.out, "total_jobs:  8\nstatus_breakdown:\n  queued:  2\n");
}

TEST(ClientCommands, WatchPrintsOneLinePerEventAndExits0OnCompletion) {
    fake_server server{[](const recorded_request& r, tcp::socket& s) {
        if (r.target != "/api/jobs/j1/events") return respond(s, 500, "unexpected");
        write_raw(s, sse_head);
        write_raw(s, sse("1-0", "status", R"({"status":"queued"})"));
        write_raw(s, ": keep-alive\n\n");
        write_raw(s, sse("2-0", "status", R"({"status":"in_progress"})"));
        write_raw(s,
                  sse("3-0", "progress", R"({"status":"in_progress","progress":50,"message":"step 5/10"})"));
        write_raw(s, sse("4-0", "status", R"({"status":"completed"})"));
    }};
    auto r = run({"watch", "j1", "--server", server.url()});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out,
              "status queued\n"
              "status in_progress\n"
              "progress 50% step 5/10\n"
              "status completed\n");
}

TEST(ClientCommands, WatchJsonPrintsEventData) {
    fake_server server{[](const recorded_request&, tcp::socket& s) {
        write_raw(s, sse_head);
        write_raw(s, sse("1-0", "status", R"({"status":"completed"})"));
    }};
    auto r = run({"watch", "j1", "--json", "--server", server.url()});
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, "{\"status\":\"completed\"}\n");
}

TEST(ClientCommands, WatchExits1WhenTheJobFails) {
    fake_server server{[](const recorded_request& r, tcp::socket& s) {
        if (r.target == "/api/jobs/j1")
            return respond(s, 200, R"({"job_id":"j1","status":"failed","error_message":"boom"})");
        write_raw(s, sse_head);
        write_raw(s, sse("1-0", "status", R"({"status":"in_progress"})"));
        write_raw(s, sse("2-0", "status", R"({"status":"failed"})"));
    }};
    auto r = run({"watch", "j1", "--server", server.url()});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "spool: job j1 failed: boom\n");
}

TEST(ClientCommands, WatchOfAnUnknownJobExits1) {
    fake_server server{[](const recorded_request&, tcp::socket& s) {
        respond(s, 404, R"({"error":{"code":"job_not_found","message":"job zz not found"}})");
    }};
    auto r = run({"watch", "zz", "--server", server.url()});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "spool: job zz not found (HTTP 404 job_not_found)\n");
}

TEST(ClientCommands, WatchResumesWithLastEventIdAfterTheStreamDrops) {
    int streams = 0;  // touched only on the server thread
    fake_server server{[&streams](const recorded_request& r, tcp::socket& s) {
        if (r.target == "/api/jobs/j1")
            return respond(s, 200,
                           streams < 2 ? R"({"job_id":"j1","status":"in_progress"})"
                                       : R"({"job_id":"j1","status":"completed"})");
        if (++streams == 1) {
            // Chunked, and cut off mid-event without the final chunk: a dropped connection.
            write_raw(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
            auto chunk = [&](const std::string& text) {
                std::ostringstream hex;
                hex << std::hex << text.size();
                write_raw(s, hex.str() + "\r\n" + text + "\r\n");
            };
            chunk(sse("1-0", "status", R"({"status":"in_progress"})"));
            chunk(sse("2-0", "progress", R"({"status":"in_progress","progress":30})"));
            chunk("id: 3-0\nevent: progress\ndata: {\"prog");
            return;
        }
        write_raw(s, sse_head);
        write_raw(s, sse("3-0", "progress", R"({"status":"in_progress","progress":60})"));
        write_raw(s, sse("4-0", "status", R"({"status":"completed"})"));
    }};
    auto r = run({"watch", "j1", "--server", server.url()});
    EXPECT_EQ(r.code, 0) << r.err;
    auto reqs = server.requests();
    std::vector<recorded_request> streams_opened;
    for (const auto& q : server.requests())
        if (q.target == "/api/jobs/j1/events") streams_opened.push_back(q);
    ASSERT_EQ(streams_opened.size(), 2u);
    EXPECT_EQ(streams_opened[0].last_event_id, "");
    EXPECT_EQ(streams_opened[1].last_event_id, "2-0");  // the half event 3-0 was not taken as seen
    EXPECT_EQ(r.out,
              "status in_progress\n"
              "progress 30%\n"
              "progress 60%\n"
              "status completed\n");
}

TEST(ClientCommands, SubmitWaitPrintsOnlyTheResultOnStdout) {
    fake_server server{[](const recorded_request& r, tcp::socket& s) {
        if (r.method == "POST") return respond(s, 201, R"({"job_id":"j9","status":"queued"})");
        if (r.target == "/api/jobs/j9/result") return respond(s, 200, R"({"answer":42})");
        write_raw(s, sse_head);
        write_raw(s, sse("1-0", "progress", R"({"status":"in_progress","progress":50})"));
        write_raw(s, sse("2-0", "status", R"({"status":"completed"})"));
    }};
    auto r = run({"submit", "--wait", "--server", server.url(), R"({"x":1})"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "{\"answer\":42}\n");
    EXPECT_NE(r.err.find("job j9 submitted"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("progress 50%"), std::string::npos) << r.err;
}

TEST(ClientCommands, SubmitWaitExits1WhenTheJobIsCancelled) {
    fake_server server{[](const recorded_request& r, tcp::socket& s) {
        if (r.method == "POST") return respond(s, 201, R"({"job_id":"j9","status":"queued"})");
        if (r.target == "/api/jobs/j9")
            return respond(s, 404, R"({"error":{"code":"job_not_found","message":"gone"}})");
        write_raw(s, sse_head);
        write_raw(s, sse("1-0", "status", R"({"status":"cancelled"})"));
    }};
    auto r = run({"submit", "--wait", "--server", server.url(), "{}"});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("spool: job j9 cancelled"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
}

TEST(ClientCommands, WatchDoesNotStopAtAnOldTerminalEventOfARetriedJob) {
    int streams = 0;  // touched only on the server thread
    fake_server server{[&streams](const recorded_request& r, tcp::socket& s) {
        if (r.target == "/api/jobs/j1")
            return respond(s, 200,
                           streams < 2 ? R"({"job_id":"j1","status":"queued"})"
                                       : R"({"job_id":"j1","status":"completed"})");
        write_raw(s, sse_head);
        if (++streams == 1)
            return write_raw(s, sse("1-0", "status", R"({"status":"failed"})"));  // before a retry
        write_raw(s, sse("2-0", "status", R"({"status":"queued"})"));
        write_raw(s, sse("3-0", "status", R"({"status":"completed"})"));
    }};
    auto r = run({"watch", "j1", "--server", server.url()});
    EXPECT_EQ(r.code, 0) << r.err;
    auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 4u);
    EXPECT_EQ(reqs[1].target, "/api/jobs/j1");  // is it really over? no: retried
    EXPECT_EQ(reqs[2].target, "/api/jobs/j1/events");
    EXPECT_EQ(reqs[2].last_event_id, "1-0");
    EXPECT_EQ(r.out, "status failed\nstatus queued\nstatus completed\n");
}

TEST(ClientCommands, EventsAfterATerminalOneInTheSameChunkAreFollowed) {
    fake_server server{[](const recorded_request& r, tcp::socket& s) {
        if (r.target == "/api/jobs/j1") return respond(s, 200, R"({"job_id":"j1","status":"completed"})");
        // One write: the old `failed` and what followed the retry arrive together.
        write_raw(s, std::string{sse_head} + sse("1-0", "status", R"({"status":"failed"})") +
                         sse("2-0", "status", R"({"status":"queued"})") +
                         sse("3-0", "status", R"({"status":"completed"})"));
    }};
    auto r = run({"watch", "j1", "--server", server.url()});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "status failed\nstatus queued\nstatus completed\n");
}
