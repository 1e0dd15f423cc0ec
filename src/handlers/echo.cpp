// src/handlers/echo.cpp
#include "handlers/echo.hpp"

namespace spool::handlers {

namespace {

boost::asio::awaitable<std::string> echo(job_context& ctx) { co_return ctx.payload(); }

}  // namespace

handler make_echo_handler() { return handler::async(&echo); }

}  // namespace spool::handlers
