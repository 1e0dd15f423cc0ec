// include/spool/handler.hpp
// A job handler: what a queue runs. Either async (a coroutine on the worker's I/O
// executor that must never block: timers, child processes, HTTP) or blocking
// (plain code on the worker's thread pool, for computation).
//
// A handler returns the result as JSON text. Throwing is a failed attempt: retried
// with backoff until max_retries, then `failed`. Throwing spool::invalid_input
// fails the job at once, without retries. When `validate` is set it runs first
// (on the thread pool) while the job shows `validating`.
#pragma once

#include <spool/job_context.hpp>

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <stdexcept>
#include <string>

namespace spool {

// The input can never succeed: fail now, do not retry.
class invalid_input : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A failed attempt whose message should be shown as is (the worker adds nothing).
class job_failure : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct handler {
    std::function<boost::asio::awaitable<std::string>(job_context&)> async_fn;
    std::function<std::string(job_context&)> blocking_fn;
    std::function<void(const job_context&)> validate;  // optional; throw invalid_input to reject

    static handler async(std::function<boost::asio::awaitable<std::string>(job_context&)> fn) {
        handler h;
        h.async_fn = std::move(fn);
        return h;
    }
    static handler blocking(std::function<std::string(job_context&)> fn) {
        handler h;
        h.blocking_fn = std::move(fn);
        return h;
    }
};

}  // namespace spool
