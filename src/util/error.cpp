// src/util/error.cpp
// The error category behind spool::errc.
#include <spool/error.hpp>

#include <string>

namespace spool {

const char* to_code_name(errc e) noexcept {
    switch (e) {
        case errc::job_not_found: return "job_not_found";
        case errc::duplicate_job: return "duplicate_job";
        case errc::lease_lost: return "lease_lost";
        case errc::bad_reply: return "bad_reply";
        case errc::timeout: return "timeout";
        case errc::not_connected: return "not_connected";
        case errc::connection_lost: return "connection_lost";
        case errc::redis_error: return "redis_error";
        case errc::payload_too_large: return "payload_too_large";
        case errc::invalid_argument: return "invalid_argument";
        case errc::result_not_ready: return "result_not_ready";
        case errc::result_expired: return "result_expired";
        case errc::invalid_state: return "invalid_state";
        case errc::unauthorized: return "unauthorized";
        case errc::forbidden: return "forbidden";
        case errc::rate_limited: return "rate_limited";
        case errc::cancelled: return "cancelled";
        case errc::shutting_down: return "shutting_down";
        case errc::handler_failed: return "handler_failed";
        case errc::invalid_input: return "invalid_input";
        case errc::queue_paused: return "queue_paused";
        case errc::unknown_queue: return "unknown_queue";
        case errc::config_error: return "config_error";
        case errc::queue_not_found: return "queue_not_found";
        case errc::not_replicated: return "not_replicated";
        case errc::unknown_dependency: return "unknown_dependency";
    }
    return "unknown";
}

namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "spool"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::job_not_found: return "job not found";
            case errc::duplicate_job: return "a live job already has this unique key";
            case errc::lease_lost: return "lease lost: a newer attempt owns the job";
            case errc::bad_reply: return "unexpected reply from Redis";
            case errc::timeout: return "timed out";
            case errc::not_connected: return "not connected to Redis";
            case errc::connection_lost: return "connection to Redis lost while the request was in flight";
            case errc::redis_error: return "Redis returned an error";
            case errc::payload_too_large: return "payload too large";
            case errc::invalid_argument: return "invalid argument";
            case errc::result_not_ready: return "result not ready";
            case errc::result_expired: return "result expired";
            case errc::invalid_state: return "operation not allowed in the job's current status";
            case errc::unauthorized: return "missing or invalid API key";
            case errc::forbidden: return "forbidden";
            case errc::rate_limited: return "rate limit exceeded";
            case errc::cancelled: return "cancelled";
            case errc::shutting_down: return "shutting down";
            case errc::handler_failed: return "handler failed";
            case errc::invalid_input: return "invalid input";
            case errc::queue_paused: return "queue paused";
            case errc::unknown_queue: return "no handler for this queue";
            case errc::config_error: return "invalid configuration";
            case errc::queue_not_found: return "queue not found";
            case errc::not_replicated: return "the write was not confirmed by a replica in time";
            case errc::unknown_dependency: return "depends_on names a job that does not exist";
        }
        return "unknown spool error " + std::to_string(ev);
    }
};

}  // namespace

const boost::system::error_category& spool_category() noexcept {
    static const category instance;
    return instance;
}

}  // namespace spool
