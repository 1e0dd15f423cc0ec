// src/redis/posting_handler.hpp
// Internal: wraps a completion handler so that calling it *posts* the handler,
// with its arguments, to the handler's associated executor. The connection and
// subscriber complete requests from inside their read loops; posting keeps the
// waiting coroutine from resuming re-entrantly there.
#pragma once

#include "util/asio.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>

#include <utility>

namespace spool::redis::detail {

template <class Handler>
class posting_handler {
public:
    posting_handler(Handler h, asio::any_io_executor fallback)
        : handler_{std::move(h)}, fallback_{std::move(fallback)} {}

    template <class... Args>
    void operator()(Args&&... args) {
        auto ex = asio::get_associated_executor(handler_, fallback_);
        asio::post(ex, asio::append(std::move(handler_), std::forward<Args>(args)...));
    }

private:
    Handler handler_;
    asio::any_io_executor fallback_;
};

}  // namespace spool::redis::detail
