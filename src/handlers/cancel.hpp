// src/handlers/cancel.hpp
// How built-in handlers end a cancelled attempt: they throw job_failure with the
// reason as text; the worker runtime reads the real reason from job_context.
#pragma once

#include <spool/handler.hpp>
#include <spool/job_context.hpp>

#include <string>

namespace spool::handlers {

inline std::string cancel_message(cancel_reason r) {
    switch (r) {
        case cancel_reason::timeout:
            return "timed out";
        case cancel_reason::shutdown:
            return "worker shutting down";
        default:
            return "cancelled";
    }
}

[[noreturn]] inline void throw_cancelled(const job_context& ctx) {
    throw job_failure{cancel_message(ctx.reason())};
}

}  // namespace spool::handlers
