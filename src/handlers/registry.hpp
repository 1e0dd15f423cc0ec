// src/handlers/registry.hpp
// Binds queues to handlers: a queue policy's `handler` names a C++ handler
// registered in code or a built-in (exec, http, simulation, echo), and make()
// builds the spool::handler for it. Built once at worker start; immutable and
// shareable after that.
#pragma once

#include <spool/config.hpp>
#include <spool/handler.hpp>
#include <spool/result.hpp>

#include <map>
#include <string>
#include <string_view>

namespace spool::handlers {

// exec, http, simulation or echo.
bool is_builtin(std::string_view name) noexcept;

// The built-in handler named by policy.handler. errc::config_error when the name
// is not a built-in or its options are unusable (an exec policy without command,
// an http policy with a bad URL).
result<handler> make_handler(const queue_policy& policy);

class registry {
public:
    // Registers a C++ handler under `name` (replacing one of the same name). A
    // registered name is looked up before the built-ins.
    void add(std::string name, handler h);
    // The registered handler named `name`, or nullptr.
    const handler* find(std::string_view name) const;
    // The handler for `policy`: the registered one named policy.handler, else the
    // built-in; errc::config_error when there is neither.
    result<handler> make(const queue_policy& policy) const;

private:
    std::map<std::string, handler, std::less<>> handlers_;
};

}  // namespace spool::handlers
