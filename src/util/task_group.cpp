// src/util/task_group.cpp
#include "util/task_group.hpp"

#include "util/log.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <exception>

namespace spool {

task_group::task_group(asio::any_io_executor ex) : ex_{ex}, idle_{ex} {}

task_group::~task_group() {
    *alive_ = false;
    for (auto& t : tasks_) t.signal.emit(asio::cancellation_type::terminal);
}

void task_group::spawn(asio::awaitable<void> coro, std::string name) {
    auto it = tasks_.emplace(tasks_.end());
    it->name = std::move(name);
    auto alive = alive_;
    auto done = [this, it, alive](std::exception_ptr e) {
        if (e) {
            // The group (and `it`) may be gone when a task outlives it.
            const bool cancelled = !*alive || it->cancelled;
            const std::string name = *alive ? it->name : std::string{"(of a destroyed group)"};
            try {
                std::rethrow_exception(e);
            } catch (const boost::system::system_error& ex) {
                // A co_await after cancel() throws operation_aborted: the normal way
                // for a loop to end on shutdown, not an error.
                if (cancelled && ex.code() == asio::error::operation_aborted)
                    log::get("task")->debug("task {} cancelled", name);
                else
                    log::get("task")->error("task {} ended with an exception: {}", name, ex.what());
            } catch (const std::exception& ex) {
                log::get("task")->error("task {} ended with an exception: {}", name, ex.what());
            } catch (...) {
                log::get("task")->error("task {} ended with an unknown exception", name);
            }
        }
        if (*alive) finished(it);
    };
    asio::co_spawn(ex_, std::move(coro), asio::bind_cancellation_slot(it->signal.slot(), std::move(done)));
}

void task_group::cancel() {
    for (auto& t : tasks_) {
        t.cancelled = true;
        t.signal.emit(asio::cancellation_type::terminal);
    }
}

void task_group::finished(std::list<task>::iterator it) {
    tasks_.erase(it);
    if (tasks_.empty()) idle_.cancel();
}

asio::awaitable<bool> task_group::wait(std::chrono::steady_clock::duration deadline) {
    auto until = std::chrono::steady_clock::now() + deadline;
    while (!tasks_.empty()) {
        idle_.expires_at(until);
        auto [ec] = co_await idle_.async_wait(use_tuple);
        if (!ec) co_return tasks_.empty();  // deadline passed
    }
    co_return true;
}

}  // namespace spool
