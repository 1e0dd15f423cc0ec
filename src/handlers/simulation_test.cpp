// src/handlers/simulation_test.cpp
// The simulation handler, the echo handler and the registry.
#include "handlers/simulation.hpp"
#include "handlers/echo.hpp"
#include "handlers/registry.hpp"
#include "handlers/testing_context.hpp"
#include "testing/run_coro.hpp"

#include <spool/error.hpp>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

using namespace spool;
using namespace spool::handlers;
using spool::handlers::testing::test_job;
using spool::testing::run_coro;

namespace {

std::string run(asio::io_context& io, const handler& h, test_job& job) {
    try {
        return run_coro(io, h.async_fn(job.context()), std::chrono::seconds{10});
    } catch (const job_failure& e) {
        return std::string{"FAILED: "} + e.what();
    } catch (const invalid_input& e) {
        return std::string{"INVALID: "} + e.what();
    }
}

handler simulation(std::chrono::milliseconds duration = std::chrono::milliseconds{1000}, int steps = 10) {
    simulation_options o;
    o.duration = duration;
    o.steps = steps;
    return make_simulation_handler(o);
}

}  // namespace

TEST(Simulation, ReportsOneProgressEventPerStep) {
    asio::io_context io;
    test_job job{io, test_job::info(R"({"duration_ms": 50, "steps": 5, "x": [1, 2]})")};
    auto started = std::chrono::steady_clock::now();
    auto r = run(io, simulation(), job);
    EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds{50});
    auto doc = boost::json::parse(r);
    EXPECT_EQ(doc.at("simulated"), true);
    EXPECT_EQ(doc.at("steps"), 5);
    EXPECT_EQ(doc.at("duration_ms"), 50);
    EXPECT_EQ(doc.at("payload").at("x").as_array().size(), 2u);
    auto p = job.progress();
    ASSERT_EQ(p.size(), 5u);
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(p[i].percent, 20 * (i + 1));
        EXPECT_EQ(p[i].message, "step " + std::to_string(i + 1) + "/5");
    }
}

TEST(Simulation, PolicyGivesTheDefaults) {
    asio::io_context io;
    test_job job{io, test_job::info("{}")};
    run(io, simulation(std::chrono::milliseconds{20}, 4), job);
    EXPECT_EQ(job.progress().size(), 4u);

    test_job zero{io, test_job::info(R"({"steps": 0, "duration_ms": 1})")};
    EXPECT_NE(run(io, simulation(), zero).find("\"steps\":0"), std::string::npos);
    EXPECT_TRUE(zero.progress().empty());
}

TEST(Simulation, FailFlagFailsTheAttempt) {
    asio::io_context io;
    test_job job{io, test_job::info(R"({"duration_ms": 0, "steps": 1, "fail": true})")};
    EXPECT_EQ(run(io, simulation(), job), "FAILED: simulated failure");

    simulation_options always;
    always.duration = std::chrono::milliseconds{0};
    always.fail_probability = 1.0;
    test_job job2{io, test_job::info("{}")};
    EXPECT_EQ(run(io, make_simulation_handler(always), job2),
              "FAILED: simulated failure (fail_probability 1)");

    test_job job3{io, test_job::info(R"({"fail_probability": 0})")};
    EXPECT_EQ(run(io, make_simulation_handler(always), job3).rfind("{", 0), 0u);
}

TEST(Simulation, BadPayloadFieldsAreInvalidInput) {
    asio::io_context io;
    test_job job{io, test_job::info(R"({"steps": "many"})")};
    EXPECT_EQ(run(io, simulation(), job), "INVALID: steps: expected an integer 0..10000");
    EXPECT_THROW(simulation_params({}, R"({"duration_ms": -1})"), invalid_input);
    EXPECT_THROW(simulation_params({}, R"({"fail": "yes"})"), invalid_input);
    EXPECT_THROW(simulation_params({}, R"({"fail_probability": 2})"), invalid_input);
    EXPECT_EQ(simulation_params({}, "[1, 2]").steps, 10);  // not an object: defaults
    EXPECT_EQ(simulation_params({}, R"({"duration_ms": 250.0})").duration, std::chrono::milliseconds{250});
}

TEST(Simulation, CancelEndsItPromptly) {
    asio::io_context io;
    test_job job{io, test_job::info(R"({"duration_ms": 60000, "steps": 600})")};  // a step every 100 ms
    job.on_progress([&](const auto&) { job.cancel(); });
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(run(io, simulation(), job), "FAILED: cancelled");
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{2});
    EXPECT_EQ(job.progress().size(), 1u);

    test_job timed_out{io, test_job::info(R"({"duration_ms": 60000})")};
    timed_out.cancel(cancel_reason::timeout);  // already cancelled when it starts
    EXPECT_EQ(run(io, simulation(), timed_out), "FAILED: timed out");
}

TEST(Simulation, CancelWhileWaitingWakesIt) {
    asio::io_context io;
    test_job job{io, test_job::info(R"({"duration_ms": 60000, "steps": 1})")};
    // Fires while the handler waits on its only (60 s) step.
    asio::steady_timer trigger{io, std::chrono::milliseconds{20}};
    trigger.async_wait([&](boost::system::error_code) { job.cancel(cancel_reason::shutdown); });
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(run(io, simulation(), job), "FAILED: worker shutting down");
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{2});
}

TEST(Echo, ReturnsThePayload) {
    asio::io_context io;
    test_job job{io, test_job::info(R"({"a":[1,2,3]})")};
    EXPECT_EQ(run(io, make_echo_handler(), job), R"({"a":[1,2,3]})");
}

TEST(Registry, BuildsBuiltinsAndRegisteredHandlers) {
    queue_policy p;
    for (const char* name : {"echo", "simulation"}) {
        p.handler = name;
        EXPECT_TRUE(make_handler(p)) << name;
    }
    p.handler = "exec";
    EXPECT_EQ(make_handler(p).error(), errc::config_error);  // no command
    p.exec.command = {"/bin/true"};
    EXPECT_TRUE(make_handler(p));
    p.handler = "http";
    p.http.url = "ftp://example.com/";
    EXPECT_EQ(make_handler(p).error(), errc::config_error);
    p.http.url = "http://127.0.0.1:9/run";
    EXPECT_TRUE(make_handler(p));
    p.handler = "solve_cpp";
    EXPECT_EQ(make_handler(p).error(), errc::config_error);
    EXPECT_TRUE(is_builtin("exec"));
    EXPECT_FALSE(is_builtin("solve_cpp"));

    registry reg;
    reg.add("solve_cpp", handler::blocking([](job_context&) { return std::string{"42"}; }));
    auto h = reg.make(p);
    ASSERT_TRUE(h);
    EXPECT_TRUE(h->blocking_fn);
    EXPECT_FALSE(h->async_fn);
    p.handler = "echo";
    ASSERT_TRUE(reg.make(p));
    EXPECT_TRUE(reg.make(p)->async_fn);
    EXPECT_EQ(reg.find("nope"), nullptr);

    asio::io_context io;
    test_job job{io, test_job::info("7")};
    p.handler = "solve_cpp";
    EXPECT_EQ(reg.make(p)->blocking_fn(job.context()), "42");
}

TEST(Registry, DefaultConfigQueuesAllHaveHandlers) {
    auto c = default_config();
    registry reg;
    for (const auto& [name, policy] : c.queues) EXPECT_TRUE(reg.make(policy)) << name;
}
