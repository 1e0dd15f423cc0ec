// src/util/task_group.hpp
// Tracks the background coroutines of one component so shutdown can be orderly:
// stop accepting, cancel() the group, then wait() with a deadline. A task's
// unexpected exception is logged here and nowhere else.
#pragma once

#include "util/asio.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <list>
#include <memory>
#include <string>

namespace spool {

class task_group {
public:
    explicit task_group(asio::any_io_executor ex);
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;
    ~task_group();

    // Starts `task` on the group's executor. Call from that executor.
    void spawn(asio::awaitable<void> task, std::string name);
    // Delivers a terminal cancellation to every running task. Idempotent.
    void cancel();
    // Waits until every task has finished or `deadline` passed; true when all finished.
    asio::awaitable<bool> wait(std::chrono::steady_clock::duration deadline);
    std::size_t size() const noexcept { return tasks_.size(); }

private:
    struct task {
        asio::cancellation_signal signal;
        std::string name;
        bool cancelled = false;  // cancel() reached it: operation_aborted is its normal end
    };
    void finished(std::list<task>::iterator it);

    asio::any_io_executor ex_;
    std::list<task> tasks_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    asio::steady_timer idle_;
};

}  // namespace spool
