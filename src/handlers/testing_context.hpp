// src/handlers/testing_context.hpp
// Test support (header-only, for handler tests): a job_context whose progress
// reports are recorded and whose cancellation the test triggers with cancel(),
// as the worker runtime would on a cancel request, timeout or shutdown.
//
// Use from the thread running the io_context (cancel() touches a timer); progress
// may be read from anywhere.
#pragma once

#include "util/asio.hpp"

#include <spool/job_context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace spool::handlers::testing {

struct progress_event {
    int percent = 0;
    std::string message;
};

class test_job {
public:
    // `info.payload` etc. as the handler should see them; the executor is `io`'s.
    test_job(asio::io_context& io, job_info info) : state_{std::make_shared<state>(io)} {
        // Weak: the state owns the control, which owns these functions.
        std::weak_ptr<state> weak = state_;
        state_->control->on_progress = [weak](int percent, std::string message) {
            auto st = weak.lock();
            if (!st) return;
            progress_event event{percent, std::move(message)};
            std::function<void(const progress_event&)> hook;
            {
                std::lock_guard lock{st->mu};
                st->events.push_back(event);
                hook = st->hook;
            }
            if (hook) hook(event);
        };
        state_->control->wait_cancelled = [weak] { return wait_for_cancel(weak.lock()); };
        context_.emplace(std::move(info), state_->control, io.get_executor());
    }

    // A job with this payload, id "job-1", queue "test", attempt 1, the given timeout.
    static job_info info(std::string payload, std::chrono::seconds timeout = std::chrono::seconds{30}) {
        job_info i;
        i.id = "job-1";
        i.queue = "test";
        i.payload = std::move(payload);
        i.attempt = 1;
        i.max_retries = 3;
        i.timeout = timeout;
        return i;
    }

    job_context& context() { return *context_; }

    // Cancels the attempt: sets the reason and wakes every wait_cancelled().
    void cancel(cancel_reason reason = cancel_reason::cancelled) {
        state_->control->reason.store(reason, std::memory_order_release);
        state_->timer.cancel();
    }

    // Called (on the handler's thread) after each recorded progress report.
    void on_progress(std::function<void(const progress_event&)> hook) {
        std::lock_guard lock{state_->mu};
        state_->hook = std::move(hook);
    }

    std::vector<progress_event> progress() const {
        std::lock_guard lock{state_->mu};
        return state_->events;
    }

private:
    struct state {
        explicit state(asio::io_context& io) : timer{io, asio::steady_timer::time_point::max()} {}
        std::shared_ptr<job_control> control = std::make_shared<job_control>();
        asio::steady_timer timer;  // never expires; cancel() wakes the waiters
        mutable std::mutex mu;
        std::vector<progress_event> events;
        std::function<void(const progress_event&)> hook;
    };

    // Completes when the job is cancelled, or when this wait itself is cancelled
    // (it lost a race against the handler's other work).
    static asio::awaitable<void> wait_for_cancel(std::shared_ptr<state> st) {
        if (!st) co_return;
        if (st->control->reason.load(std::memory_order_acquire) != cancel_reason::none) co_return;
        co_await st->timer.async_wait(use_tuple);
    }

    std::shared_ptr<state> state_;
    std::optional<job_context> context_;
};

}  // namespace spool::handlers::testing
