// src/http/server_redistest.cpp
// The HTTP API end to end in one process: a real redis-server, a real broker
// and the server on an ephemeral port, driven by a small blocking Beast client.
#include "http/server_test_fixture.hpp"
#include "store/partitions.hpp"

#include <map>
#include <set>

// ---------------------------------------------------------------- jobs

TEST_F(ServerTest, SubmitReturns201AndStatusRecordHasExactShape) {
    start();
    auto r = post("/api/jobs", R"({"queue":"q1","payload":{"x":[1,2]},"priority":"high","max_retries":1})");
    ASSERT_EQ(r.status, 201u) << r.body;
    auto v = r.json();
    EXPECT_EQ(keys_of(v), (std::set<std::string>{"job_id", "status", "created_at", "message"}));
    EXPECT_EQ(v.at("status").as_string(), "queued");
    EXPECT_EQ(v.at("message").as_string(), "Job submitted successfully");
    std::string id{v.at("job_id").as_string()};
    EXPECT_EQ(r.header(bhttp::field::content_type), "application/json");

    auto s = get("/api/jobs/" + id);
    ASSERT_EQ(s.status, 200u) << s.body;
    auto j = s.json();
    EXPECT_EQ(keys_of(j), (std::set<std::string>{"job_id", "queue", "status", "priority", "attempts",
                                                 "max_retries", "created_at", "scheduled_at", "started_at",
                                                 "completed_at", "error_message", "result_available",
                                                 "result_size_bytes", "progress", "worker_id"}));
    EXPECT_EQ(j.at("job_id").as_string(), id);
    EXPECT_EQ(j.at("queue").as_string(), "q1");
    EXPECT_EQ(j.at("priority").as_int64(), 10);
    EXPECT_EQ(j.at("max_retries").as_int64(), 1);
    EXPECT_EQ(j.at("attempts").as_int64(), 0);
    EXPECT_TRUE(j.at("started_at").is_null());
    EXPECT_TRUE(j.at("completed_at").is_null());
    EXPECT_TRUE(j.at("error_message").is_null());
    EXPECT_TRUE(j.at("worker_id").is_null());
    EXPECT_EQ(j.at("result_available").as_bool(), false);
    auto created = j.at("created_at").as_string();
    EXPECT_EQ(created.size(), 24u) << created;  // 2025-11-24T14:53:10.114Z
    EXPECT_EQ(created.back(), 'Z');
}

TEST_F(ServerTest, AliasesAndScheduledSubmit) {
    start();
    auto r = post("/api/jobs", R"({"service_required":"sim","input_json":[1],"delay_ms":60000})");
    ASSERT_EQ(r.status, 201u) << r.body;
    EXPECT_EQ(r.json().at("status").as_string(), "scheduled");
    auto j = get("/api/jobs/" + std::string{r.json().at("job_id").as_string()}).json();
    EXPECT_EQ(j.at("queue").as_string(), "sim");
    EXPECT_FALSE(j.at("scheduled_at").is_null());
}

TEST_F(ServerTest, DuplicateUniqueKeyReturns200WithFirstJob) {
    start();
    auto a = post("/api/jobs", R"({"queue":"q1","unique_key":"u1"})");
    ASSERT_EQ(a.status, 201u);
    auto b = post("/api/jobs", R"({"queue":"q1","unique_key":"u1"})");
    ASSERT_EQ(b.status, 200u) << b.body;
    EXPECT_EQ(a.json().at("job_id"), b.json().at("job_id"));
}

TEST_F(ServerTest, BadRequestsAre400WithErrorBody) {
    start();
    auto r = post("/api/jobs", R"({"queue": )");
    ASSERT_EQ(r.status, 400u);
    EXPECT_EQ(r.json().at("error").at("code").as_string(), "invalid_argument");
    EXPECT_NE(std::string{r.json().at("error").at("message").as_string()}.find("malformed JSON"),
              std::string::npos);
    auto t = post("/api/jobs", R"({"max_retries":"three"})");
    ASSERT_EQ(t.status, 400u);
    EXPECT_NE(std::string{t.json().at("error").at("message").as_string()}.find("max_retries"),
              std::string::npos);
    EXPECT_EQ(post("/api/jobs", "[]").status, 400u);
    EXPECT_EQ(get("/api/jobs?status=running").status, 400u);
    EXPECT_EQ(get("/api/jobs?limit=0").status, 400u);
}

TEST_F(ServerTest, UnknownJobRouteAndMethod) {
    start();
    auto r = get("/api/jobs/0193a6b2-0000-7000-8000-000000000000");
    ASSERT_EQ(r.status, 404u);
    EXPECT_EQ(r.json().at("error").at("code").as_string(), "job_not_found");
    EXPECT_EQ(get("/api/jobs/not-an-id").status, 404u);
    auto n = get("/nope");
    EXPECT_EQ(n.status, 404u);
    EXPECT_EQ(n.json().at("error").at("code").as_string(), "not_found");
    auto m = request(bhttp::verb::put, "/api/jobs", "{}");
    EXPECT_EQ(m.status, 405u);
    EXPECT_EQ(m.header(bhttp::field::allow), "GET, HEAD, POST");
    EXPECT_EQ(m.json().at("error").at("code").as_string(), "method_not_allowed");
}

TEST_F(ServerTest, ResultLifecycle) {
    start();
    auto id = submit(R"({"queue":"q1","payload":{"a":1}})");
    auto early = get("/api/jobs/" + id + "/result");
    ASSERT_EQ(early.status, 409u) << early.body;
    EXPECT_EQ(early.json().at("error").at("code").as_string(), "result_not_ready");

    auto j = claim("q1");
    ASSERT_EQ(j.id, id);
    EXPECT_EQ(get("/api/jobs/" + id).json().at("status").as_string(), "in_progress");
    complete(j, R"({"answer": 42, "list": [1, 2]})");
    auto res = get("/api/jobs/" + id + "/result");
    ASSERT_EQ(res.status, 200u);
    EXPECT_EQ(res.body, R"({"answer": 42, "list": [1, 2]})");  // as produced, byte for byte
    auto s = get("/api/jobs/" + id).json();
    EXPECT_EQ(s.at("status").as_string(), "completed");
    EXPECT_TRUE(s.at("result_available").as_bool());
    EXPECT_EQ(s.at("result_size_bytes").as_int64(), 30);
    EXPECT_FALSE(s.at("completed_at").is_null());
    EXPECT_FALSE(s.at("started_at").is_null());
    EXPECT_EQ(s.at("worker_id").as_string(), "test-worker");
}

TEST_F(ServerTest, ExpiredResultIs410) {
    start();
    auto id = submit(R"({"queue":"q1"})");
    auto j = claim("q1");
    complete(j, R"({"v":1})", 1s);
    // The result outlived its TTL (a small one lives in the record until
    // result_expires_at): 410, not 409.
    redis().cmd({"HSET", "spool:{q:q1}:job:" + id, "result_expires_at", "1"});
    auto r = get("/api/jobs/" + id + "/result");
    EXPECT_EQ(r.status, 410u) << r.body;
    EXPECT_EQ(r.json().at("error").at("code").as_string(), "result_expired");
    // Marked expired by the janitor: 410 as well.
    redis().cmd({"HSET", "spool:{q:q1}:job:" + id, "status", "expired"});
    auto e = get("/api/jobs/" + id + "/result");
    EXPECT_EQ(e.status, 410u) << e.body;
    EXPECT_EQ(get("/solve/async/" + id + "/result").status, 410u);
}

TEST_F(ServerTest, ListIsNewestFirstAndPaginated) {
    start();
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) ids.push_back(submit(R"({"queue":"lq"})"));
    submit(R"({"queue":"other"})");
    auto p1 = get("/api/jobs?queue=lq&limit=2");
    ASSERT_EQ(p1.status, 200u) << p1.body;
    auto v1 = p1.json();
    ASSERT_EQ(v1.at("jobs").as_array().size(), 2u);
    EXPECT_EQ(v1.at("jobs").at(0).at("job_id").as_string(), ids[4]);
    EXPECT_EQ(v1.at("jobs").at(1).at("job_id").as_string(), ids[3]);
    ASSERT_TRUE(v1.at("next_cursor").is_string());
    std::vector<std::string> seen;
    std::string cursor{v1.at("next_cursor").as_string()};
    for (int guard = 0; guard < 5 && !cursor.empty(); ++guard) {
        auto p = get("/api/jobs?queue=lq&limit=2&cursor=" + cursor).json();
        for (const auto& j : p.at("jobs").as_array()) seen.emplace_back(j.at("job_id").as_string());
        cursor = p.at("next_cursor").is_null() ? "" : std::string{p.at("next_cursor").as_string()};
    }
    EXPECT_EQ(seen, (std::vector<std::string>{ids[2], ids[1], ids[0]}));
    auto all = get("/api/jobs?status=queued&limit=100").json();
    EXPECT_EQ(all.at("jobs").as_array().size(), 6u);
}

TEST_F(ServerTest, DeleteCancelAndRetry) {
    start();
    auto id = submit();
    auto d = del("/api/jobs/" + id);
    ASSERT_EQ(d.status, 200u) << d.body;
    EXPECT_EQ(d.json().at("message").as_string(), "Job " + id + " cancelled/deleted");
    EXPECT_EQ(get("/api/jobs/" + id).status, 404u);
    EXPECT_EQ(del("/api/jobs/" + id).status, 404u);

    auto id2 = submit();
    auto again = post("/api/jobs/" + id2 + "/retry", "");
    EXPECT_EQ(again.status, 409u) << again.body;  // queued: nothing to retry
    EXPECT_EQ(again.json().at("error").at("code").as_string(), "invalid_state");
    auto c = post("/api/jobs/" + id2 + "/cancel", "");
    ASSERT_EQ(c.status, 200u) << c.body;
    EXPECT_EQ(c.json().at("status").as_string(), "cancelled");
    auto r = post("/api/jobs/" + id2 + "/retry", "");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(get("/api/jobs/" + id2).json().at("status").as_string(), "queued");

    auto id3 = submit(R"({"queue":"fq","max_retries":0})");
    fail(claim("fq"), "boom");
    auto f = get("/api/jobs/" + id3).json();
    EXPECT_EQ(f.at("status").as_string(), "failed");
    EXPECT_EQ(f.at("error_message").as_string(), "boom");
    EXPECT_EQ(post("/api/jobs/" + id3 + "/retry", "").status, 200u);
}

TEST_F(ServerTest, QueuesWorkersAndStats) {
    start();
    submit(R"({"queue":"qa"})");
    submit(R"({"queue":"qa"})");
    submit(R"({"queue":"qb"})");
    store::worker_info w;
    w.id = "w-1";
    w.host = "h";
    w.pid = 42;
    w.queues = {"qa"};
    w.concurrency = 3;
    w.last_heartbeat = now_millis();
    ASSERT_TRUE(on_io(broker_->register_worker(w, 60s)).has_value());

    auto q = get("/api/queues");
    ASSERT_EQ(q.status, 200u) << q.body;
    bool found = false;
    auto qv = q.json();
    for (const auto& e : qv.at("queues").as_array()) {
        if (e.at("name").as_string() != "qa") continue;
        found = true;
        EXPECT_EQ(e.at("depth").at("queued").as_int64(), 2);
        EXPECT_EQ(e.at("paused").as_bool(), false);
        EXPECT_EQ(e.at("totals").at("submitted").as_int64(), 2);
    }
    EXPECT_TRUE(found) << q.body;

    auto p = post("/api/queues/qa/pause", "");
    ASSERT_EQ(p.status, 200u) << p.body;
    EXPECT_EQ(p.json().at("paused").as_bool(), true);
    auto paused = get("/api/queues").json();
    for (const auto& e : paused.at("queues").as_array()) {
        if (e.at("name").as_string() == "qa") {
            EXPECT_TRUE(e.at("paused").as_bool());
        }
    }
    EXPECT_EQ(post("/api/queues/qa/resume", "").status, 200u);

    auto ws = get("/api/workers");
    ASSERT_EQ(ws.status, 200u) << ws.body;
    ASSERT_EQ(ws.json().at("workers").as_array().size(), 1u);
    auto w0 = ws.json().at("workers").at(0);
    EXPECT_EQ(w0.at("id").as_string(), "w-1");
    EXPECT_EQ(w0.at("pid").as_int64(), 42);
    EXPECT_EQ(w0.at("concurrency").as_int64(), 3);

    auto st = get("/api/stats");
    ASSERT_EQ(st.status, 200u) << st.body;
    auto sv = st.json();
    EXPECT_EQ(sv.at("total_jobs").as_int64(), 3);
    EXPECT_EQ(sv.at("status_breakdown").at("queued").as_int64(), 3);
    EXPECT_EQ(sv.at("workers").as_int64(), 1);
    EXPECT_EQ(sv.at("totals").at("submitted").as_int64(), 3);
}

// ---------------------------------------------------------------- compat

TEST_F(ServerTest, CompatRoutesHaveExactShapes) {
    start();
    auto r =
        post("/solve/async", R"({"input_json":{"schemaVersion":"0.70"},"priority":0,"ttl_seconds":3600})");
    ASSERT_EQ(r.status, 201u) << r.body;
    auto v = r.json();
    EXPECT_EQ(keys_of(v), (std::set<std::string>{"job_id", "status", "created_at", "message"}));
    EXPECT_EQ(v.at("status").as_string(), "queued");
    EXPECT_EQ(v.at("message").as_string(), "Job submitted successfully");
    std::string id{v.at("job_id").as_string()};

    auto stats = get("/solve/async/stats");
    ASSERT_EQ(stats.status, 200u) << stats.body;
    auto sv = stats.json();
    EXPECT_EQ(keys_of(sv),
              (std::set<std::string>{"total_jobs", "active_jobs", "queue_length", "results_cached",
                                     "status_breakdown", "ttl_seconds", "workers", "redis_connected"}));
    EXPECT_EQ(sv.at("total_jobs").as_int64(), 1);
    EXPECT_EQ(sv.at("queue_length").as_int64(), 1);
    EXPECT_EQ(sv.at("status_breakdown").at("queued").as_int64(), 1);
    EXPECT_EQ(sv.at("ttl_seconds").as_int64(), 3600);
    EXPECT_EQ(sv.at("redis_connected").as_bool(), true);

    auto s = get("/solve/async/" + id);
    ASSERT_EQ(s.status, 200u) << s.body;
    EXPECT_EQ(keys_of(s.json()),
              (std::set<std::string>{"job_id", "status", "created_at", "started_at", "completed_at",
                                     "error_message", "result_available", "result_size_bytes"}));
    auto j = claim("solve");
    complete(j, R"({"status":"OPTIMAL"})");
    auto res = get("/solve/async/" + id + "/result");
    ASSERT_EQ(res.status, 200u);
    EXPECT_EQ(res.body, R"({"status":"OPTIMAL"})");
    auto done = get("/solve/async/stats").json();
    EXPECT_EQ(done.at("results_cached").as_int64(), 1);
    EXPECT_EQ(done.at("status_breakdown").at("completed").as_int64(), 1);

    auto d = del("/solve/async/" + id);
    ASSERT_EQ(d.status, 200u);
    EXPECT_EQ(keys_of(d.json()), (std::set<std::string>{"message"}));
    EXPECT_EQ(d.json().at("message").as_string(), "Job " + id + " cancelled/deleted");
    EXPECT_EQ(get("/solve/async/" + id).status, 404u);
    EXPECT_EQ(post("/solve/async", R"({"priority":0})").status, 400u);  // input_json is required
}

// ---------------------------------------------------------------- health, metrics

TEST_F(ServerTest, HealthReportsRedis) {
    start();
    auto h = get("/health");
    ASSERT_EQ(h.status, 200u) << h.body;
    auto v = h.json();
    EXPECT_EQ(v.at("status").as_string(), "ok");
    EXPECT_TRUE(v.at("timestamp").is_string());
    auto r = v.at("redis");
    EXPECT_EQ(r.at("connected").as_bool(), true);
    EXPECT_TRUE(r.at("latency_ms").is_number());
    EXPECT_EQ(std::string{r.at("version").as_string()}.substr(0, 1), "7");
    EXPECT_GT(r.at("used_memory").as_int64(), 0);
    // One node answers INFO: in a cluster it may hold only one of our links.
    EXPECT_GE(r.at("connected_clients").as_int64(), clustered() ? 1 : 2);
    EXPECT_TRUE(r.at("uptime_seconds").is_int64());
}

TEST_F(ServerTest, MetricsUseRoutePatterns) {
    start();
    auto id = submit(R"({"queue":"mq"})");
    get("/api/jobs/" + id);
    get("/api/jobs/" + id);
    auto j = claim("mq");
    complete(j, "{}");
    // The job histograms are fed by job_updates messages: wait for the completion to arrive.
    std::string text;
    ASSERT_TRUE(wait_until(
        [&] {
            text = get("/metrics").body;
            return text.find("spool_job_duration_seconds_count{queue=\"mq\"} 1") != std::string::npos;
        },
        5s))
        << text;
    EXPECT_NE(text.find("spool_jobs_submitted_total{queue=\"mq\"} 1"), std::string::npos);
    EXPECT_NE(text.find("spool_jobs_completed_total{queue=\"mq\"} 1"), std::string::npos);
    EXPECT_NE(text.find("spool_queue_depth{queue=\"mq\",state=\"completed\"} 1"), std::string::npos);
    EXPECT_NE(text.find("spool_job_wait_seconds_count{queue=\"mq\"} 1"), std::string::npos);
    EXPECT_NE(
        text.find("spool_http_requests_total{route=\"/api/jobs/{id}\",method=\"GET\",status=\"200\"} 2"),
        std::string::npos)
        << text;
    EXPECT_EQ(text.find(id), std::string::npos);  // never a raw path
    EXPECT_NE(text.find("spool_http_request_duration_seconds_count{route=\"/api/jobs\"}"), std::string::npos);
    EXPECT_NE(text.find("spool_redis_up 1"), std::string::npos);
}

// ---------------------------------------------------------------- hostile clients

TEST_F(ServerTest, OversizedBodyIs413AndServerStaysHealthy) {
    auto o = defaults();
    o.max_payload_bytes = 64 * 1024;
    start(o);
    std::string big = R"({"payload":")" + std::string(200 * 1024, 'x') + R"("})";
    auto r = post("/api/jobs", big);
    EXPECT_EQ(r.status, 413u);
    EXPECT_EQ(r.json().at("error").at("code").as_string(), "payload_too_large");

    // Chunked, so the limit is only found while reading the body.
    auto s = connect();
    std::string head = "POST /api/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    asio::write(s, asio::buffer(head));
    std::string chunk(32 * 1024, 'y');
    boost::system::error_code ec;
    for (int i = 0; i < 4 && !ec; ++i) {
        std::string framed = "8000\r\n" + chunk + "\r\n";
        asio::write(s, asio::buffer(framed), ec);
    }
    beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(s, buf, res, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(res.result_int(), 413u);

    EXPECT_EQ(get("/health").status, 200u);
    EXPECT_EQ(post("/api/jobs", R"({"payload":"small"})").status, 201u);
}

TEST_F(ServerTest, HugeRequestLineGets4xxOrCloseThenHealthy) {
    start();
    auto s = connect();
    std::string line = "GET /api/jobs?x=" + std::string(100 * 1024, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n";
    boost::system::error_code ec;
    asio::write(s, asio::buffer(line), ec);  // may fail midway once the server closed: fine
    beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(s, buf, res, ec);
    if (!ec) {
        EXPECT_GE(res.result_int(), 400u);
        EXPECT_LT(res.result_int(), 500u);
        EXPECT_EQ(res.result_int(), 431u);
    }
    EXPECT_EQ(get("/health").status, 200u);
}

TEST_F(ServerTest, SlowLorisIsClosedAfterReadTimeout) {
    auto o = defaults();
    o.read_timeout = 300ms;
    start(o);
    auto s = connect();
    std::string half = "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    asio::write(s, asio::buffer(half));
    auto t0 = std::chrono::steady_clock::now();
    char c;
    boost::system::error_code ec;
    s.read_some(asio::buffer(&c, 1), ec);  // blocks until the server drops us
    auto elapsed = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
    EXPECT_GE(elapsed, 250ms);
    EXPECT_LT(elapsed, 3s);
    EXPECT_EQ(get("/health").status, 200u);
}

TEST_F(ServerTest, KeepAliveServesPipelinedRequestsInOrder) {
    start();
    auto id = submit();
    auto s = connect();
    std::string reqs =
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /api/jobs/" +
        id +
        " HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n\r\n{\"queue\":\"pip\"}"
        "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(reqs.find("{\"queue\":\"pip\"}") + 15, reqs.find("GET /nope"));
    asio::write(s, asio::buffer(reqs));
    beast::flat_buffer buf;
    std::vector<unsigned> statuses;
    std::vector<std::string> bodies;
    for (int i = 0; i < 4; ++i) {
        bhttp::response<bhttp::string_body> res;
        boost::system::error_code ec;
        bhttp::read(s, buf, res, ec);
        ASSERT_FALSE(ec) << i << ": " << ec.message();
        EXPECT_TRUE(res.keep_alive());
        statuses.push_back(res.result_int());
        bodies.push_back(res.body());
    }
    EXPECT_EQ(statuses, (std::vector<unsigned>{200, 200, 201, 404}));
    EXPECT_NE(bodies[1].find(id), std::string::npos);
    // The connection is still usable afterwards.
    std::string one = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    asio::write(s, asio::buffer(one));
    bhttp::response<bhttp::string_body> last;
    bhttp::read(s, buf, last);
    EXPECT_EQ(last.result_int(), 200u);
    EXPECT_FALSE(last.keep_alive());
}

TEST_F(ServerTest, ConnectionCapAnswers503) {
    auto o = defaults();
    o.max_connections = 2;
    start(o);
    auto a = connect();
    auto b = connect();
    // Make sure both sessions are running before the third arrives.
    for (auto* s : {&a, &b}) {
        std::string req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        asio::write(*s, asio::buffer(req));
        beast::flat_buffer buf;
        bhttp::response<bhttp::string_body> res;
        bhttp::read(*s, buf, res);
        ASSERT_EQ(res.result_int(), 200u);
    }
    auto c = connect();
    beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    boost::system::error_code ec;
    bhttp::read(c, buf, res, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(res.result_int(), 503u);
    EXPECT_EQ(json::parse(res.body()).at("error").at("code").as_string(), "too_many_connections");
    a.close();
    b.close();
    EXPECT_TRUE(wait_until([&] { return get("/health").status == 200; }, 3s));
}

// ---------------------------------------------------------------- SSE

TEST_F(ServerTest, SseReplaysFromStartAndFromLastEventId) {
    start();
    auto id = submit(R"({"queue":"sq"})");
    auto j = claim("sq");
    progress(j, 50, "half");
    complete(j, R"({"ok":true})");

    sse_reader all{connect(), "/api/jobs/" + id + "/events"};
    ASSERT_EQ(all.status(), 200u);
    EXPECT_EQ(all.header(bhttp::field::content_type), "text/event-stream");
    EXPECT_EQ(all.header(bhttp::field::cache_control), "no-cache");
    auto evs = all.read_to_end();  // the job is done: replay, then the stream ends
    ASSERT_EQ(evs.size(), 4u) << all.text();
    EXPECT_EQ(evs[0].type, "status");
    EXPECT_NE(evs[0].data.find("\"queued\""), std::string::npos);
    EXPECT_NE(evs[1].data.find("\"in_progress\""), std::string::npos);
    EXPECT_EQ(evs[2].type, "progress");
    EXPECT_EQ(json::parse(evs[2].data).at("progress").as_int64(), 50);
    EXPECT_NE(evs[3].data.find("\"completed\""), std::string::npos);
    for (const auto& e : evs) EXPECT_FALSE(e.id.empty());

    sse_reader resumed{connect(), "/api/jobs/" + id + "/progress", evs[1].id};
    auto rest = resumed.read_to_end();
    ASSERT_EQ(rest.size(), 2u) << resumed.text();
    EXPECT_EQ(rest[0].id, evs[2].id);
    EXPECT_EQ(rest[1].id, evs[3].id);
}

TEST_F(ServerTest, SseFollowsLiveEventsAndClosesAfterTerminal) {
    start();
    auto id = submit(R"({"queue":"lv"})");
    sse_reader r{connect(), "/api/jobs/" + id + "/events"};
    ASSERT_EQ(r.status(), 200u);
    ASSERT_EQ(r.read_events(1).size(), 1u);  // the replayed "queued"
    auto j = claim("lv");
    ASSERT_EQ(r.read_events(2).size(), 2u) << r.text();  // live, through the event hub
    progress(j, 30, "a third");
    auto evs = r.read_events(3);
    ASSERT_EQ(evs.size(), 3u) << r.text();
    EXPECT_EQ(evs[2].type, "progress");
    EXPECT_FALSE(r.done());
    fail(j, "bad input");
    evs = r.read_to_end();
    ASSERT_EQ(evs.size(), 4u) << r.text();
    EXPECT_NE(evs[3].data.find("\"failed\""), std::string::npos);
    EXPECT_NE(evs[3].data.find("bad input"), std::string::npos);
}

TEST_F(ServerTest, SseUnknownJobIs404Json) {
    start();
    auto r = get("/api/jobs/0193a6b2-0000-7000-8000-000000000000/events");
    EXPECT_EQ(r.status, 404u);
    EXPECT_EQ(r.json().at("error").at("code").as_string(), "job_not_found");
}

// ---------------------------------------------------------------- WebSocket

TEST_F(ServerTest, WebSocketSubmitSubscribeAndErrors) {
    start();
    ws_client ws{connect()};
    ws.send(
        R"({"id":1,"type":"submit_job","data":{"service_required":"wq","payload":{"k":1},"priority":"low"}})");
    auto sub = ws.recv();
    ASSERT_EQ(sub.at("type").as_string(), "job_submitted") << json::serialize(sub);
    EXPECT_EQ(sub.at("id").as_int64(), 1);
    EXPECT_EQ(sub.at("status").as_string(), "queued");
    std::string id{sub.at("job_id").as_string()};

    ws.send(R"({"id":2,"type":"subscribe_progress","job_id":")" + id + R"("})");
    auto ack = ws.recv();
    EXPECT_EQ(ack.at("type").as_string(), "subscribed");
    EXPECT_EQ(ack.at("id").as_int64(), 2);
    auto first = ws.recv_type("job_status");  // replay: queued
    EXPECT_EQ(first.at("status").as_string(), "queued");
    EXPECT_EQ(first.at("job_id").as_string(), id);

    auto j = claim("wq");
    EXPECT_EQ(ws.recv_type("job_status").at("status").as_string(), "in_progress");
    progress(j, 70, "almost");
    auto p = ws.recv_type("job_progress");
    EXPECT_EQ(p.at("progress").as_int64(), 70);
    EXPECT_EQ(p.at("message").as_string(), "almost");
    complete(j, "{}");
    EXPECT_EQ(ws.recv_type("job_status").at("status").as_string(), "completed");

    // Bad messages get errors and the connection stays open.
    ws.send("{not json");
    auto e1 = ws.recv();
    EXPECT_EQ(e1.at("type").as_string(), "error");
    EXPECT_TRUE(e1.at("id").is_null());
    EXPECT_EQ(e1.at("error").at("code").as_string(), "invalid_argument");
    ws.send(R"({"id":"x7","type":"launch_rocket"})");
    auto e2 = ws.recv();
    EXPECT_EQ(e2.at("type").as_string(), "error");
    EXPECT_EQ(e2.at("id").as_string(), "x7");
    ws.send(R"({"id":8,"type":"submit_job","data":{"priority":"urgent"}})");
    auto e3 = ws.recv();
    EXPECT_EQ(e3.at("type").as_string(), "error");
    EXPECT_EQ(e3.at("id").as_int64(), 8);
    ws.send(R"({"id":9,"type":"subscribe_progress","job_id":"0193a6b2-0000-7000-8000-000000000000"})");
    EXPECT_EQ(ws.recv().at("error").at("code").as_string(), "job_not_found");
    ws.send(R"({"id":10,"type":"ping"})");
    auto pong = ws.recv();
    EXPECT_EQ(pong.at("type").as_string(), "pong");
    EXPECT_EQ(pong.at("id").as_int64(), 10);
}

TEST_F(ServerTest, WebSocketUpdatesAndUnsubscribe) {
    start();
    ws_client ws{connect()};
    ws.send(R"({"id":1,"type":"subscribe_updates"})");
    auto ack = ws.recv();
    EXPECT_EQ(ack.at("type").as_string(), "subscribed");
    EXPECT_EQ(ack.at("id").as_int64(), 1);
    auto id = submit(R"({"queue":"uq"})");
    auto created = ws.recv_type("job_created");
    ASSERT_FALSE(created.is_null());
    EXPECT_EQ(created.at("job_id").as_string(), id);
    EXPECT_EQ(created.at("queue").as_string(), "uq");
    ws.send(R"({"id":2,"type":"unsubscribe"})");
    auto un = ws.recv_type("unsubscribed");
    EXPECT_EQ(un.at("id").as_int64(), 2);
    submit(R"({"queue":"uq"})");
    ws.send(R"({"id":3,"type":"ping"})");
    EXPECT_EQ(ws.recv().at("type").as_string(), "pong");  // nothing else came in between
}

TEST_F(ServerTest, StopEndsOpenStreamsAndWebSockets) {
    start();
    auto id = submit(R"({"queue":"st"})");
    sse_reader r{connect(), "/api/jobs/" + id + "/events"};
    ASSERT_EQ(r.read_events(1).size(), 1u);
    ws_client ws{connect()};
    ws.send(R"({"id":1,"type":"ping"})");
    ASSERT_EQ(ws.recv().at("type").as_string(), "pong");
    auto idle = connect();  // keep-alive connection with no request in flight
    {
        std::string req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        asio::write(idle, asio::buffer(req));
        beast::flat_buffer b;
        bhttp::response<bhttp::string_body> res;
        bhttp::read(idle, b, res);
        ASSERT_EQ(res.result_int(), 200u);
    }
    auto t0 = std::chrono::steady_clock::now();
    auto stopped = asio::co_spawn(ioc_, server_->stop(5s), asio::use_future);
    r.read_to_end();
    EXPECT_TRUE(r.done());
    beast::flat_buffer buf;
    boost::system::error_code ec;
    ws.stream().read(buf, ec);  // answers the server's close frame
    EXPECT_EQ(ec, beast::websocket::error::closed) << ec.message();
    ASSERT_EQ(stopped.wait_for(5s), std::future_status::ready);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);  // nothing had to be cancelled
    char c;
    idle.read_some(asio::buffer(&c, 1), ec);
    EXPECT_EQ(ec, asio::error::eof);
    // No longer accepting.
    tcp::socket late{client_ctx_};
    late.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    EXPECT_TRUE(ec);
}

TEST_F(ServerTest, PlainGetOnWsIs426) {
    start();
    EXPECT_EQ(get("/ws").status, 426u);
}

// ---------------------------------------------------------------- auth, rate limit

TEST_F(ServerTest, AuthAndTenantIsolation) {
    auto o = defaults();
    o.api_keys = {{"key-a", "tenant-a"}, {"key-b", "tenant-b"}, {"key-admin", "*"}};
    start(o);
    std::vector<std::pair<std::string, std::string>> a{{"Authorization", "Bearer key-a"}};
    std::vector<std::pair<std::string, std::string>> b{{"Authorization", "Bearer key-b"}};
    std::vector<std::pair<std::string, std::string>> admin{{"Authorization", "Bearer key-admin"}};

    auto none = post("/api/jobs", "{}");
    EXPECT_EQ(none.status, 401u);
    EXPECT_EQ(none.json().at("error").at("code").as_string(), "unauthorized");
    EXPECT_EQ(get("/api/jobs", {{"Authorization", "Bearer wrong"}}).status, 401u);
    EXPECT_EQ(get("/solve/async/stats").status, 401u);
    EXPECT_EQ(get("/health").status, 200u);  // open
    EXPECT_EQ(get("/metrics").status, 200u);

    auto id = submit(R"({"queue":"tq","tenant":"forged"})", a);
    EXPECT_EQ(get("/api/jobs/" + id, a).status, 200u);
    EXPECT_EQ(get("/api/jobs/" + id, b).status, 404u);
    EXPECT_EQ(get("/api/jobs/" + id + "/result", b).status, 404u);
    EXPECT_EQ(get("/api/jobs/" + id + "/events", b).status, 404u);
    EXPECT_EQ(del("/api/jobs/" + id, b).status, 404u);
    EXPECT_EQ(get("/solve/async/" + id, b).status, 404u);
    EXPECT_EQ(get("/api/jobs/" + id, admin).status, 200u);
    EXPECT_EQ(get("/api/jobs?queue=tq", a).json().at("jobs").as_array().size(), 1u);
    EXPECT_EQ(get("/api/jobs?queue=tq", b).json().at("jobs").as_array().size(), 0u);
    EXPECT_EQ(get("/api/jobs?queue=tq", admin).json().at("jobs").as_array().size(), 1u);
    EXPECT_EQ(post("/api/queues/tq/pause", "", b).status, 403u);
    EXPECT_EQ(post("/api/queues/tq/pause", "", admin).status, 200u);
    // The same unique_key in two tenants makes two jobs.
    auto ua = post("/api/jobs", R"({"queue":"tq","unique_key":"same"})", a);
    auto ub = post("/api/jobs", R"({"queue":"tq","unique_key":"same"})", b);
    EXPECT_EQ(ua.status, 201u);
    EXPECT_EQ(ub.status, 201u);
    EXPECT_NE(ua.json().at("job_id"), ub.json().at("job_id"));

    // WebSocket: the upgrade needs the key too.
    {
        tcp::socket s = connect();
        beast::websocket::stream<tcp::socket> raw{std::move(s)};
        boost::system::error_code ec;
        raw.handshake("127.0.0.1", "/ws", ec);
        EXPECT_TRUE(ec);  // 401 instead of 101
    }
    ws_client ws{connect(), b};
    ws.send(R"({"id":1,"type":"subscribe_progress","job_id":")" + id + R"("})");
    EXPECT_EQ(ws.recv().at("error").at("code").as_string(), "job_not_found");
}

TEST_F(ServerTest, RateLimitAnswers429WithRetryAfter) {
    auto o = defaults();
    o.rate_limit_per_second = 0.5;
    o.rate_limit_burst = 2;
    start(o);
    EXPECT_EQ(get("/api/stats").status, 200u);
    EXPECT_EQ(get("/api/stats").status, 200u);
    auto r = get("/api/stats");
    ASSERT_EQ(r.status, 429u) << r.body;
    EXPECT_EQ(r.json().at("error").at("code").as_string(), "rate_limited");
    auto ra = r.header(bhttp::field::retry_after);
    ASSERT_FALSE(ra.empty());
    EXPECT_GE(std::stoi(ra), 1);
    EXPECT_LE(std::stoi(ra), 2);
    EXPECT_EQ(get("/health").status, 200u);  // not limited
    EXPECT_TRUE(redis().exists("spool:ratelimit:ip:127.0.0.1"));
    EXPECT_GT(redis().cmd_int({"PTTL", "spool:ratelimit:ip:127.0.0.1"}), 0);
}

// ---------------------------------------------------------------- Redis outage

TEST_F(ServerTest, HealthIs503FastWhileRedisIsDownAndRecovers) {
    if (clustered()) GTEST_SKIP() << "stops the one redis-server (the cluster suites kill masters instead)";
    start();
    ASSERT_EQ(get("/health").status, 200u);
    redis().stop();
    ASSERT_TRUE(wait_until([&] { return !conn_->is_connected(); }, 5s));
    auto t0 = std::chrono::steady_clock::now();
    auto h = get("/health");
    auto elapsed = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(h.status, 503u) << h.body;
    EXPECT_EQ(h.json().at("status").as_string(), "unhealthy");
    EXPECT_EQ(h.json().at("redis").at("connected").as_bool(), false);
    EXPECT_LT(elapsed, 1s);
    auto api = get("/api/queues");
    EXPECT_EQ(api.status, 503u) << api.body;
    auto stats = get("/solve/async/stats");
    EXPECT_EQ(stats.status, 200u);
    EXPECT_EQ(stats.json().at("redis_connected").as_bool(), false);

    redis().start();
    EXPECT_TRUE(wait_until([&] { return get("/health").status == 200; }, 10s));
    EXPECT_EQ(post("/api/jobs", "{}").status, 201u);
}

TEST_F(ServerTest, PartitionedQueueIsOneQueueInEveryAnswer) {
    store::broker_options bo;
    bo.partitions = {{"pq", 3}};
    start(defaults(), bo);
    std::set<std::string> ids;
    for (int i = 0; i < 9; ++i) ids.insert(submit(R"({"queue":"pq"})"));
    auto one = get("/api/jobs/" + *ids.begin()).json();
    EXPECT_EQ(one.at("queue").as_string(), "pq");

    // Listed across partitions, newest first, every job once, paginated.
    std::set<std::string> seen;
    std::string last_created = "~";  // ISO 8601 times sort as text
    std::string cursor;
    for (int guard = 0; guard < 10; ++guard) {
        auto page = get("/api/jobs?queue=pq&limit=4" + (cursor.empty() ? "" : "&cursor=" + cursor));
        ASSERT_EQ(page.status, 200u) << page.body;
        auto v = page.json();
        for (const auto& j : v.at("jobs").as_array()) {
            EXPECT_EQ(j.at("queue").as_string(), "pq");
            EXPECT_TRUE(seen.insert(std::string{j.at("job_id").as_string()}).second);
            std::string created{j.at("created_at").as_string()};
            EXPECT_LE(created, last_created);
            last_created = created;
        }
        if (v.at("next_cursor").is_null()) break;
        cursor = std::string{v.at("next_cursor").as_string()};
    }
    EXPECT_EQ(seen, ids);

    // Queue figures, pause and metrics: the logical queue only.
    auto qs = get("/api/queues");
    ASSERT_EQ(qs.status, 200u);
    EXPECT_EQ(qs.body.find('#'), std::string::npos) << qs.body;
    auto arr = qs.json().at("queues").as_array();
    ASSERT_EQ(arr.size(), 1u) << qs.body;
    EXPECT_EQ(arr.at(0).at("name").as_string(), "pq");
    EXPECT_EQ(arr.at(0).at("depth").at("queued").as_int64(), 9);
    ASSERT_EQ(post("/api/queues/pq/pause", "").status, 200u);
    for (const auto& p : store::partition_queues("pq", 3))
        EXPECT_EQ(redis().cmd_str({"HGET", "spool:{q:" + p + "}:meta", "paused"}), "1") << p;
    EXPECT_TRUE(get("/api/queues").json().at("queues").at(0).at("paused").as_bool());
    ASSERT_EQ(post("/api/queues/pq/resume", "").status, 200u);
    auto metrics = get("/metrics").body;
    EXPECT_NE(metrics.find("queue=\"pq\""), std::string::npos) << metrics;
    EXPECT_EQ(metrics.find('#' + std::string{"1."}), std::string::npos) << metrics;
}

TEST_F(ServerTest, DependsOnMakesAWaitingJobAndBadParentsAre400NamingTheField) {
    start();
    auto parent = submit(R"({"queue":"dq"})");
    auto r = post("/api/jobs", R"({"queue":"dq","depends_on":[")" + parent + R"("],"on_parent_failure":"cancel"})");
    ASSERT_EQ(r.status, 201u) << r.body;
    EXPECT_EQ(r.json().at("status").as_string(), "waiting");
    std::string child{r.json().at("job_id").as_string()};
    auto c = get("/api/jobs/" + child).json();
    EXPECT_EQ(c.at("status").as_string(), "waiting");
    ASSERT_EQ(c.at("parents").as_array().size(), 1u);
    EXPECT_EQ(c.at("parents").at(0).as_string(), parent);
    auto p = get("/api/jobs/" + parent).json();
    ASSERT_EQ(p.at("children").as_array().size(), 1u);
    EXPECT_EQ(p.at("children").at(0).as_string(), child);
    auto waiting = get("/api/jobs?status=waiting").json();
    ASSERT_EQ(waiting.at("jobs").as_array().size(), 1u);
    EXPECT_EQ(waiting.at("jobs").at(0).at("job_id").as_string(), child);
    auto qs = get("/api/queues").json();
    EXPECT_EQ(qs.at("queues").at(0).at("depth").at("waiting").as_int64(), 1);
    // Cancelling the parent cancels the child (on_parent_failure: cancel).
    ASSERT_EQ(post("/api/jobs/" + parent + "/cancel", "").status, 200u);
    EXPECT_EQ(get("/api/jobs/" + child).json().at("status").as_string(), "cancelled");

    struct bad_case {
        std::string body, code, mentions;
    };
    for (const auto& b : std::vector<bad_case>{
             {R"({"depends_on":["00000000-0000-7000-8000-000000000000"]})", "unknown_dependency", "depends_on"},
             {R"({"depends_on":"x"})", "invalid_argument", "depends_on"},
             {R"({"depends_on":[1]})", "invalid_argument", "depends_on"},
             {R"({"depends_on":[")" + parent + R"("],"on_parent_failure":"maybe"})", "invalid_argument",
              "on_parent_failure"},
             {R"({"on_parent_failure":"run"})", "invalid_argument", "on_parent_failure"},
             {R"({"depends_on":[")" + parent + R"("],"delay_ms":1000})", "invalid_argument", "depends_on"},
         }) {
        auto e = post("/api/jobs", b.body);
        EXPECT_EQ(e.status, 400u) << b.body << " -> " << e.body;
        auto v = e.json();
        EXPECT_EQ(v.at("error").at("code").as_string(), b.code) << e.body;
        EXPECT_NE(std::string{v.at("error").at("message").as_string()}.find(b.mentions), std::string::npos) << e.body;
    }
}

TEST_F(ServerTest, FlowsAreOneRequestWithRefsAndCyclesAre400) {
    start();
    auto outside = submit(R"({"queue":"fq"})");
    auto r = post("/api/flows", R"({"jobs":[
        {"ref":"fetch","queue":"fq","payload":{"url":"x"}},
        {"ref":"left","queue":"fq","depends_on":["fetch"]},
        {"ref":"right","queue":"fq2","depends_on":["fetch"],"on_parent_failure":"cancel"},
        {"ref":"join","queue":"fq","depends_on":["left","right",")" + outside + R"("]}]})");
    ASSERT_EQ(r.status, 201u) << r.body;
    auto v = r.json();
    ASSERT_EQ(v.at("jobs").as_array().size(), 4u);
    std::map<std::string, std::string> id;
    for (const auto& j : v.at("jobs").as_array())
        id[std::string{j.at("ref").as_string()}] = std::string{j.at("job_id").as_string()};
    EXPECT_EQ(v.at("jobs").at(0).at("status").as_string(), "queued");
    EXPECT_EQ(get("/api/jobs/" + id["right"]).json().at("status").as_string(), "waiting");
    auto join = get("/api/jobs/" + id["join"]).json();
    EXPECT_EQ(join.at("parents").as_array().size(), 3u);
    auto fetch = get("/api/jobs/" + id["fetch"]).json();
    EXPECT_EQ(fetch.at("children").as_array().size(), 2u);

    struct bad_case {
        std::string body, mentions;
    };
    for (const auto& b : std::vector<bad_case>{
             {R"({"jobs":[{"ref":"a","depends_on":["b"]},{"ref":"b","depends_on":["a"]}]})", "cycle"},
             {R"({"jobs":[{"ref":"a","depends_on":["nope"]}]})", "jobs[0].depends_on"},
             {R"({"jobs":[{"ref":"a"},{"ref":"a"}]})", "used twice"},
             {R"({"jobs":[]})", "non-empty"},
             {R"({"jobs":[{"ref":"a","priority":"urgent"}]})", "jobs[0]"},
             {R"({"jobs":[{"ref":"a","unique_key":"k"}]})", "unique_key"},
         }) {
        auto e = post("/api/flows", b.body);
        EXPECT_EQ(e.status, 400u) << b.body << " -> " << e.body;
        EXPECT_NE(e.body.find(b.mentions), std::string::npos) << e.body;
    }
    auto unknown = post("/api/flows", R"({"jobs":[{"depends_on":["00000000-0000-7000-8000-000000000000"]}]})");
    EXPECT_EQ(unknown.status, 400u) << unknown.body;
    EXPECT_EQ(unknown.json().at("error").at("code").as_string(), "unknown_dependency");
}
