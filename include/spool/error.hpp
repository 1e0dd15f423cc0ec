// include/spool/error.hpp
// Spool's error codes. Expected failures travel as values (spool::result<T>);
// compare with `ec == spool::errc::timeout`.
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace spool {

enum class errc {
    job_not_found = 1,    // no job with that id (or not visible to this tenant)
    duplicate_job,        // a live job already holds the unique_key
    lease_lost,           // fencing: a newer attempt owns the job
    bad_reply,            // Redis answered something we did not expect
    timeout,              // a request outlived its deadline
    not_connected,        // the Redis connection is down and the request was not sent
    connection_lost,      // the connection dropped with the request in flight
    redis_error,          // Redis returned an error reply
    payload_too_large,    // payload over max_payload_bytes
    invalid_argument,     // a field has a wrong type or value
    result_not_ready,     // the job has not completed
    result_expired,       // the result outlived its TTL
    invalid_state,        // the transition is not allowed from the job's status
    unauthorized,         // missing or unknown API key
    forbidden,            // authenticated, but not allowed
    rate_limited,         // too many requests
    cancelled,            // the operation or job was cancelled
    shutting_down,        // the component is stopping
    handler_failed,       // a job handler reported a failure
    invalid_input,        // a handler rejected its input (no retry)
    queue_paused,         // the queue is paused
    unknown_queue,        // no handler is bound to the queue
    config_error,         // the configuration is invalid
    queue_not_found,      // no queue of that name exists
    not_replicated,       // durability: replicated, and no replica confirmed the write in time
    unknown_dependency,   // depends_on names a job that does not exist (or not visible to this tenant)
};

const boost::system::error_category& spool_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), spool_category()};
}

// Stable snake_case name of a code, as used in HTTP error bodies ("job_not_found").
const char* to_code_name(errc e) noexcept;

}  // namespace spool

template <>
struct boost::system::is_error_code_enum<spool::errc> : std::true_type {};
