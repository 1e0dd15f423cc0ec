// src/handlers/echo.hpp
// The `echo` handler: the result is the payload, unchanged (for benchmarks and
// smoke tests). Async and immediate: no thread hop, no suspension.
#pragma once

#include <spool/handler.hpp>

namespace spool::handlers {

handler make_echo_handler();

}  // namespace spool::handlers
