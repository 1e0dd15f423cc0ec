// include/spool/job_context.hpp
// What a handler sees of the job it runs: identity, payload, attempt number,
// progress reporting and cancellation (cancel request, timeout or shutdown).
//
// Threading: progress() and is_cancelled() may be called from any thread (a
// blocking handler runs on the worker's thread pool). wait_cancelled() and
// executor() belong to the worker's I/O executor (async handlers only).
#pragma once

#include <spool/job.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace spool {

enum class cancel_reason { none, cancelled, timeout, shutdown };

// Shared state between the worker runtime and one running attempt.
struct job_control {
    std::atomic<cancel_reason> reason{cancel_reason::none};
    // Set by the worker runtime: publishes progress (thread-safe, coalesced).
    std::function<void(int percent, std::string message)> on_progress;
    // Set by the worker runtime: completes when the attempt is cancelled. Runs on the I/O executor.
    std::function<boost::asio::awaitable<void>()> wait_cancelled;
};

struct job_info {
    std::string id;
    std::string queue;
    std::string payload;  // JSON text
    int attempt = 1;      // 1 for the first attempt
    int max_retries = 0;
    std::chrono::seconds timeout = default_job_timeout;
    millis created_at = 0;
    // The jobs this one depended on (depends_on) and their results, in the order
    // submitted: result is JSON text, or "null" when the parent left none (it
    // failed or was cancelled under on_parent_failure "run", or its result expired).
    struct parent {
        std::string id;
        std::string result;
    };
    std::vector<parent> parents;
};

class job_context {
public:
    job_context(job_info info, std::shared_ptr<job_control> control, boost::asio::any_io_executor ex)
        : info_{std::move(info)}, control_{std::move(control)}, ex_{std::move(ex)} {}

    const std::string& id() const noexcept { return info_.id; }
    const std::string& queue() const noexcept { return info_.queue; }
    const std::string& payload() const noexcept { return info_.payload; }
    int attempt() const noexcept { return info_.attempt; }
    int max_retries() const noexcept { return info_.max_retries; }
    std::chrono::seconds timeout() const noexcept { return info_.timeout; }
    const job_info& info() const noexcept { return info_; }
    const std::vector<job_info::parent>& parents() const noexcept { return info_.parents; }

    // Reports progress, 0..100 (clamped), with an optional message. Cheap: updates
    // are coalesced before they reach Redis.
    void progress(int percent, std::string message = {}) const {
        if (control_ && control_->on_progress) control_->on_progress(percent, std::move(message));
    }
    bool is_cancelled() const noexcept { return reason() != cancel_reason::none; }
    cancel_reason reason() const noexcept {
        return control_ ? control_->reason.load(std::memory_order_acquire) : cancel_reason::none;
    }
    // Completes when the attempt is cancelled (async handlers; I/O executor only).
    boost::asio::awaitable<void> wait_cancelled() const { return control_->wait_cancelled(); }
    boost::asio::any_io_executor executor() const noexcept { return ex_; }

private:
    job_info info_;
    std::shared_ptr<job_control> control_;
    boost::asio::any_io_executor ex_;
};

}  // namespace spool
