// src/handlers/simulation.cpp
#include "handlers/simulation.hpp"

#include "handlers/cancel.hpp"
#include "util/asio.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <memory>
#include <random>

namespace spool::handlers {

namespace {

constexpr std::int64_t max_duration_ms = 24LL * 3600 * 1000;
constexpr std::int64_t max_steps = 10000;

std::int64_t integer_field(const boost::json::value& v, const char* name, std::int64_t min,
                           std::int64_t max) {
    auto bad = [&] { return invalid_input{fmt::format("{}: expected an integer {}..{}", name, min, max)}; };
    std::int64_t out = 0;
    if (v.is_int64())
        out = v.get_int64();
    else if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(max))
        out = static_cast<std::int64_t>(v.get_uint64());
    else if (v.is_double() &&
             v.get_double() == static_cast<double>(static_cast<std::int64_t>(v.get_double())))
        out = static_cast<std::int64_t>(v.get_double());
    else
        throw bad();
    if (out < min || out > max) throw bad();
    return out;
}

bool chance(double p) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::uniform_real_distribution<double>{0.0, 1.0}(rng) < p;
}

asio::awaitable<std::string> run_simulation(std::shared_ptr<const simulation_options> defaults,
                                            job_context& ctx) {
    auto p = simulation_params(*defaults, ctx.payload());
    if (ctx.is_cancelled()) throw_cancelled(ctx);

    asio::steady_timer timer{co_await asio::this_coro::executor};
    auto start = std::chrono::steady_clock::now();
    int steps = std::max(p.steps, 1);
    for (int i = 1; i <= steps; ++i) {
        // Absolute step ends, so rounding never adds up to drift.
        timer.expires_at(start + p.duration * i / steps);
        auto r = co_await (timer.async_wait(use_tuple) || ctx.wait_cancelled());
        if (r.index() == 1 || ctx.is_cancelled()) throw_cancelled(ctx);
        if (auto [ec] = std::get<0>(r); ec) throw_cancelled(ctx);  // our own coroutine was cancelled
        if (p.steps > 0) ctx.progress(100 * i / steps, fmt::format("step {}/{}", i, steps));
    }
    if (p.fail) throw job_failure{"simulated failure"};
    if (p.fail_probability > 0 && chance(p.fail_probability))
        throw job_failure{fmt::format("simulated failure (fail_probability {})", p.fail_probability)};

    boost::json::object result;
    result["simulated"] = true;
    result["steps"] = p.steps;
    result["duration_ms"] = p.duration.count();
    result["attempt"] = ctx.attempt();
    boost::system::error_code ec;
    auto payload = boost::json::parse(ctx.payload(), ec);
    result["payload"] = ec ? boost::json::value{ctx.payload()} : std::move(payload);
    co_return boost::json::serialize(result);
}

}  // namespace

simulation_options simulation_params(const simulation_options& defaults, std::string_view payload) {
    simulation_options p = defaults;
    boost::system::error_code ec;
    auto doc = boost::json::parse(payload, ec);
    if (ec || !doc.is_object()) return p;
    const auto& obj = doc.get_object();
    if (auto* v = obj.if_contains("duration_ms"))
        p.duration = std::chrono::milliseconds{integer_field(*v, "duration_ms", 0, max_duration_ms)};
    if (auto* v = obj.if_contains("steps"))
        p.steps = static_cast<int>(integer_field(*v, "steps", 0, max_steps));
    if (auto* v = obj.if_contains("fail")) {
        if (!v->is_bool()) throw invalid_input{"fail: expected true or false"};
        p.fail = v->get_bool();
    }
    if (auto* v = obj.if_contains("fail_probability")) {
        if (!v->is_number()) throw invalid_input{"fail_probability: expected a number 0..1"};
        p.fail_probability = v->to_number<double>();
        if (!(p.fail_probability >= 0.0 && p.fail_probability <= 1.0))
            throw invalid_input{"fail_probability: expected a number 0..1"};
    }
    return p;
}

handler make_simulation_handler(const simulation_options& defaults) {
    auto d = std::make_shared<const simulation_options>(defaults);
    return handler::async([d](job_context& ctx) { return run_simulation(d, ctx); });
}

}  // namespace spool::handlers
