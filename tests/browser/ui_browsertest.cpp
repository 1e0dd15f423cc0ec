// tests/browser/ui_browsertest.cpp
// The dashboard in a real browser: a headless Chromium (testing/chromium.hpp)
// against a real `spool serve` with its worker processes and a real redis-server,
// all on 127.0.0.1. Every check compares what a page shows with what the API
// answers, and waits for conditions with deadlines (no fixed sleeps). Each test
// ends by asserting the page logged no console errors. Screenshots of every page
// go to <build>/screenshots/.
#include "app/http_client.hpp"
#include "app/sse_parser.hpp"
#include "testing/chromium.hpp"
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
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>


using namespace std::chrono_literals;
namespace json = boost::json;
using spool::testing::browser_page;
using spool::testing::wait_until;
using verb = boost::beast::http::verb;
using env_list = std::vector<std::pair<std::string, std::string>>;

namespace {

using process = spool::testing::spool_process;
using spool::testing::spool_binary;
using spool::cli::url_encode;

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

std::string screenshot_dir() { return env_or("SPOOL_BUILD_DIR", ".") + "/screenshots"; }


json::value parse(const std::string& text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec) ADD_FAILURE() << "not JSON: " << text.substr(0, 300);
    return ec ? json::value{} : v;
}

std::string str(const json::value& v, std::string_view key) {
    if (!v.is_object()) return {};
    auto* f = v.get_object().if_contains(key);
    return f && f->is_string() ? std::string{f->get_string()} : std::string{};
}

std::int64_t num(const json::value& v) {
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64()) return static_cast<std::int64_t>(v.get_uint64());
    if (v.is_double()) return static_cast<std::int64_t>(v.get_double());
    return -1;
}

// A JavaScript string literal of `s`.
std::string js(const std::string& s) { return json::serialize(json::value(json::string{s})); }

// Digits of a displayed number ("1,234" -> "1234").
std::string digits(std::string s) {
    s.erase(std::remove(s.begin(), s.end(), ','), s.end());
    return s;
}

class chromium_holder {
public:
    static spool::testing::chromium& get() {
        static std::unique_ptr<spool::testing::chromium> browser =
            std::make_unique<spool::testing::chromium>();
        return *browser;
    }
};

class Dashboard : public spool::testing::RedisTest {
protected:
    void SetUp() override {
        RedisTest::SetUp();
        dir_ = redis().dir() + "/dashboard";
        std::filesystem::create_directories(dir_);
        std::ofstream cfg{dir_ + "/spool.yaml"};
        cfg << "queues:\n"
               "  default:\n    handler: echo\n"
               "  held:\n    handler: echo\n"
               "  sim:\n    handler: simulation\n    lease_seconds: 5\n"
               "  flaky:\n    handler: simulation\n    max_retries: 0\n"
               "worker:\n  grace_seconds: 1\n";
        ASSERT_FALSE(spool::testing::chromium_binary().empty())
            << "chromium is not installed (scripts/test installs it)";
    }

    void TearDown() override {
        if (page_) {
            auto errors = page_->errors();
            std::string all;
            for (const auto& e : errors) all += "\n  [" + e.source + "] " + e.text;
            EXPECT_TRUE(errors.empty()) << "the page logged errors:" << all;
            page_.reset();
        }
        extra_.reset();
        serve_.reset();
        if (HasFailure()) {
            std::ifstream in{dir_ + "/serve.log"};
            std::stringstream ss;
            ss << in.rdbuf();
            auto text = ss.str();
            if (text.size() > 4000) text = "..." + text.substr(text.size() - 4000);
            std::cerr << "---- tail of serve.log ----\n" << text << "\n----\n";
        }
    }

    void start_serve(const env_list& env = {}, int workers = 1) {
        port_ = spool::testing::free_port();
        env_list e{{"SPOOL_HISTORY_BUCKET_SECONDS", "1"}, {"LOG_LEVEL", "info"}};
        e.insert(e.end(), env.begin(), env.end());
        serve_ = std::make_unique<process>(
            std::vector<std::string>{"serve", "--redis", redis().url(), "--config", dir_ + "/spool.yaml",
                                     "--host", "127.0.0.1", "--port", std::to_string(port_), "--workers",
                                     std::to_string(workers), "--concurrency", "4"},
            dir_ + "/serve.log", e);
        bool up = wait_until(
            [&] {
                auto r = client().request(verb::get, "/health");
                return (r && r->status == 200) || !serve_->alive();
            },
            20s, 20ms);
        ASSERT_TRUE(up && serve_->alive()) << "spool serve did not become healthy";
        page_ = chromium_holder::get().new_page();
    }

    spool::cli::http_client client(const std::string& key = {}) {
        auto url = spool::cli::parse_server_url("http://127.0.0.1:" + std::to_string(port_)).value();
        return spool::cli::http_client{url, key.empty() ? key_ : key, 10s};
    }
    spool::cli::http_response call(verb method, const std::string& target, const std::string& body = {},
                                   const std::string& key = {}) {
        auto r = client(key).request(method, target, body);
        if (!r) {
            ADD_FAILURE() << target << ": " << r.error().message();
            return {};
        }
        return *r;
    }
    json::value get(const std::string& target, const std::string& key = {}) {
        auto r = call(verb::get, target, {}, key);
        EXPECT_EQ(r.status, 200u) << target << ": " << r.body;
        auto v = parse(r.body);
        // Never null: callers index into it (a missing key then throws, failing the test).
        return v.is_object() ? v : json::value(json::object{});
    }
    std::string submit(const std::string& body, const std::string& key = {}) {
        auto r = call(verb::post, "/api/jobs", body, key);
        EXPECT_TRUE(r.status == 201u || r.status == 200u) << r.body;
        return str(parse(r.body), "job_id");
    }
    std::string status_of(const std::string& id) { return str(get("/api/jobs/" + id), "status"); }
    bool wait_status(const std::string& id, const std::string& status, std::chrono::milliseconds t = 20s) {
        bool ok = wait_until([&] { return status_of(id) == status; }, t, 20ms);
        if (!ok) ADD_FAILURE() << id << " did not reach " << status << " (is " << status_of(id) << ")";
        return ok;
    }
    json::object queue_info(const std::string& name) {
        auto qs = get("/api/queues");
        for (const auto& q : qs.at("queues").as_array())
            if (str(q, "name") == name) return q.as_object();
        return {};
    }

    // --- the page
    std::string base() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
    void open(const std::string& hash) { page_->navigate(base() + "#" + hash); }
    json::value eval(const std::string& e) { return page_->eval(e); }
    std::string text(const std::string& selector) {
        auto v = eval("(() => { const el = document.querySelector(" + js(selector) +
                      "); return el ? el.textContent.trim() : null; })()");
        return v.is_string() ? std::string{v.get_string()} : std::string{"<none>"};
    }
    std::vector<std::string> attrs(const std::string& selector, const std::string& attr) {
        auto v = eval("[...document.querySelectorAll(" + js(selector) + ")].map(e => e.getAttribute(" +
                      js(attr) + "))");
        std::vector<std::string> out;
        for (const auto& x : v.as_array()) out.push_back(x.is_string() ? std::string{x.get_string()} : "");
        return out;
    }
    bool wait_for(const std::string& predicate, std::chrono::milliseconds t = 15s) {
        bool ok = page_->wait_for(predicate, t);
        if (!ok) ADD_FAILURE() << "the page never satisfied: " << predicate;
        return ok;
    }
    // Clicks `selector`, then the confirmation dialog's confirm button.
    void click_confirmed(const std::string& selector) {
        page_->click(selector);
        ASSERT_TRUE(wait_for("document.getElementById('confirm').open"));
        page_->click("#confirm-ok");
        ASSERT_TRUE(wait_for("!document.getElementById('confirm').open"));
    }
    void shot(const std::string& name) { page_->screenshot(screenshot_dir() + "/" + name + ".png"); }

    std::string dir_;
    std::string key_;
    std::uint16_t port_ = 0;
    std::unique_ptr<process> serve_;
    std::unique_ptr<process> extra_;
    std::unique_ptr<browser_page> page_;
};

// Ids of /api/jobs?... in order.
std::vector<std::string> ids_of(const json::value& page) {
    std::vector<std::string> out;
    for (const auto& j : page.at("jobs").as_array()) out.push_back(str(j, "job_id"));
    return out;
}

}  // namespace

TEST_F(Dashboard, OverviewShowsDepthsChartsAndHealthAsTheApiDoes) {
    ASSERT_NO_FATAL_FAILURE(start_serve());
    // A first job and a history bucket, so the hour's counters have a start.
    auto first = submit(R"({"queue":"default","payload":{"n":0}})");
    ASSERT_TRUE(wait_status(first, "completed"));
    ASSERT_TRUE(wait_until([&] { return !get("/api/queues/default/history").at("buckets").as_array().empty(); },
                           10s, 50ms));
    std::vector<std::string> done;
    for (int i = 1; i <= 6; ++i)
        done.push_back(submit(R"({"queue":"default","payload":{"n":)" + std::to_string(i) + "}}"));
    std::vector<std::string> dead{submit(R"({"queue":"flaky","payload":{"fail":true}})"),
                                  submit(R"({"queue":"flaky","payload":{"fail":true}})")};
    auto running = submit(R"({"queue":"sim","payload":{"duration_ms":30000,"steps":30}})");
    submit(R"({"queue":"default","payload":{},"delay_ms":600000})");
    auto doomed = submit(R"({"queue":"default","payload":{},"delay_ms":600000})");
    ASSERT_EQ(call(verb::post, "/api/jobs/" + doomed + "/cancel").status, 200u);
    ASSERT_EQ(call(verb::post, "/api/queues/held/pause").status, 200u);
    submit(R"({"queue":"held","payload":{}})");
    submit(R"({"queue":"held","payload":{}})");
    for (const auto& id : done) ASSERT_TRUE(wait_status(id, "completed"));
    for (const auto& id : dead) ASSERT_TRUE(wait_status(id, "failed"));
    ASSERT_TRUE(wait_status(running, "in_progress"));

    open("/");
    auto queues = get("/api/queues").at("queues").as_array();
    ASSERT_EQ(queues.size(), 4u);
    ASSERT_TRUE(wait_for("document.querySelectorAll('[data-test=queues] tbody tr').length === " +
                         std::to_string(queues.size())));
    for (const auto& q : queues) {
        auto name = str(q, "name");
        auto row = "[data-test=queues] tr[data-queue=" + js(name) + "] ";
        for (const auto& [state, n] : q.at("depth").as_object())
            EXPECT_EQ(digits(text(row + "[data-field=" + std::string{state} + "]")), std::to_string(num(n)))
                << name << " " << state;
        EXPECT_EQ(text(row + "[data-field=paused]"), q.at("paused").as_bool() ? "paused" : "active") << name;
    }
    // Every state is on the page at least once.
    EXPECT_EQ(text("[data-test=queues] tr[data-queue=held] [data-field=queued]"), "2");
    EXPECT_EQ(text("[data-test=queues] tr[data-queue=default] [data-field=scheduled]"), "1");
    EXPECT_EQ(text("[data-test=queues] tr[data-queue=default] [data-field=cancelled]"), "1");
    EXPECT_EQ(text("[data-test=queues] tr[data-queue=sim] [data-field=in_progress]"), "1");
    EXPECT_EQ(text("[data-test=queues] tr[data-queue=flaky] [data-field=failed]"), "2");

    // Redis health and live workers, as /health and /api/workers say.
    auto health = get("/health");
    EXPECT_EQ(text("[data-test=redis] [data-field=version]"), str(health.at("redis"), "version"));
    EXPECT_NE(text("[data-test=redis] [data-field=used_memory]"), "–");
    EXPECT_EQ(text("[data-test=workers] [data-field=live-workers]"),
              std::to_string(get("/api/workers").at("workers").as_array().size()));

    // The hour's charts and percentiles draw from the history the server keeps.
    for (const auto& name : {"default", "flaky"}) {
        auto h = get(std::string{"/api/queues/"} + name + "/history");
        auto card = std::string{"[data-test=queue-card][data-queue="} + name + "] ";
        auto completed = std::to_string(num(h.at("totals").at("completed")));
        auto failed = std::to_string(num(h.at("totals").at("failed")));
        EXPECT_TRUE(wait_for("document.querySelector(" + js(card + "[data-field=completed-hour]") +
                             ")?.textContent.replace(/,/g, '') === " + js(completed)))
            << name << " completed " << completed;
        EXPECT_EQ(digits(text(card + "[data-field=failed-hour]")), failed) << name;
        // The bars add up to the hour's totals.
        auto sum = [&](const std::string& cls) {
            return num(eval("[...document.querySelectorAll(" + js(card + "svg.chart rect." + cls) +
                            ")].reduce((a, r) => a + Number(r.dataset.v), 0)"));
        };
        EXPECT_EQ(std::to_string(sum("b1")), completed) << name;
        EXPECT_EQ(std::to_string(sum("b2")), failed) << name;
        auto p50 = h.at("latency").at("run_ms").at("p50");
        EXPECT_EQ(attrs(card + "[data-field=run-p50]", "data-ms").at(0),
                  p50.is_null() ? "" : std::to_string(num(p50)));
    }
    auto dh = get("/api/queues/default/history");
    EXPECT_GE(num(dh.at("totals").at("completed")), 6);  // the six after the first bucket
    EXPECT_EQ(num(get("/api/queues/flaky/history").at("totals").at("failed")), 2);
    EXPECT_EQ(num(dh.at("latency").at("sample")), 7);
    shot("overview");

    // Dark theme from the toggle, and a phone-sized screen.
    page_->click("#theme");
    ASSERT_TRUE(wait_for("document.documentElement.dataset.theme === 'dark'"));
    shot("overview-dark");
    page_->set_viewport(390, 844, true);
    ASSERT_TRUE(wait_for("document.querySelectorAll('[data-test=queues] tbody tr').length === 4"));
    shot("overview-phone");
    page_->set_viewport(1280, 900);
    page_->click("#theme");
    ASSERT_TRUE(wait_for("document.documentElement.dataset.theme === 'light'"));
}

TEST_F(Dashboard, QueuePagePaginatesSearchesAndRunsBulkActions) {
    ASSERT_NO_FATAL_FAILURE(start_serve());
    std::vector<std::string> ids;
    for (int i = 0; i < 30; ++i)
        ids.push_back(submit(R"({"queue":"default","payload":{"i":)" + std::to_string(i) + "}" +
                             (i == 7 ? R"(,"unique_key":"order-42")" : "") + "}"));
    for (const auto& id : ids) ASSERT_TRUE(wait_status(id, "completed"));

    open("/queues/default?state=completed");
    auto page1 = get("/api/jobs?queue=default&status=completed&limit=25");
    ASSERT_TRUE(wait_for("document.querySelectorAll('[data-test=jobs] tbody tr').length === 25"));
    EXPECT_EQ(attrs("[data-test=jobs] tbody tr", "data-job"), ids_of(page1));
    EXPECT_EQ(text("[data-test=queue-name]"), "default");
    EXPECT_EQ(digits(text(".tabs a[data-state=completed] .count")), "30");
    shot("queue");
    page_->set_viewport(390, 844, true);
    shot("queue-phone");
    page_->set_viewport(1280, 900);
    page_->click("[data-action=next]");
    auto page2 = get("/api/jobs?queue=default&status=completed&limit=25&cursor=" +
                     url_encode(str(page1, "next_cursor")));
    ASSERT_TRUE(wait_for("document.querySelectorAll('[data-test=jobs] tbody tr').length === 5"));
    EXPECT_EQ(attrs("[data-test=jobs] tbody tr", "data-job"), ids_of(page2));

    // Search by unique_key, with the form (typed, then Enter).
    eval("document.querySelector('form.search input').focus()");
    page_->type("order-42");
    page_->press("Enter");
    ASSERT_TRUE(
        wait_for("location.hash.includes('q=order-42') && document.querySelectorAll('[data-test=jobs] tbody "
                 "tr').length === 1"));
    auto found = get("/api/jobs/search?queue=default&q=order-42");
    EXPECT_EQ(ids_of(found), std::vector<std::string>{ids[7]});
    EXPECT_EQ(attrs("[data-test=jobs] tbody tr", "data-job"), ids_of(found));

    // Pause and resume from the buttons.
    open("/queues/default");
    ASSERT_TRUE(wait_for("document.querySelector('[data-action=pause]').dataset.paused === 'false'"));
    click_confirmed("[data-action=pause]");
    ASSERT_TRUE(wait_until([&] { return queue_info("default").at("paused").as_bool(); }, 10s));
    ASSERT_TRUE(wait_for("document.querySelector('[data-action=pause]').dataset.paused === 'true'"));
    EXPECT_EQ(text("h1 .badge"), "paused");
    page_->click("[data-action=pause]");  // resume needs no confirmation
    ASSERT_TRUE(wait_until([&] { return !queue_info("default").at("paused").as_bool(); }, 10s));

    // A confirmation that is cancelled does nothing.
    page_->click("[data-action=purge-completed]");
    ASSERT_TRUE(wait_for("document.getElementById('confirm').open"));
    page_->press("Escape");
    ASSERT_TRUE(wait_for("!document.getElementById('confirm').open"));
    EXPECT_EQ(num(queue_info("default").at("depth").at("completed")), 30);

    // Purge completed.
    click_confirmed("[data-action=purge-completed]");
    ASSERT_TRUE(wait_until([&] { return num(queue_info("default").at("depth").at("completed")) == 0; }, 10s));
    ASSERT_TRUE(wait_for("document.querySelector('[data-test=empty]') !== null"));
    EXPECT_EQ(call(verb::get, "/api/jobs/" + ids[0]).status, 404u);

    // Retry every dead job (the queue is paused, so they stay queued where we can see them).
    std::vector<std::string> dead;
    for (int i = 0; i < 3; ++i) dead.push_back(submit(R"({"queue":"flaky","payload":{"fail":true}})"));
    for (const auto& id : dead) ASSERT_TRUE(wait_status(id, "failed"));
    ASSERT_EQ(call(verb::post, "/api/queues/flaky/pause").status, 200u);
    open("/queues/flaky?state=failed");
    ASSERT_TRUE(wait_for("document.querySelectorAll('[data-test=jobs] tbody tr').length === 3"));
    click_confirmed("[data-action=retry-dead]");
    ASSERT_TRUE(wait_until(
        [&] {
            auto q = queue_info("flaky");
            return num(q.at("depth").at("failed")) == 0 && num(q.at("depth").at("queued")) == 3;
        },
        10s));
    for (const auto& id : dead) EXPECT_EQ(status_of(id), "queued");
    ASSERT_TRUE(wait_for("document.querySelector('[data-test=empty]') !== null"));
}

TEST_F(Dashboard, JobPageFollowsProgressToCompletedAndShowsPayloadAndResult) {
    ASSERT_NO_FATAL_FAILURE(start_serve());
    auto id = submit(R"({"queue":"sim","payload":{"duration_ms":4000,"steps":10}})");
    open("/jobs/" + id);
    // The bar moves: collect what it shows until the timeline ends in completed.
    std::set<int> seen;
    bool ended = wait_until(
        [&] {
            auto v = eval(
                "[Number(document.querySelector('[data-test=progress]')?.dataset.value ?? -1),"
                " document.querySelector('[data-test=timeline] li:last-child')?.dataset.status ?? '']");
            seen.insert(static_cast<int>(num(v.as_array()[0])));
            return v.as_array()[1].as_string() == "completed";
        },
        20s, 50ms);
    ASSERT_TRUE(ended) << "the timeline never ended in completed";
    EXPECT_TRUE(std::any_of(seen.begin(), seen.end(), [](int p) { return p > 0 && p < 100; }))
        << "the progress bar never showed a value between 0 and 100";
    ASSERT_TRUE(wait_for("document.querySelector('[data-test=progress]').dataset.value === '100'"));

    // The timeline is the job's event stream.
    std::vector<std::string> api_ids;
    spool::cli::sse_parser parser;
    auto r = client().stream(
        "/api/jobs/" + id + "/events", {},
        [&](std::string_view chunk) {
            for (auto& e : parser.feed(chunk)) api_ids.push_back(e.id);
            return true;
        },
        10s);
    ASSERT_TRUE(r && r->status == 200u);
    EXPECT_EQ(attrs("[data-test=timeline] li", "data-id"), api_ids);
    EXPECT_GE(api_ids.size(), 12u);  // queued, started, 10 progress events, completed

    // The record, payload and result as the API has them.
    auto rec = get("/api/jobs/" + id);
    ASSERT_TRUE(wait_for("document.querySelector('[data-field=status]')?.textContent === 'completed'"));
    EXPECT_EQ(text("[data-field=queue]"), "sim");
    EXPECT_EQ(text("[data-field=worker_id]"), str(rec, "worker_id"));
    EXPECT_EQ(text("[data-field=attempts]"), "1 of 4");
    ASSERT_TRUE(wait_for("document.querySelector('[data-test=result-box] pre') !== null"));
    EXPECT_EQ(parse(text("[data-test=result-box] pre")),
              parse(call(verb::get, "/api/jobs/" + id + "/result").body));
    EXPECT_EQ(parse(text("[data-test=payload-box] pre")), parse(R"({"duration_ms":4000,"steps":10})"));
    shot("job");
    page_->set_viewport(390, 844, true);
    ASSERT_TRUE(wait_for("document.querySelector('[data-test=result-box] pre') !== null"));
    shot("job-phone");
    page_->set_viewport(1280, 900);

    // A large payload is cut short, with its size and a download link.
    ASSERT_EQ(call(verb::post, "/api/queues/held/pause").status, 200u);
    std::string blob(150000, 'x');
    const std::string big_payload = R"({"blob":")" + blob + "\"}";
    const std::size_t big_size = big_payload.size();
    auto big = submit(R"({"queue":"held","payload":)" + big_payload + "}");
    open("/jobs/" + big);
    ASSERT_TRUE(wait_for("document.querySelector('[data-test=payload-box] [data-test=truncated]') !== null"));
    EXPECT_NE(digits(text("[data-test=payload-box] [data-test=truncated]"))
                  .find(std::to_string(big_size) + " bytes"),
              std::string::npos)
        << text("[data-test=payload-box] [data-test=truncated]");
    EXPECT_EQ(attrs("[data-test=payload-box] [data-test=download]", "download").at(0), big + "-payload.json");
}

TEST_F(Dashboard, JobButtonsRetryCancelAndDelete) {
    ASSERT_NO_FATAL_FAILURE(start_serve());
    // Retry a dead job (its queue paused, so it waits in queued).
    auto dead = submit(R"({"queue":"flaky","payload":{"fail":true}})");
    ASSERT_TRUE(wait_status(dead, "failed"));
    ASSERT_EQ(call(verb::post, "/api/queues/flaky/pause").status, 200u);
    open("/jobs/" + dead);
    ASSERT_TRUE(wait_for("!document.querySelector('[data-action=retry]').disabled"));
    // The attempts' errors come with the event stream, which may land after the record.
    ASSERT_TRUE(wait_for("document.querySelector('[data-test=attempt-errors] li .error') !== null"));
    EXPECT_EQ(text("[data-test=attempt-errors] li .error"), "simulated failure");
    EXPECT_EQ(text("[data-field=error_message]"), str(get("/api/jobs/" + dead), "error_message"));
    click_confirmed("[data-action=retry]");
    ASSERT_TRUE(wait_status(dead, "queued", 10s));
    ASSERT_TRUE(wait_for("document.querySelector('[data-field=status]').textContent === 'queued'"));

    // Cancel a running one.
    auto running = submit(R"({"queue":"sim","payload":{"duration_ms":30000,"steps":30}})");
    ASSERT_TRUE(wait_status(running, "in_progress"));
    open("/jobs/" + running);
    ASSERT_TRUE(wait_for("!document.querySelector('[data-action=cancel]').disabled"));
    click_confirmed("[data-action=cancel]");
    ASSERT_TRUE(wait_status(running, "cancelled", 15s));
    ASSERT_TRUE(wait_for(
        "document.querySelector('[data-test=timeline] li:last-child')?.dataset.status === 'cancelled'"));
    ASSERT_TRUE(wait_for("document.querySelector('h1').dataset.status === 'cancelled'"));

    // Delete, with the keyboard only: Enter on the button, Tab to Confirm, Enter.
    auto done = submit(R"({"queue":"default","payload":{"k":1}})");
    ASSERT_TRUE(wait_status(done, "completed"));
    open("/jobs/" + done);
    ASSERT_TRUE(wait_for("!document.querySelector('[data-action=delete]').disabled"));
    eval("document.querySelector('[data-action=delete]').focus()");
    page_->press("Enter");
    ASSERT_TRUE(wait_for(
        "document.getElementById('confirm').open && document.activeElement.id === 'confirm-cancel'"));
    page_->press("Tab");
    ASSERT_TRUE(wait_for("document.activeElement.id === 'confirm-ok'"));
    page_->press("Enter");
    ASSERT_TRUE(wait_until([&] { return call(verb::get, "/api/jobs/" + done).status == 404u; }, 10s));
    ASSERT_TRUE(wait_for("location.hash === '#/queues/default'"));
}

TEST_F(Dashboard, WorkersPageListsLiveWorkersAndShowsAGoneOne) {
    ASSERT_NO_FATAL_FAILURE(start_serve());
    extra_ =
        std::make_unique<process>(std::vector<std::string>{"worker", "--redis", redis().url(), "--config",
                                                           dir_ + "/spool.yaml", "--concurrency", "2"},
                                  dir_ + "/worker.log", env_list{{"WORKER_ID", "extra-worker"}});
    ASSERT_TRUE(wait_until([&] { return get("/api/workers").at("workers").as_array().size() == 2; }, 15s));
    auto running = submit(R"({"queue":"sim","payload":{"duration_ms":20000,"steps":20}})");
    ASSERT_TRUE(wait_status(running, "in_progress"));
    ASSERT_TRUE(wait_until(
        [&] {
            auto now = get("/api/workers");
            for (const auto& w : now.at("workers").as_array())
                if (!w.at("running_jobs").as_array().empty()) return true;
            return false;
        },
        10s));

    open("/workers");
    auto ws = get("/api/workers").at("workers").as_array();
    ASSERT_TRUE(wait_for("document.querySelectorAll('[data-test=workers] tbody tr').length === 2"));
    for (const auto& w : ws) {
        auto row = "tr[data-worker=" + js(str(w, "id")) + "] ";
        EXPECT_EQ(text(row + "[data-field=host]"), str(w, "host"));
        EXPECT_EQ(text(row + "[data-field=pid]"), std::to_string(num(w.at("pid"))));
        EXPECT_EQ(text(row + "[data-field=concurrency]"), std::to_string(num(w.at("concurrency"))));
        std::string queues;
        for (const auto& q : w.at("queues").as_array())
            queues += (queues.empty() ? "" : ", ") + std::string{q.as_string()};
        EXPECT_EQ(text(row + "[data-field=queues]"), queues);
        EXPECT_EQ(text(row + "[data-field=state]"), "live");
        std::vector<std::string> jobs;
        for (const auto& j : w.at("running_jobs").as_array())
            jobs.push_back("#/jobs/" + std::string{j.as_string()});
        EXPECT_TRUE(wait_for(
            "JSON.stringify([...document.querySelectorAll(" + js(row + "[data-field=running] a") +
            ")].map(a => a.getAttribute('href'))) === " + js(json::serialize(json::value_from(jobs)))))
            << str(w, "id");
    }
    shot("workers");

    // A worker that stops heart-beating: late, then gone once its registration expires.
    extra_->kill9();
    ASSERT_TRUE(wait_for(
        "document.querySelector('tr[data-worker=\"extra-worker\"]')?.dataset.state === 'gone'", 20s));
    auto after = get("/api/workers");
    for (const auto& w : after.at("workers").as_array()) EXPECT_NE(str(w, "id"), "extra-worker");
    EXPECT_EQ(text("[data-test=summary]"), "1 live worker, 1 gone");
    shot("workers-gone");
}

TEST_F(Dashboard, ApiKeyLoginSeesOnlyThatTenantsJobs) {
    ASSERT_NO_FATAL_FAILURE(start_serve({{"SPOOL_API_KEYS", "alpha-key:alpha,beta-key:beta,root-key:*"}}));
    std::vector<std::string> alpha, beta;
    for (int i = 0; i < 3; ++i)
        alpha.push_back(submit(R"({"queue":"default","payload":{"a":1}})", "alpha-key"));
    for (int i = 0; i < 2; ++i)
        beta.push_back(submit(R"({"queue":"default","payload":{"b":1}})", "beta-key"));
    for (const auto& id : alpha)
        ASSERT_TRUE(wait_until(
            [&] { return str(get("/api/jobs/" + id, "alpha-key"), "status") == "completed"; }, 20s));

    open("/");
    ASSERT_TRUE(wait_for("document.getElementById('login').open"));
    shot("login");
    eval("document.getElementById('login-key').focus()");
    page_->type("not-a-key");
    page_->press("Enter");
    ASSERT_TRUE(wait_for("!document.getElementById('login-error').hidden"));
    eval("document.getElementById('login-key').focus()");
    page_->type("alpha-key");
    page_->press("Enter");
    ASSERT_TRUE(
        wait_for("!document.getElementById('login').open && document.getElementById('who').textContent === "
                 "'tenant: alpha'"));
    ASSERT_TRUE(wait_for("document.querySelector('[data-test=tenant-notice]') !== null"));
    ASSERT_TRUE(wait_for("document.getElementById('live').dataset.state === 'live'"));

    open("/queues/default");
    auto mine = get("/api/jobs?queue=default&limit=25", "alpha-key");
    ASSERT_EQ(ids_of(mine).size(), 3u);
    ASSERT_TRUE(wait_for("document.querySelectorAll('[data-test=jobs] tbody tr').length === 3"));
    auto shown = attrs("[data-test=jobs] tbody tr", "data-job");
    EXPECT_EQ(shown, ids_of(mine));
    for (const auto& id : beta)
        EXPECT_EQ(std::count(shown.begin(), shown.end(), id), 0) << "beta's job " << id << " shown";
    EXPECT_EQ(eval("document.querySelector('[data-action=pause]').hidden"),
              json::value(true));  // not an admin
    shot("tenant-queue");
    // A foreign job's page says it does not exist.
    open("/jobs/" + beta[0]);
    ASSERT_TRUE(wait_for("document.querySelector('[data-test=missing]') !== null"));
    page_->clear_errors();  // that page's 404 is the expected answer
    shot("tenant-foreign-job");
}

TEST_F(Dashboard, ChartsShowTheHistoryKeptInRedisFromBeforeThisServerStarted) {
    // An hour of snapshots as earlier API servers would have left them (one a
    // minute), and the counters they were taken from. This server never saw them.
    using clk = std::chrono::system_clock;
    const long long now =
        std::chrono::duration_cast<std::chrono::milliseconds>(clk::now().time_since_epoch()).count();
    const long long minute0 = now / 60000 * 60000 - 58 * 60000;
    long long completed = 0, failed = 0, submitted = 0;
    long long expected_completed = 0, expected_failed = 0;
    std::vector<std::string> hset{"HSET", "spool:{q:default}:history"};
    for (int i = 0; i < 59; ++i) {
        hset.push_back(std::to_string(minute0 + i * 60000LL));
        hset.push_back(std::to_string(submitted) + " " + std::to_string(completed) + " " +
                       std::to_string(failed) + " 0");
        long long done = 40 + static_cast<long long>(25 * std::sin(i / 6.0)) + (i * 7) % 11;
        long long bad = i % 13 == 0 ? 4 : i % 5 == 0 ? 1 : 0;
        completed += done;
        failed += bad;
        submitted += done + bad;
        expected_completed += done;  // each minute's jobs fall between two snapshots
        expected_failed += bad;
    }
    redis().cmd(hset);
    redis().cmd({"SADD", "spool:queues", "default"});
    redis().cmd({"HSET", "spool:{q:default}:meta", "submitted", std::to_string(submitted), "completed",
                 std::to_string(completed), "failed", std::to_string(failed), "retried", "0"});
    ASSERT_NO_FATAL_FAILURE(start_serve());
    auto h = get("/api/queues/default/history");
    EXPECT_EQ(num(h.at("totals").at("completed")), expected_completed);
    EXPECT_EQ(num(h.at("totals").at("failed")), expected_failed);

    open("/");
    const std::string card = "[data-test=queue-card][data-queue=default] ";
    ASSERT_TRUE(wait_for("document.querySelectorAll(" + js(card + "svg.chart rect.b1") + ").length >= 50"));
    auto sum = [&](const std::string& cls) {
        return num(eval("[...document.querySelectorAll(" + js(card + "svg.chart rect." + cls) +
                        ")].reduce((a, r) => a + Number(r.dataset.v), 0)"));
    };
    EXPECT_EQ(sum("b1"), expected_completed);
    EXPECT_EQ(sum("b2"), expected_failed);
    EXPECT_EQ(digits(text(card + "[data-field=completed-hour]")), std::to_string(expected_completed));
    // Some live jobs too, for the picture.
    ASSERT_EQ(call(verb::post, "/api/queues/held/pause").status, 200u);
    for (int i = 0; i < 3; ++i) submit(R"({"queue":"held","payload":{}})");
    auto running = submit(R"({"queue":"sim","payload":{"duration_ms":20000,"steps":20}})");
    ASSERT_TRUE(wait_status(running, "in_progress"));
    ASSERT_TRUE(
        wait_for("document.querySelector('[data-test=queues] tr[data-queue=sim] "
                 "[data-field=in_progress]')?.textContent === '1'"));
    ASSERT_TRUE(
        wait_for("document.querySelector('[data-test=queues] tr[data-queue=held] "
                 "[data-field=queued]')?.textContent === '3'"));
    shot("overview-hour");
}

TEST_F(Dashboard, JobPageLinksAJobWithItsParentsAndChildren) {
    ASSERT_NO_FATAL_FAILURE(start_serve());
    auto parent = submit(R"({"queue":"sim","payload":{"duration_ms":1500,"steps":2}})");
    auto child = submit(R"({"queue":"default","payload":{},"depends_on":[")" + parent + R"("]})");
    open("/jobs/" + child);
    ASSERT_TRUE(wait_for("document.querySelector('[data-field=parents]')?.textContent === " + js(parent)));
    EXPECT_EQ(str(get("/api/jobs/" + child), "status"), "waiting");
    EXPECT_EQ(text("[data-field=status]"), "waiting");
    eval("document.querySelector('[data-field=parents] a').click()");
    ASSERT_TRUE(wait_for("location.hash === " + js("#/jobs/" + parent) +
                         " && document.querySelector('[data-field=children]')?.textContent === " + js(child)));
    // The child runs once its parent completed, and its page says so.
    open("/jobs/" + child);
    ASSERT_TRUE(wait_for("document.querySelector('[data-field=status]')?.textContent === 'completed'", 20s));
    EXPECT_EQ(str(get("/api/jobs/" + child), "status"), "completed");
}
