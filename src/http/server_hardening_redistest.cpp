// src/http/server_hardening_redistest.cpp
// The HTTP server against hostile or odd clients, and tenant isolation, with a
// real redis-server: request smuggling through Transfer-Encoding, Host rules,
// HEAD, event ids that are malformed or past the end, what a tenant may see.
#include "http/server_test_fixture.hpp"

namespace {

// Writes `bytes` on a fresh connection and reads one response; `closed` tells
// whether the server then closed the connection (nothing else came).
struct raw_exchange {
    unsigned status = 0;
    std::string body;
    bool closed = false;
    std::string after;  // whatever came after the first response
};

class ServerHardeningTest : public ServerTest {
protected:
    raw_exchange exchange(const std::string& bytes, bool head = false) {
        auto s = connect();
        asio::write(s, asio::buffer(bytes));
        beast::flat_buffer buf;
        bhttp::response_parser<bhttp::string_body> p;
        p.skip(head);
        boost::system::error_code ec;
        bhttp::read(s, buf, p, ec);
        raw_exchange x;
        EXPECT_FALSE(ec) << ec.message();
        x.status = p.get().result_int();
        x.body = p.get().body();
        // Read to the end: a closed connection ends with EOF; a smuggled request
        // would show up as a second response.
        x.after = beast::buffers_to_string(buf.data());
        char chunk[4096];
        for (;;) {
            auto n = s.read_some(asio::buffer(chunk), ec);
            if (ec) break;
            x.after.append(chunk, n);
        }
        x.closed = ec == asio::error::eof || ec == asio::error::connection_reset;
        return x;
    }
    std::string meta_field(const std::string& queue, const std::string& field) {
        return redis().cmd_str({"HGET", "spool:{q:" + queue + "}:meta", field});
    }
};

using headers = std::vector<std::pair<std::string, std::string>>;

}  // namespace

TEST_F(ServerHardeningTest, UnsupportedTransferEncodingIs400AndClosesSoNothingIsSmuggled) {
    start();
    submit(R"({"queue":"sm"})");  // the queue exists: a smuggled pause would work
    const std::string smuggled = "POST /api/queues/sm/pause HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    for (const char* te : {"xchunked", "gzip", "identity", "chunked, gzip", "gzip, chunked",
                           "chunked\r\nTransfer-Encoding: chunked"}) {
        SCOPED_TRACE(te);
        auto x =
            exchange(std::string{"POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"} +
                     "Transfer-Encoding: " + te + "\r\n\r\n" + smuggled);
        EXPECT_EQ(x.status, 400u) << x.body;
        EXPECT_NE(x.body.find("Transfer-Encoding"), std::string::npos) << x.body;
        EXPECT_TRUE(x.closed);
        EXPECT_EQ(x.after.find("HTTP/1.1"), std::string::npos) << "a second response: " << x.after;
    }
    // Both framings at once is the classic desync: refused too.
    auto both = exchange(
        "POST /api/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: "
        "4\r\n\r\n0\r\n\r\n" +
        smuggled);
    EXPECT_EQ(both.status, 400u) << both.body;
    EXPECT_TRUE(both.closed);
    EXPECT_NE(meta_field("sm", "paused"), "1");
    // Plain chunked bodies still work.
    auto chunked = exchange(
        "POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: "
        "Chunked\r\n"
        "Connection: close\r\n\r\ne\r\n{\"queue\":\"sm\"}\r\n0\r\n\r\n");
    EXPECT_EQ(chunked.status, 201u) << chunked.body;
    EXPECT_EQ(get("/health").status, 200u);
}

TEST_F(ServerHardeningTest, HostHeaderMissingOrRepeatedIs400) {
    start();
    auto none = exchange("GET /health HTTP/1.1\r\n\r\n");
    EXPECT_EQ(none.status, 400u);
    EXPECT_NE(none.body.find("Host"), std::string::npos) << none.body;
    EXPECT_TRUE(none.closed);
    auto two = exchange("GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    EXPECT_EQ(two.status, 400u);
    EXPECT_TRUE(two.closed);
    // HTTP/1.0 does not require one.
    EXPECT_EQ(exchange("GET /health HTTP/1.0\r\n\r\n").status, 200u);
}

TEST_F(ServerHardeningTest, HeadAnswersLikeGetWithoutABody) {
    start();
    auto id = submit(R"({"queue":"hd"})");
    auto got = get("/api/jobs/" + id);
    auto s = connect();
    std::string req =
        "HEAD /api/jobs/" + id + " HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    asio::write(s, asio::buffer(req));
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::string_body> head;
    head.skip(true);
    bhttp::read(s, buf, head);
    EXPECT_EQ(head.get().result_int(), 200u);
    EXPECT_EQ(head.get()[bhttp::field::content_length], std::to_string(got.body.size()));
    EXPECT_TRUE(head.get().body().empty());
    // The connection carries on: the next response is the GET's, not a stray body.
    bhttp::response<bhttp::string_body> next;
    bhttp::read(s, buf, next);
    EXPECT_EQ(next.result_int(), 200u);
    EXPECT_NE(next.body().find("\"status\""), std::string::npos) << next.body();

    EXPECT_EQ(exchange("HEAD /api/jobs/0193a6b2-0000-7000-8000-000000000000 HTTP/1.1\r\nHost: x\r\n"
                       "Connection: close\r\n\r\n",
                       true)
                  .status,
              404u);
    auto events = exchange("HEAD /api/jobs/" + id + "/events HTTP/1.1\r\nHost: x\r\n\r\n", true);
    EXPECT_EQ(events.status, 200u);
    EXPECT_TRUE(events.closed);
    auto not_allowed = request(bhttp::verb::put, "/api/jobs");
    EXPECT_EQ(not_allowed.status, 405u);
    EXPECT_EQ(not_allowed.header(bhttp::field::allow), "GET, HEAD, POST");
}

TEST_F(ServerHardeningTest, MalformedLastEventIdIs400) {
    start();
    auto id = submit(R"({"queue":"le"})");
    complete(claim("le"), "{}");
    for (const char* bad : {"garbage", "-1", "$", "99999999999999999999-0", "1-2-3"}) {
        SCOPED_TRACE(bad);
        auto h = get("/api/jobs/" + id + "/events", {{"Last-Event-ID", bad}});
        EXPECT_EQ(h.status, 400u) << h.body;
        EXPECT_EQ(h.json().at("error").at("code").as_string(), "invalid_argument");
        EXPECT_EQ(get("/api/jobs/" + id + "/events?last_event_id=" + bad).status, 400u);
    }
}

TEST_F(ServerHardeningTest, LastEventIdAtOrPastTheEndGetsTheTerminalEventAndTheEnd) {
    start();
    auto id = submit(R"({"queue":"pe"})");
    complete(claim("pe"), "{}");
    sse_reader all{connect(), "/api/jobs/" + id + "/events"};
    auto evs = all.read_to_end();
    ASSERT_EQ(evs.size(), 3u) << all.text();
    // At the end (the client saw the terminal event): nothing more, and the end.
    sse_reader seen{connect(), "/api/jobs/" + id + "/events", evs.back().id};
    EXPECT_TRUE(seen.read_to_end().empty()) << seen.text();
    for (const std::string& after : {std::string{"99999999999999-0"}, std::string{"18446744073709551615"}}) {
        SCOPED_TRACE(after);
        sse_reader r{connect(), "/api/jobs/" + id + "/events", after};
        ASSERT_EQ(r.status(), 200u);
        auto rest = r.read_to_end();  // ends: the watchdog fails the test if it pings forever
        ASSERT_EQ(rest.size(), 1u) << r.text();
        EXPECT_EQ(rest[0].id, evs.back().id);
        EXPECT_NE(rest[0].data.find("\"completed\""), std::string::npos);
    }
    // The WebSocket follows the same rules.
    ws_client ws{connect()};
    ws.send(R"({"id":1,"type":"subscribe_progress","job_id":")" + id + R"(","last_event_id":"$"})");
    auto err = ws.recv();
    EXPECT_EQ(err.at("type").as_string(), "error");
    EXPECT_EQ(err.at("error").at("code").as_string(), "invalid_argument");
    ws.send(R"({"id":2,"type":"subscribe_progress","job_id":")" + id +
            R"(","last_event_id":"99999999999999-0"})");
    EXPECT_EQ(ws.recv().at("type").as_string(), "subscribed");
    auto fin = ws.recv_type("job_status");
    EXPECT_EQ(fin.at("status").as_string(), "completed");
    EXPECT_EQ(fin.at("id").as_int64(), 2);
}

TEST_F(ServerHardeningTest, TenantSeesOnlyItsOwnJobsInWorkersQueuesStatsAndUpdates) {
    auto o = defaults();
    o.api_keys = {{"ka", "alpha"}, {"kb", "beta"}, {"kadmin", "*"}};
    start(o);
    headers a{{"Authorization", "Bearer ka"}}, b{{"Authorization", "Bearer kb"}},
        admin{{"Authorization", "Bearer kadmin"}};
    auto ja = submit(R"({"queue":"tw"})", a);
    auto jb = submit(R"({"queue":"tw"})", b);
    store::worker_info w;
    w.id = "w-shared";
    w.host = "h";
    w.queues = {"tw"};
    w.concurrency = 2;
    w.last_heartbeat = now_millis();
    w.running = {ja, jb};
    ASSERT_TRUE(on_io(broker_->register_worker(w, 60s)).has_value());
    auto running_of = [&](const headers& h) {
        auto r = get("/api/workers", h);
        EXPECT_EQ(r.status, 200u) << r.body;
        std::set<std::string> ids;
        auto v = r.json();
        for (const auto& wk : v.at("workers").as_array())
            for (const auto& j : wk.at("running_jobs").as_array()) ids.insert(std::string{j.as_string()});
        return ids;
    };
    EXPECT_EQ(running_of(a), (std::set<std::string>{ja}));
    EXPECT_EQ(running_of(b), (std::set<std::string>{jb}));
    EXPECT_EQ(running_of(admin), (std::set<std::string>{ja, jb}));

    // Depths and totals span tenants: an operator's view.
    for (const char* route : {"/api/queues", "/api/stats", "/solve/async/stats"}) {
        SCOPED_TRACE(route);
        EXPECT_EQ(get(route, b).status, 403u);
        EXPECT_EQ(get(route, admin).status, 200u);
    }

    // job_updates over WebSocket: only the tenant's own jobs.
    ws_client ws{connect(), b};
    ws.send(R"({"id":1,"type":"subscribe_updates"})");
    EXPECT_EQ(ws.recv().at("type").as_string(), "subscribed");
    auto other = submit(R"({"queue":"tw"})", a);
    auto mine = submit(R"({"queue":"tw"})", b);
    // Until beta's new job shows (earlier beta jobs' events may still be on their way
    // in a cluster, where pub/sub crosses the cluster bus), nothing of alpha's.
    for (;;) {
        auto created = ws.recv_type("job_created");
        ASSERT_FALSE(created.is_null());
        ASSERT_NE(created.at("job_id").as_string(), other) << "alpha's job leaked";
        if (created.at("job_id").as_string() == mine) break;
    }
    ws.send(R"({"id":2,"type":"ping"})");
    for (;;) {
        auto m = ws.recv();
        ASSERT_FALSE(m.is_null());
        if (m.at("type").as_string() == "pong") break;
        EXPECT_EQ(json::serialize(m).find(other), std::string::npos) << json::serialize(m);
    }
}

TEST_F(ServerHardeningTest, MetricsKeyProtectsMetrics) {
    auto o = defaults();
    o.api_keys = {{"ka", "alpha"}, {"kadmin", "*"}};
    o.metrics_key = "scrape-secret";
    start(o);
    auto none = get("/metrics");
    EXPECT_EQ(none.status, 401u);
    EXPECT_EQ(none.header(bhttp::field::www_authenticate), "Bearer");
    EXPECT_EQ(get("/metrics", {{"Authorization", "Bearer scrape-secre"}}).status, 401u);
    EXPECT_EQ(get("/metrics", {{"Authorization", "Bearer ka"}}).status, 401u);
    EXPECT_EQ(get("/metrics", {{"Authorization", "Bearer kadmin"}}).status, 200u);
    auto ok = get("/metrics", {{"Authorization", "Bearer scrape-secret"}});
    EXPECT_EQ(ok.status, 200u);
    EXPECT_NE(ok.body.find("# TYPE"), std::string::npos);
    EXPECT_EQ(get("/health").status, 200u);  // still open
}

TEST_F(ServerHardeningTest, PauseAndResumeOnlyExistingQueues) {
    auto o = defaults();
    o.queue_defaults["configured"] = {};
    start(o);
    for (const char* action : {"pause", "resume"}) {
        SCOPED_TRACE(action);
        auto r = post(std::string{"/api/queues/never-seen/"} + action, "");
        EXPECT_EQ(r.status, 404u) << r.body;
        EXPECT_EQ(r.json().at("error").at("code").as_string(), "queue_not_found");
    }
    EXPECT_EQ(redis().cmd_int({"SISMEMBER", "spool:queues", "never-seen"}), 0);
    EXPECT_EQ(post("/api/queues/configured/pause", "").status, 200u);
    EXPECT_EQ(post("/api/queues/configured/resume", "").status, 200u);
    submit(R"({"queue":"used"})");
    EXPECT_EQ(post("/api/queues/used/pause", "").status, 200u);
    EXPECT_EQ(meta_field("used", "paused"), "1");
}

TEST_F(ServerHardeningTest, ScheduledAtWithAnOutOfRangeOffsetIs400) {
    start();
    for (const char* when :
         {"2030-01-01T00:00:00+99:99", "2030-01-01T00:00:00+24:00", "2030-01-01T00:00:00-01:60"}) {
        SCOPED_TRACE(when);
        auto r = post("/api/jobs", std::string{R"({"queue":"sa","scheduled_at":")"} + when + "\"}");
        EXPECT_EQ(r.status, 400u) << r.body;
        EXPECT_NE(r.body.find("scheduled_at"), std::string::npos) << r.body;
    }
    EXPECT_EQ(post("/api/jobs", R"({"queue":"sa","scheduled_at":"2030-01-01T00:00:00+05:30"})").status, 201u);
}
