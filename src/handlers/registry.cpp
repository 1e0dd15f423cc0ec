// src/handlers/registry.cpp
#include "handlers/registry.hpp"

#include "handlers/echo.hpp"
#include "handlers/exec.hpp"
#include "handlers/http.hpp"
#include "handlers/simulation.hpp"

#include <spool/error.hpp>

namespace spool::handlers {

bool is_builtin(std::string_view name) noexcept {
    return name == "exec" || name == "http" || name == "simulation" || name == "echo";
}

result<handler> make_handler(const queue_policy& policy) {
    const auto& name = policy.handler;
    if (name == "echo") return make_echo_handler();
    if (name == "simulation") return make_simulation_handler(policy.simulation);
    if (name == "http") return make_http_handler(policy);
    if (name == "exec") {
        if (policy.exec.command.empty() || policy.exec.command.front().empty()) return errc::config_error;
        return make_exec_handler(policy);
    }
    return errc::config_error;
}

void registry::add(std::string name, handler h) { handlers_.insert_or_assign(std::move(name), std::move(h)); }

const handler* registry::find(std::string_view name) const {
    auto it = handlers_.find(name);
    return it == handlers_.end() ? nullptr : &it->second;
}

result<handler> registry::make(const queue_policy& policy) const {
    if (auto* h = find(policy.handler)) return *h;
    return make_handler(policy);
}

}  // namespace spool::handlers
