// src/handlers/exec.cpp
// One attempt is two coroutines joined with &&: `pump` moves bytes (payload in,
// stdout and stderr out) and `supervise` watches the child (exit, deadline,
// cancellation, output limit), stops it when needed, reaps it, and bounds how long
// the pump may still wait for pipes held open by escaped grandchildren.
#include "handlers/exec.hpp"

#include "handlers/cancel.hpp"
#include "handlers/child_process.hpp"
#include "handlers/stderr_parser.hpp"
#include "util/asio.hpp"

#include <fmt/format.h>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>

#include <array>
#include <map>
#include <memory>

#include <sys/wait.h>

extern char** environ;

namespace spool::handlers {

namespace {

// After the child is gone, how long to wait for pipes still held open by
// processes that left its group (setsid) before giving up on them.
constexpr auto drain_limit = std::chrono::seconds{1};
constexpr std::size_t read_chunk = 64 * 1024;
constexpr std::size_t stdout_excerpt = 200;

struct exec_settings {
    exec_options opts;
    std::chrono::seconds fallback_timeout;
};

enum class stop_cause { none, timeout, cancelled };

// What the program reads on stdin: the payload; for a job with parents
// (depends_on) an envelope {"payload": ..., "parents": [{"id", "result"}, ...]}.
std::string stdin_of(const job_context& ctx) {
    if (ctx.parents().empty()) return ctx.payload();
    std::string s = R"({"payload":)" + ctx.payload() + R"(,"parents":[)";
    for (std::size_t i = 0; i < ctx.parents().size(); ++i) {
        const auto& p = ctx.parents()[i];
        s += (i ? "," : "") + std::string{R"({"id":")"} + p.id + R"(","result":)" + p.result + "}";
    }
    return s + "]}";
}

// Everything one attempt shares between its coroutines.
struct exec_run {
    exec_run(asio::any_io_executor ex, std::unique_ptr<child_process> c, const job_context& ctx,
             std::size_t max)
        : child{std::move(c)},
          payload{stdin_of(ctx)},
          limit{max},
          err{[&ctx](int percent, std::string message) { ctx.progress(percent, std::move(message)); }},
          wake{ex},
          grace{ex},
          drain{ex} {}

    // The pump saw too much output: stop reading and wake the supervisor.
    void over_limit(const char* stream) {
        if (failure.empty()) failure = fmt::format("{} exceeds {} bytes", stream, limit);
        wake.cancel();
    }

    std::unique_ptr<child_process> child;
    std::string payload;
    std::size_t limit;
    std::string out;
    stderr_parser err;
    std::string failure;  // output over the limit
    stop_cause stop = stop_cause::none;
    std::chrono::seconds timeout{0};
    std::chrono::milliseconds kill_grace{0};
    asio::steady_timer wake;   // expires at the deadline; cancelled on the output limit
    asio::steady_timer grace;  // SIGTERM -> SIGKILL
    asio::steady_timer drain;  // cancelled by the pump when it is done
    bool pump_done = false;
};

asio::awaitable<void> wait_timer(asio::steady_timer* t) { co_await t->async_wait(use_tuple); }

asio::awaitable<void> write_stdin(std::shared_ptr<exec_run> run) {
    // EPIPE (the child does not read its input) is not an error of the attempt.
    co_await asio::async_write(run->child->stdin_pipe(), asio::buffer(run->payload), use_tuple);
    boost::system::error_code ignored;
    run->child->stdin_pipe().close(ignored);
}

asio::awaitable<void> read_stdout(std::shared_ptr<exec_run> run) {
    std::array<char, read_chunk> buf;
    for (;;) {
        auto [ec, n] = co_await run->child->stdout_pipe().async_read_some(asio::buffer(buf), use_tuple);
        if (run->out.size() + n > run->limit) {
            boost::system::error_code ignored;
            run->child->stdout_pipe().close(ignored);  // the child's next write fails
            run->over_limit("stdout");
            co_return;
        }
        run->out.append(buf.data(), n);
        if (ec) co_return;  // EOF, or closed by the supervisor
    }
}

asio::awaitable<void> read_stderr(std::shared_ptr<exec_run> run) {
    std::array<char, read_chunk> buf;
    for (;;) {
        auto [ec, n] = co_await run->child->stderr_pipe().async_read_some(asio::buffer(buf), use_tuple);
        run->err.feed(std::string_view{buf.data(), n});
        if (run->err.total_bytes() > run->limit) {
            boost::system::error_code ignored;
            run->child->stderr_pipe().close(ignored);
            run->over_limit("stderr");
            co_return;
        }
        if (ec) co_return;
    }
}

asio::awaitable<void> pump(std::shared_ptr<exec_run> run) {
    co_await (write_stdin(run) && read_stdout(run) && read_stderr(run));
    run->err.finish();
    run->pump_done = true;
    run->drain.cancel();
}

asio::awaitable<void> supervise(std::shared_ptr<exec_run> run, job_context& ctx) {
    // Whatever cancels us, the child must still be stopped and reaped.
    co_await asio::this_coro::throw_if_cancelled(false);
    child_process& child = *run->child;
    auto deadline = std::chrono::steady_clock::now() + run->timeout;
    run->wake.expires_at(deadline);

    co_await (child.wait_exit() || wait_timer(&run->wake) || ctx.wait_cancelled());

    bool outer = (co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none;
    if (outer) co_await asio::this_coro::reset_cancellation_state();
    if (!child.has_exited()) {
        // (Over the output limit, run->failure already says why.)
        if (run->failure.empty()) {
            bool expired = std::chrono::steady_clock::now() >= deadline;
            run->stop = ctx.is_cancelled() || outer || !expired ? stop_cause::cancelled : stop_cause::timeout;
        }

        child.kill_group(SIGTERM);
        run->grace.expires_after(run->kill_grace);
        co_await (child.wait_exit() || wait_timer(&run->grace));
        if (!child.has_exited()) child.kill_group(SIGKILL);
    }
    // Nothing may outlive the attempt in the child's group, even after a clean
    // exit; the leader is still a zombie here, so the group id is still ours.
    child.kill_group(SIGKILL);
    while (!child.reap()) co_await child.wait_exit();

    if (!run->pump_done) {
        run->drain.expires_after(drain_limit);
        co_await run->drain.async_wait(use_tuple);
        if (!run->pump_done) child.close_pipes();  // aborts the pump's pending reads
    }
}

std::vector<std::string> child_environment(const exec_options& opts, const job_context& ctx) {
    std::map<std::string, std::string> vars;
    for (char** e = environ; e && *e; ++e) {
        std::string_view kv{*e};
        auto eq = kv.find('=');
        if (eq == std::string_view::npos) continue;
        vars[std::string{kv.substr(0, eq)}] = std::string{kv.substr(eq + 1)};
    }
    for (const auto& [name, value] : opts.env) vars[name] = value;
    vars["SPOOL_JOB_ID"] = ctx.id();
    vars["SPOOL_QUEUE"] = ctx.queue();
    vars["SPOOL_ATTEMPT"] = std::to_string(ctx.attempt());
    std::vector<std::string> out;
    out.reserve(vars.size());
    for (const auto& [name, value] : vars) out.push_back(name + "=" + value);
    return out;
}

std::string_view trim(std::string_view s) {
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!s.empty() && space(s.front())) s.remove_prefix(1);
    while (!s.empty() && space(s.back())) s.remove_suffix(1);
    return s;
}

// The attempt's outcome: the result JSON, or job_failure saying why not.
std::string outcome(exec_run& run, const job_context& ctx) {
    auto fail = [&](std::string message) {
        auto tail = run.err.tail();
        if (!tail.empty()) message += "; stderr: " + tail;
        throw job_failure{message};
    };
    if (!run.failure.empty()) fail(run.failure);
    if (run.stop == stop_cause::timeout) fail(fmt::format("timed out after {} s", run.timeout.count()));
    if (run.stop == stop_cause::cancelled) fail(cancel_message(ctx.reason()));

    int status = run.child->reap().value_or(-1);
    if (status == -1) fail("exit status unknown (the child was reaped elsewhere)");
    if (WIFSIGNALED(status))
        fail(fmt::format("killed by signal {} ({})", WTERMSIG(status), signal_name(WTERMSIG(status))));
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) fail(fmt::format("exit code {}", WEXITSTATUS(status)));

    auto text = trim(run.out);
    if (text.empty()) return "null";
    boost::system::error_code ec;
    boost::json::parse(text, ec);
    if (ec) {
        auto excerpt = text.substr(0, stdout_excerpt);
        fail(fmt::format("stdout is not JSON: {}: {}{}", ec.message(), excerpt,
                         text.size() > excerpt.size() ? "..." : ""));
    }
    return std::string{text};
}

asio::awaitable<std::string> run_exec(std::shared_ptr<const exec_settings> s, job_context& ctx) {
    if (ctx.is_cancelled()) throw_cancelled(ctx);
    auto ex = co_await asio::this_coro::executor;
    spawn_options so;
    so.argv = s->opts.command;
    so.cwd = s->opts.cwd;
    so.env = child_environment(s->opts, ctx);
    auto child = child_process::spawn(ex, so);
    if (!child) {
        auto where = so.cwd.empty() ? std::string{} : fmt::format(" (in {})", so.cwd);
        throw job_failure{
            fmt::format("cannot start {}{}: {}", so.argv.front(), where, child.error().message())};
    }

    auto run = std::make_shared<exec_run>(ex, std::move(*child), ctx, s->opts.max_output_bytes);
    run->timeout = ctx.timeout().count() > 0 ? ctx.timeout() : s->fallback_timeout;
    run->kill_grace = s->opts.kill_grace;
    co_await (supervise(run, ctx) && pump(run));
    co_return outcome(*run, ctx);
}

}  // namespace

handler make_exec_handler(const queue_policy& policy) {
    auto settings = std::make_shared<const exec_settings>(exec_settings{policy.exec, policy.timeout});
    return handler::async([settings](job_context& ctx) { return run_exec(settings, ctx); });
}

}  // namespace spool::handlers
