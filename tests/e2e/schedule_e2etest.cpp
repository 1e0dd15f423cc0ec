// tests/e2e/schedule_e2etest.cpp
// Black-box tests of recurring schedules: real `spool serve` replicas against a
// real redis-server, driven over HTTP; the jobs are checked on the Redis keys
// (docs/keys.md). The contract: docs/http-api.md and docs/operations.md.
#include "app/http_client.hpp"
#include "testing/redis_server.hpp"
#include "testing/spool_process.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
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

namespace json = boost::json;
using verb = boost::beast::http::verb;


long long wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// wait_until, evaluating `pred` at most every 20 ms (each is an HTTP or Redis call).
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    return wait_until(pred, timeout, 20ms);
}


struct reply {
    unsigned status = 0;
    std::string body;
    json::value json() const {
        boost::system::error_code ec;
        auto v = json::parse(body, ec);
        return ec ? json::value{} : v;
    }
};

std::ostream& operator<<(std::ostream& os, const reply& r) {
    return os << "HTTP " << r.status << " " << r.body.substr(0, 400);
}

class ScheduleE2E : public spool::testing::RedisTest {
protected:
    void SetUp() override {
        RedisTest::SetUp();
        dir_ = redis().dir() + "/schedule-e2e";
        std::filesystem::create_directories(dir_);
        write_config("");
    }
    void TearDown() override {
        replicas_.clear();
        if (HasFailure())
            for (const auto& log : logs_) dump(log);
    }
    void dump(const std::string& path) {
        std::ifstream in{path};
        std::stringstream ss;
        ss << in.rdbuf();
        auto text = ss.str();
        if (text.size() > 3000) text = "..." + text.substr(text.size() - 3000);
        std::cerr << "---- tail of " << path << " ----\n" << text << "\n";
    }
    void write_config(const std::string& extra) {
        std::ofstream cfg{dir_ + "/spool.yaml"};
        cfg << "queues:\n"
               "  default:\n"
               "    handler: echo\n"
               "worker:\n"
               "  grace_seconds: 1\n"
            << extra;
    }

    // Starts one more `spool serve` replica and waits until it answers /health.
    std::size_t start_replica(int workers = 0, const spool::testing::spool_process::env_list& env = {}) {
        auto port = spool::testing::free_port();
        auto log = dir_ + "/serve-" + std::to_string(logs_.size() + 1) + ".log";
        logs_.push_back(log);
        std::vector<std::string> args{"serve",
                                      "--redis",
                                      redis().url(),
                                      "--config",
                                      dir_ + "/spool.yaml",
                                      "--port",
                                      std::to_string(port),
                                      "--workers",
                                      std::to_string(workers)};
        replicas_.push_back(std::make_unique<process>(args, log, env));
        ports_.push_back(port);
        auto& p = *replicas_.back();
        bool up = eventually(
            [&] { return call(ports_.size() - 1, verb::get, "/health").status == 200 || !p.alive(); }, 20s);
        EXPECT_TRUE(up && p.alive()) << "spool serve did not become healthy";
        return replicas_.size() - 1;
    }

    reply call(std::size_t replica, verb method, const std::string& target, const std::string& body = {},
               const std::string& key = {}) {
        auto url =
            spool::cli::parse_server_url("http://127.0.0.1:" + std::to_string(ports_[replica])).value();
        spool::cli::http_client c{url, key, 5s};
        auto r = c.request(method, target, body);
        if (!r) return {};
        return {r->status, r->body};
    }
    reply post(const std::string& target, const std::string& body = {}, std::size_t replica = 0) {
        return call(replica, verb::post, target, body);
    }
    json::object schedule(const std::string& name, std::size_t replica = 0) {
        auto r = call(replica, verb::get, "/api/schedules/" + name);
        EXPECT_EQ(r.status, 200u) << r;
        auto v = r.json();
        return v.is_object() ? v.as_object() : json::object{};
    }

    // Every job of `queue`, as (schedule_tick, created_at, status), oldest tick first.
    struct job_row {
        long long tick = 0, created = 0;
        std::string id, status;
    };
    std::vector<job_row> jobs(const std::string& queue) {
        const std::string prefix = "spool:{q:" + queue + "}:job:";
        std::vector<job_row> out;
        for (const auto& k : redis().cmd({"KEYS", prefix + "*"})) {
            const std::string id = k.substr(prefix.size());
            auto f = redis().cmd(
                {"HMGET", "spool:{q:" + queue + "}:job:" + id, "schedule_tick", "created_at", "status"});
            if (f.size() < 3 || f[1].empty()) continue;
            out.push_back({std::atoll(f[0].c_str()), std::atoll(f[1].c_str()), id, f[2]});
        }
        std::sort(out.begin(), out.end(), [](const job_row& a, const job_row& b) { return a.tick < b.tick; });
        return out;
    }
    long long count(const std::string& queue) { return static_cast<long long>(jobs(queue).size()); }

    std::string dir_;
    std::vector<std::string> logs_;
    std::vector<std::uint16_t> ports_;
    std::vector<std::unique_ptr<process>> replicas_;
};

long long percentile(std::vector<long long> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

// The issue's test: a 1-second schedule, three replicas, ~30 s, one of them
// killed with SIGKILL on the way: exactly one job per tick, on time.
TEST_F(ScheduleE2E, ThreeReplicasMakeExactlyOneJobPerTickEvenWhenOneIsKilled) {
    for (int i = 0; i < 3; ++i) start_replica();
    auto created = post("/api/schedules", R"({"name":"every-second","cron":"* * * * * *","queue":"ticks"})");
    ASSERT_EQ(created.status, 201u) << created;
    const long long start = wall_ms();
    // Kill replica 1 (the schedule was created on replica 0) about a third of the way in.
    ASSERT_TRUE(eventually([&] { return wall_ms() - start >= 10'000; }, 15s));
    replicas_[1]->kill9();
    ASSERT_TRUE(eventually([&] { return wall_ms() - start >= 30'000; }, 25s));
    // Stop the ticks, then let an in-flight one land.
    ASSERT_EQ(call(2, verb::delete_, "/api/schedules/every-second").status, 200u);
    const long long stopped = wall_ms();
    ASSERT_TRUE(eventually([&] { return wall_ms() - stopped >= 1'200; }, 5s));
    auto all = jobs("ticks");
    ASSERT_GE(all.size(), 27u) << "ticks over ~30 s";
    std::vector<long long> late;
    std::map<long long, int> per_tick;
    for (const auto& j : all) {
        ++per_tick[j.tick];
        late.push_back(j.created - j.tick);
        EXPECT_EQ(j.tick % 1000, 0) << "ticks are whole seconds";
    }
    for (const auto& [tick, n] : per_tick) EXPECT_EQ(n, 1) << "tick " << tick << " made " << n << " jobs";
    // No tick was missed between the first and the last, the kill included.
    EXPECT_EQ(static_cast<long long>(per_tick.size()), (all.back().tick - all.front().tick) / 1000 + 1);
    const auto p50 = percentile(late, 0.5), p99 = percentile(late, 0.99), worst = percentile(late, 1.0);
    std::cout << "jobs " << all.size() << ", lateness after the tick: p50 " << p50 << " ms, p99 " << p99
              << " ms, max " << worst << " ms\n";
    EXPECT_GE(*std::min_element(late.begin(), late.end()), 0);
    EXPECT_LE(p50, 50);
    EXPECT_LT(worst, 1000);
}

TEST_F(ScheduleE2E, MissedTicksFollowCatchUpAfterEveryReplicaWasDown) {
    start_replica();
    ASSERT_EQ(post("/api/schedules", R"({"name":"none","cron":"* * * * * *","queue":"cn"})").status, 201u);
    ASSERT_EQ(
        post("/api/schedules", R"({"name":"all","cron":"@every 1s","queue":"ca","catch_up":"all"})").status,
        201u);
    ASSERT_TRUE(eventually([&] { return count("cn") >= 2 && count("ca") >= 2; }, 10s));
    replicas_[0]->kill9();
    const long long down = wall_ms();
    const auto before_none = jobs("cn"), before_all = jobs("ca");
    // Every replica is down for a while: at least 4 ticks go by.
    ASSERT_TRUE(eventually([&] { return wall_ms() - down >= 4'500; }, 10s));
    const long long restart = wall_ms();
    start_replica();
    const long long up = wall_ms();
    ASSERT_TRUE(eventually(
        [&] {
            auto a = jobs("ca");
            auto n = jobs("cn");
            return !a.empty() && !n.empty() && a.back().tick >= up && n.back().tick >= up;
        },
        10s));
    // all: one job per missed tick, each tick once, no gap.
    auto a = jobs("ca");
    for (std::size_t i = 1; i < a.size(); ++i) EXPECT_EQ(a[i].tick - a[i - 1].tick, 1000) << "at job " << i;
    EXPECT_GE(a.size(), before_all.size() + 4);
    // none: exactly one job for the whole gap, made at once after the restart.
    auto n = jobs("cn");
    int in_gap = 0;
    for (const auto& j : n)
        if (j.tick > before_none.back().tick && j.tick < restart) {
            ++in_gap;
            EXPECT_GE(j.created, restart);
        }
    EXPECT_EQ(in_gap, 1);
    std::set<long long> ticks;
    for (const auto& j : n) EXPECT_TRUE(ticks.insert(j.tick).second) << "tick " << j.tick << " twice";
}

TEST_F(ScheduleE2E, OverlapSkipPauseResumeTriggerAndTheLastRun) {
    start_replica(1);  // one worker process: `default` jobs complete (echo)
    // Nothing serves queue `held`: its first job stays queued, so overlap skip makes no more.
    ASSERT_EQ(
        post("/api/schedules", R"({"name":"held","cron":"* * * * * *","queue":"held","overlap":"skip"})")
            .status,
        201u);
    ASSERT_TRUE(eventually([&] { return schedule("held")["skipped"].to_number<long long>() >= 2; }, 10s));
    auto held = jobs("held");
    ASSERT_EQ(held.size(), 1u);
    auto last = schedule("held")["last_run"].as_object();
    EXPECT_EQ(last["outcome"], "skipped");
    EXPECT_EQ(last["job_id"], held[0].id.c_str());
    EXPECT_EQ(last["status"], "queued");
    // Once that job is gone, the next tick makes one again.
    ASSERT_EQ(call(0, verb::delete_, "/api/jobs/" + held[0].id).status, 200u);
    ASSERT_TRUE(eventually([&] { return count("held") == 1 && jobs("held")[0].id != held[0].id; }, 5s));

    // A served queue: the last run's outcome shows the job completed.
    ASSERT_EQ(post("/api/schedules", R"({"name":"echo","cron":"* * * * * *","payload":{"hello":1}})").status,
              201u);
    ASSERT_TRUE(eventually(
        [&] {
            auto s = schedule("echo");
            return s["last_run"].is_object() && s["last_run"].as_object()["status"] == "completed";
        },
        15s));
    auto s = schedule("echo");
    EXPECT_EQ(s["queue"], "default");
    EXPECT_EQ(s["next_runs"].as_array().size(), 5u);

    // Pause: no tick makes a job; trigger still does; resume starts again.
    auto paused = post("/api/schedules/echo/pause");
    ASSERT_EQ(paused.status, 200u) << paused;
    EXPECT_TRUE(paused.json().as_object().at("paused").as_bool());
    EXPECT_TRUE(paused.json().as_object().at("next_run_at").is_null());
    const auto at_pause = count("default");
    const long long t0 = wall_ms();
    ASSERT_TRUE(eventually([&] { return wall_ms() - t0 >= 2'500; }, 5s));
    EXPECT_LE(count("default"), at_pause + 1);  // at most a tick already in flight
    const auto still = count("default");
    auto trig = post("/api/schedules/echo/trigger");
    ASSERT_EQ(trig.status, 201u) << trig;
    auto trig_id = std::string{trig.json().as_object().at("job_id").as_string()};
    EXPECT_EQ(count("default"), still + 1);
    EXPECT_EQ(schedule("echo")["last_run"].as_object()["outcome"], "triggered");
    EXPECT_EQ(schedule("echo")["last_run"].as_object()["job_id"], trig_id.c_str());
    ASSERT_EQ(post("/api/schedules/echo/resume").status, 200u);
    ASSERT_TRUE(eventually([&] { return count("default") >= still + 2; }, 5s));

    // The CLI speaks the same API.
    auto server = "http://127.0.0.1:" + std::to_string(ports_[0]);
    {
        process cli{{"schedule", "add", "cli-made", "@every 1h", R"({"from":"cli"})", "-q", "cliq", "--tz",
                     "Europe/Berlin", "--overlap", "skip", "--server", server},
                    dir_ + "/cli-add.log"};
        EXPECT_EQ(cli.wait_exit(10s), 0);
    }
    EXPECT_EQ(schedule("cli-made")["tz"], "Europe/Berlin");
    {
        process cli{{"schedule", "trigger", "cli-made", "--server", server}, dir_ + "/cli-trigger.log"};
        EXPECT_EQ(cli.wait_exit(10s), 0);
    }
    EXPECT_EQ(count("cliq"), 1);
    {
        process cli{{"schedule", "rm", "cli-made", "--server", server}, dir_ + "/cli-rm.log"};
        EXPECT_EQ(cli.wait_exit(10s), 0);
    }
    EXPECT_EQ(call(0, verb::get, "/api/schedules/cli-made").status, 404u);
}

TEST_F(ScheduleE2E, BadInputIsA400NamingTheFieldAndUnknownSchedulesA404) {
    write_config(
        "schedules:\n"
        "  from-config:\n"
        "    cron: \"0 3 * * *\"\n"
        "    tz: America/New_York\n"
        "    queue: nightly\n"
        "    payload: {report: daily, n: 3}\n");
    start_replica();
    auto cfg = schedule("from-config");
    EXPECT_EQ(cfg["tz"], "America/New_York");
    EXPECT_EQ(cfg["payload"], json::parse(R"({"report":"daily","n":3})"));
    EXPECT_FALSE(cfg["next_run_at"].is_null());

    struct bad_case {
        std::string body, field;
    };
    const std::vector<bad_case> cases = {
        {R"({"name":"x","cron":"61 * * * *"})", "cron"},
        {R"({"name":"x","cron":"@every 0s"})", "cron"},
        {R"({"name":"x","cron":7})", "cron"},
        {R"({"name":"x"})", "cron"},
        {R"({"name":"x","cron":"* * * * *","tz":"Atlantis/Capital"})", "tz"},
        {R"({"name":"x","cron":"* * * * *","queue":"has space"})", "queue"},
        {R"({"name":"x","cron":"* * * * *","catch_up":"some"})", "catch_up"},
        {R"({"name":"x","cron":"* * * * *","overlap":"maybe"})", "overlap"},
        {R"({"name":"x","cron":"* * * * *","priority":"x"})", "priority"},
        {R"({"name":"x","cron":"* * * * *","max_retries":"3"})", "max_retries"},
        {R"({"name":"x","cron":"* * * * *","paused":1})", "paused"},
        {R"({"name":"bad/name","cron":"* * * * *"})", "name"},
        {R"({"cron":"* * * * *"})", "name"},
    };
    for (const auto& c : cases) {
        auto r = post("/api/schedules", c.body);
        EXPECT_EQ(r.status, 400u) << c.body << " -> " << r;
        auto msg = r.json().is_object() ? json::serialize(r.json().as_object()["error"]) : "";
        EXPECT_NE(msg.find("\"message\":\"" + c.field + ":"), std::string::npos) << c.body << " -> " << r;
    }
    EXPECT_EQ(post("/api/schedules", "{not json").status, 400u);
    EXPECT_EQ(call(0, verb::get, "/api/schedules").json().as_object()["schedules"].as_array().size(), 1u);

    for (auto [method, path] :
         std::vector<std::pair<verb, std::string>>{{verb::get, "/api/schedules/ghost"},
                                                   {verb::delete_, "/api/schedules/ghost"},
                                                   {verb::post, "/api/schedules/ghost/pause"},
                                                   {verb::post, "/api/schedules/ghost/resume"},
                                                   {verb::post, "/api/schedules/ghost/trigger"}}) {
        auto r = call(0, method, path);
        EXPECT_EQ(r.status, 404u) << path << " -> " << r;
        EXPECT_NE(r.body.find("schedule_not_found"), std::string::npos) << r;
    }

    // A bad schedule in the config file stops serve at start, naming the field.
    write_config(
        "schedules:\n"
        "  - name: broken\n"
        "    cron: \"* * * * *\"\n"
        "    overlap: sometimes\n");
    auto log = dir_ + "/bad-config.log";
    process bad{{"serve", "--redis", redis().url(), "--config", dir_ + "/spool.yaml", "--port", "0",
                 "--workers", "0"},
                log};
    EXPECT_EQ(bad.wait_exit(10s), 2);
    std::ifstream in{log};
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_NE(text.str().find("schedules[0].overlap"), std::string::npos) << text.str();
}

TEST_F(ScheduleE2E, WithApiKeysATenantManagesOnlyItsOwnSchedules) {
    start_replica(0, {{"SPOOL_API_KEYS", "ka:alice,kb:bob,root:*"}});
    auto as = [&](const std::string& key, verb m, const std::string& path, const std::string& body = {}) {
        return call(0, m, path, body, key);
    };
    EXPECT_EQ(as("", verb::get, "/api/schedules").status, 401u);
    auto made =
        as("ka", verb::post, "/api/schedules", R"({"name":"alice-job","cron":"@every 1h","queue":"aq"})");
    ASSERT_EQ(made.status, 201u) << made;
    EXPECT_EQ(made.json().as_object().at("tenant"), "alice");
    EXPECT_EQ(as("kb", verb::get, "/api/schedules/alice-job").status, 404u);
    EXPECT_EQ(as("kb", verb::post, "/api/schedules/alice-job/trigger").status, 404u);
    EXPECT_EQ(as("kb", verb::get, "/api/schedules").json().as_object()["schedules"].as_array().size(), 0u);
    EXPECT_EQ(as("kb", verb::post, "/api/schedules", R"({"name":"alice-job","cron":"@every 1h"})").status,
              409u);
    EXPECT_EQ(as("root", verb::get, "/api/schedules").json().as_object()["schedules"].as_array().size(), 1u);
    auto trig = as("ka", verb::post, "/api/schedules/alice-job/trigger");
    ASSERT_EQ(trig.status, 201u) << trig;
    auto id = std::string{trig.json().as_object().at("job_id").as_string()};
    // The job belongs to alice: she sees it, bob does not.
    EXPECT_EQ(as("ka", verb::get, "/api/jobs/" + id).status, 200u);
    EXPECT_EQ(as("kb", verb::get, "/api/jobs/" + id).status, 404u);
}
