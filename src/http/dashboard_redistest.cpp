// src/http/dashboard_redistest.cpp
// The dashboard's routes against a real redis-server: the embedded files (/,
// /ui/..., ETags), the 4xx answers of every new route, the bulk actions
// (retry-dead, purge-completed: only the jobs in that state, only the caller's
// tenant), history buckets written once per bucket and shared by replicas, search.
#include "http/server_test_fixture.hpp"

namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;

std::string code_of(const server_testing::reply& r) {
    auto v = r.json();
    return v.is_object() && v.as_object().contains("error")
               ? std::string{v.at("error").at("code").as_string()}
               : "";
}

}  // namespace

using server_testing::ServerTest;

class DashboardTest : public ServerTest {
protected:
    // A job of `queue` that failed for good.
    std::string dead_job(const std::string& queue, const header_list& h = {}) {
        auto id = submit(R"({"queue":")" + queue + R"(","payload":{},"max_retries":0})", h);
        auto j = claim(queue);
        EXPECT_EQ(j.id, id);
        fail(j, "boom");
        return id;
    }
    std::string done_job(const std::string& queue, const header_list& h = {}) {
        auto id = submit(R"({"queue":")" + queue + R"(","payload":{"k":1}})", h);
        auto j = claim(queue);
        EXPECT_EQ(j.id, id);
        complete(j, R"({"ok":true})");
        return id;
    }
    std::string status(const std::string& id) {
        auto r = get("/api/jobs/" + id);
        return r.status == 200 ? std::string{r.json().at("status").as_string()} : "gone";
    }
};

TEST_F(DashboardTest, ServesTheAppWithEtagsAndIndexForUnknownUiPaths) {
    start();
    auto root = get("/");
    EXPECT_EQ(root.status, 200u);
    EXPECT_EQ(root.header(bhttp::field::content_type), "text/html; charset=utf-8");
    EXPECT_NE(root.body.find("<script type=\"module\" src=\"/ui/app.js\">"), std::string::npos);
    auto etag = root.header(bhttp::field::etag);
    ASSERT_FALSE(etag.empty());
    EXPECT_NE(std::string{root.headers["Content-Security-Policy"]}.find("default-src 'self'"),
              std::string::npos);
    auto again = get("/", {{"If-None-Match", etag}});
    EXPECT_EQ(again.status, 304u);
    EXPECT_TRUE(again.body.empty());

    auto js = get("/ui/app.js");
    EXPECT_EQ(js.status, 200u);
    EXPECT_EQ(js.header(bhttp::field::content_type), "text/javascript; charset=utf-8");
    EXPECT_NE(js.header(bhttp::field::etag), etag);
    EXPECT_EQ(get("/ui/style.css").header(bhttp::field::content_type), "text/css; charset=utf-8");
    EXPECT_EQ(get("/ui/favicon.svg").header(bhttp::field::content_type), "image/svg+xml");
    // Unknown paths under /ui are the app (its own router shows "not found").
    for (const char* p : {"/ui", "/ui/", "/ui/queues", "/ui/jobs/x/y", "/ui/a/b/c/d"}) {
        auto r = get(p);
        EXPECT_EQ(r.status, 200u) << p;
        EXPECT_EQ(r.body, root.body) << p;
    }
    // The API is untouched: unknown /api routes are still 404 JSON.
    EXPECT_EQ(get("/api/nope").status, 404u);
    EXPECT_EQ(get("/nope").status, 404u);
}

TEST_F(DashboardTest, NoApiKeyIsNeededForTheAppButTheApiStillWantsOne) {
    auto o = defaults();
    o.api_keys = {{"key-a", "tenant-a"}, {"key-admin", "*"}};
    start(o);
    EXPECT_EQ(get("/").status, 200u);
    EXPECT_EQ(get("/ui/app.js").status, 200u);
    auto anon = get("/api/session").json();
    EXPECT_EQ(anon.at("auth"), json::value(true));
    EXPECT_EQ(anon.at("authenticated"), json::value(false));
    auto wrong = get("/api/session", {{"Authorization", "Bearer nope"}}).json();
    EXPECT_EQ(wrong.at("authenticated"), json::value(false));
    auto a = get("/api/session", {{"Authorization", "Bearer key-a"}}).json();
    EXPECT_EQ(a.at("authenticated"), json::value(true));
    EXPECT_EQ(a.at("tenant"), json::value("tenant-a"));
    EXPECT_EQ(a.at("admin"), json::value(false));
    auto admin = get("/api/session", {{"Authorization", "Bearer key-admin"}}).json();
    EXPECT_EQ(admin.at("admin"), json::value(true));
    EXPECT_EQ(get("/api/jobs/search?q=x").status, 401u);
    EXPECT_EQ(post("/api/queues/q1/retry-dead", "").status, 401u);
}

TEST_F(DashboardTest, BadInputGets4xxWithClearMessages) {
    start();
    submit();  // makes queue q1 known
    struct bad {
        bhttp::verb method;
        std::string target;
        unsigned status;
        std::string code;
        std::string says;
    };
    std::vector<bad> cases{
        {bhttp::verb::get, "/api/queues/q1/history?minutes=0", 400, "invalid_argument",
         "minutes must be an integer from 1 to 1440"},
        {bhttp::verb::get, "/api/queues/q1/history?minutes=abc", 400, "invalid_argument", "minutes"},
        {bhttp::verb::get, "/api/queues/q1/history?sample=5000", 400, "invalid_argument", "sample"},
        {bhttp::verb::get, "/api/queues/bad%20name/history", 400, "invalid_argument", "queue must be"},
        {bhttp::verb::get, "/api/queues/never-used/history", 404, "queue_not_found",
         "queue never-used not found"},
        {bhttp::verb::get, "/api/jobs/search", 400, "invalid_argument", "q (a job id"},
        {bhttp::verb::get, "/api/jobs/search?q=", 400, "invalid_argument", "q (a job id"},
        {bhttp::verb::get, "/api/jobs/search?q=x&limit=0", 400, "invalid_argument", "limit"},
        {bhttp::verb::get, "/api/jobs/search?q=x&queue=a%20b", 400, "invalid_argument", "queue must be"},
        {bhttp::verb::get, "/api/jobs/search?q=" + std::string(513, 'x'), 400, "invalid_argument", "512"},
        {bhttp::verb::get, "/api/jobs/01900000-0000-7000-8000-000000000000/payload", 404, "job_not_found",
         "not found"},
        {bhttp::verb::get, "/api/jobs/garbage/payload", 404, "job_not_found", "not found"},
        {bhttp::verb::post, "/api/queues/bad%20name/retry-dead", 400, "invalid_argument", "queue must be"},
        {bhttp::verb::post, "/api/queues/never-used/retry-dead", 404, "queue_not_found", "not found"},
        {bhttp::verb::post, "/api/queues/never-used/purge-completed", 404, "queue_not_found", "not found"},
        {bhttp::verb::get, "/api/queues/q1/retry-dead", 405, "method_not_allowed", "POST"},
    };
    for (const auto& c : cases) {
        auto r = request(c.method, c.target);
        EXPECT_EQ(r.status, c.status) << c.target << ": " << r.body;
        EXPECT_EQ(code_of(r), c.code) << c.target;
        EXPECT_NE(r.body.find(c.says), std::string::npos) << c.target << ": " << r.body;
    }
}

TEST_F(DashboardTest, RetryDeadRequeuesOnlyFailedJobs) {
    start();
    auto d1 = dead_job("q1");
    auto d2 = dead_job("q1");
    auto done = done_job("q1");
    auto waiting = submit(R"({"queue":"q1","payload":{}})");
    auto other = dead_job("q2");
    auto r = post("/api/queues/q1/retry-dead", "");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.json().at("retried"), json::value(2));
    EXPECT_EQ(r.json().at("queue"), json::value("q1"));
    EXPECT_EQ(status(d1), "queued");
    EXPECT_EQ(status(d2), "queued");
    EXPECT_EQ(status(done), "completed");
    EXPECT_EQ(status(waiting), "queued");
    EXPECT_EQ(status(other), "failed");  // another queue: untouched
    EXPECT_EQ(redis().zcard("spool:{q:q1}:failed"), 0);
    EXPECT_EQ(redis().zcard("spool:{q:q1}:queued"), 3);
    // Attempts start again, and the history says it was a manual retry.
    auto rec = get("/api/jobs/" + d1).json();
    EXPECT_EQ(rec.at("attempts"), json::value(0));
    EXPECT_TRUE(rec.at("error_message").is_null());
    // Nothing dead left: 0, and again the same.
    EXPECT_EQ(post("/api/queues/q1/retry-dead", "").json().at("retried"), json::value(0));
    // The requeued jobs run again.
    auto j = claim("q1");
    EXPECT_FALSE(j.id.empty());
}

TEST_F(DashboardTest, PurgeCompletedDeletesOnlyCompletedJobs) {
    start();
    auto a = done_job("q1");
    auto b = done_job("q1");
    auto dead = dead_job("q1");
    auto waiting = submit(R"({"queue":"q1","payload":{}})");
    auto r = post("/api/queues/q1/purge-completed", "");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.json().at("purged"), json::value(2));
    EXPECT_EQ(status(a), "gone");
    EXPECT_EQ(status(b), "gone");
    EXPECT_EQ(status(dead), "failed");
    EXPECT_EQ(status(waiting), "queued");
    // Out of the `done` index (count and entries); the `jobs` stream's entries of the
    // two lead nowhere until they age out.
    EXPECT_EQ(redis().hget("spool:{q:q1}:meta", "done"), "0");
    EXPECT_EQ(redis().cmd_int({"XLEN", "spool:{q:q1}:done"}), 0);
    EXPECT_EQ(redis().cmd_int({"XLEN", "spool:{q:q1}:jobs"}), 4);
    EXPECT_FALSE(redis().exists("spool:{q:q1}:job:" + a));
}

TEST_F(DashboardTest, BulkActionsOfATenantTouchOnlyItsJobs) {
    auto o = defaults();
    o.api_keys = {{"key-a", "tenant-a"}, {"key-b", "tenant-b"}, {"key-admin", "*"}};
    start(o);
    header_list a{{"Authorization", "Bearer key-a"}};
    header_list b{{"Authorization", "Bearer key-b"}};
    auto dead_a = dead_job("q1", a);
    auto dead_b = dead_job("q1", b);
    auto done_a = done_job("q1", a);
    auto done_b = done_job("q1", b);
    EXPECT_EQ(post("/api/queues/q1/retry-dead", "", a).json().at("retried"), json::value(1));
    EXPECT_EQ(post("/api/queues/q1/purge-completed", "", a).json().at("purged"), json::value(1));
    header_list admin{{"Authorization", "Bearer key-admin"}};
    auto st = [&](const std::string& id) {
        auto r = get("/api/jobs/" + id, admin);
        return r.status == 200 ? std::string{r.json().at("status").as_string()} : "gone";
    };
    EXPECT_EQ(st(dead_a), "queued");
    EXPECT_EQ(st(dead_b), "failed");
    EXPECT_EQ(st(done_a), "gone");
    EXPECT_EQ(st(done_b), "completed");
    // A tenant does not see queue-wide history; its payloads are its own.
    EXPECT_EQ(get("/api/queues/q1/history", a).status, 403u);
    EXPECT_EQ(get("/api/queues/q1/history", admin).status, 200u);
    EXPECT_EQ(get("/api/jobs/" + dead_b + "/payload", a).status, 404u);
    EXPECT_EQ(get("/api/jobs/" + dead_a + "/payload", a).status, 200u);
    // Search finds only the caller's jobs.
    auto found = get("/api/jobs/search?q=" + dead_b, a).json();
    EXPECT_TRUE(found.at("jobs").as_array().empty());
    found = get("/api/jobs/search?q=" + dead_b, b).json();
    ASSERT_EQ(found.at("jobs").as_array().size(), 1u);
}

TEST_F(DashboardTest, SearchFindsIdsIdPrefixesAndUniqueKeys) {
    start();
    auto x = submit(R"({"queue":"q1","payload":{},"unique_key":"order-42"})");
    auto y = submit(R"({"queue":"q1","payload":{},"unique_key":"order-7"})");
    auto z = submit(R"({"queue":"q2","payload":{},"unique_key":"order-42b"})");
    auto ids = [](const json::value& v) {
        std::vector<std::string> out;
        for (const auto& j : v.at("jobs").as_array()) out.emplace_back(j.at("job_id").as_string());
        return out;
    };
    EXPECT_EQ(ids(get("/api/jobs/search?q=" + x).json()), std::vector<std::string>{x});
    EXPECT_EQ(ids(get("/api/jobs/search?q=order-42&queue=q1").json()), std::vector<std::string>{x});
    // Across queues, unique keys containing the text; newest first.
    EXPECT_EQ(ids(get("/api/jobs/search?q=order-42").json()), (std::vector<std::string>{z, x}));
    EXPECT_EQ(ids(get("/api/jobs/search?q=order-").json()), (std::vector<std::string>{z, y, x}));
    EXPECT_TRUE(ids(get("/api/jobs/search?q=nothing-like-it").json()).empty());
    // The job's queue wrong: not found there.
    EXPECT_TRUE(ids(get("/api/jobs/search?q=" + z + "&queue=q1").json()).empty());
    // A payload comes back as stored.
    auto p = get("/api/jobs/" + x + "/payload");
    EXPECT_EQ(p.status, 200u);
    EXPECT_EQ(p.body, "{}");
}

TEST_F(DashboardTest, HistoryBucketsAreWrittenOnceAndGiveRatesAndPercentiles) {
    auto o = defaults();
    o.history_bucket = 200ms;
    start(o);
    auto first = done_job("q1");
    // Wait for a snapshot that counts the first job.
    ASSERT_TRUE(wait_until([&] { return redis().cmd_int({"HLEN", "spool:{q:q1}:history"}) >= 1; }, 5s));
    done_job("q1");
    done_job("q1");
    dead_job("q1");
    auto h = get("/api/queues/q1/history?minutes=5").json();
    EXPECT_EQ(h.at("queue"), json::value("q1"));
    EXPECT_EQ(h.at("bucket_seconds"), json::value(0.2));
    // Everything since the first snapshot: at least the two completed after it and the failure.
    EXPECT_GE(h.at("totals").at("completed").as_int64(), 2);
    EXPECT_LE(h.at("totals").at("completed").as_int64(), 3);
    EXPECT_EQ(h.at("totals").at("failed"), json::value(1));
    std::int64_t sum = 0;
    for (const auto& b : h.at("buckets").as_array()) sum += b.at("completed").as_int64();
    EXPECT_EQ(sum, h.at("totals").at("completed").as_int64());
    EXPECT_EQ(h.at("latency").at("sample"), json::value(3));
    EXPECT_TRUE(h.at("latency").at("run_ms").at("p50").is_int64());
    EXPECT_TRUE(h.at("latency").at("wait_ms").at("p99").is_int64());
    // A second replica writing the same bucket changes nothing (HSETNX): all agree.
    auto fields = redis().cmd({"HGETALL", "spool:{q:q1}:history"});
    ASSERT_GE(fields.size(), 2u);
    auto bucket = std::stoll(fields[0]);
    auto before = fields[1];
    ASSERT_TRUE(on_io(broker_->record_history(bucket, 0)).has_value());
    EXPECT_EQ(redis().hget("spool:{q:q1}:history", fields[0]), before);
    // Old buckets are dropped; the key expires once nobody writes it.
    ASSERT_TRUE(on_io(broker_->record_history(bucket + 3'600'000, bucket + 1)).has_value());
    EXPECT_EQ(redis().hget("spool:{q:q1}:history", fields[0]), "");
    EXPECT_GT(redis().cmd_int({"PTTL", "spool:{q:q1}:history"}), 0);
    (void)first;
}

TEST_F(DashboardTest, HistoryAndPercentilesSumAQueuesPartitions) {
    // A logical queue `p` over two partitions: `p` itself (partition 0) and p#1.y
    // (store/partitions.hpp): the dashboard sees one queue.
    auto o = defaults();
    o.history_bucket = 0ms;  // no recorder: only the snapshots written here
    start(o);
    redis().cmd({"SADD", "spool:queues", "p", "p#1.y", "other"});
    redis().cmd({"HSET", "spool:{q:p}:meta", "submitted", "30", "completed", "25", "failed", "2",
                 "retried", "1"});
    redis().cmd({"HSET", "spool:{q:p#1.y}:meta", "submitted", "12", "completed", "10", "failed", "1",
                 "retried", "0"});
    redis().cmd({"HSET", "spool:{q:other}:meta", "submitted", "99", "completed", "99"});
    const long long now = now_millis();
    const auto t0 = std::to_string(now - 120'000), t1 = std::to_string(now - 60'000);
    redis().cmd({"HSET", "spool:{q:p}:history", t0, "10 8 0 0", t1, "20 15 1 1"});
    redis().cmd({"HSET", "spool:{q:p#1.y}:history", t0, "2 1 0 0", t1, "6 5 1 0"});
    auto h = get("/api/queues/p/history").json();
    ASSERT_EQ(h.at("buckets").as_array().size(), 2u) << h;
    const auto& b0 = h.at("buckets").at(0);
    EXPECT_EQ(b0.at("completed"), json::value(11));  // (15+5) - (8+1)
    EXPECT_EQ(b0.at("failed"), json::value(2));
    const auto& b1 = h.at("buckets").at(1);
    EXPECT_EQ(b1.at("completed"), json::value(15));  // (25+10) - (15+5)
    EXPECT_EQ(h.at("totals").at("completed"), json::value(26));
    EXPECT_EQ(h.at("totals").at("submitted"), json::value(30));
    EXPECT_EQ(h.at("totals").at("retried"), json::value(1));
    // Percentiles over the newest completed jobs of every partition.
    int n = 0;
    for (auto [part, run] :
         std::vector<std::pair<std::string, long long>>{{"p", 100}, {"p", 200}, {"p#1.y", 300}}) {
        auto id = "j" + std::to_string(++n);
        auto t = now - 10'000 + n;
        redis().cmd({"ZADD", "spool:{q:" + part + "}:completed", std::to_string(t), id});
        redis().cmd({"HSET", "spool:{q:" + part + "}:job:" + id, "status", "completed", "created_at",
                     std::to_string(t - run - 7), "started_at", std::to_string(t - run), "completed_at",
                     std::to_string(t)});
    }
    auto l = get("/api/queues/p/history").json().at("latency");
    EXPECT_EQ(l.at("sample"), json::value(3));
    EXPECT_EQ(l.at("run_ms").at("p50"), json::value(200));
    EXPECT_EQ(l.at("run_ms").at("max"), json::value(300));
    EXPECT_EQ(l.at("wait_ms").at("p99"), json::value(7));
    // A partition's own name is not a queue a client may name.
    EXPECT_EQ(get("/api/queues/p%231.y/history").status, 400u);
    EXPECT_EQ(get("/api/queues/nope/history").status, 404u);
}
