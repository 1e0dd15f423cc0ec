// include/spool/client.hpp
// spool::client: the producer side for C++ programs. Submits jobs straight to
// Redis (no HTTP hop) and reads their status and results.
//
//   asio::io_context io;
//   spool::client c{io.get_executor(), {.redis_url = "redis://127.0.0.1:6379/0"}};
//   auto id = co_await c.submit({.queue = "solve", .payload = R"({"n":3})"});
//
// Threading: use from the executor given at construction. Errors are values
// (spool::errc or a connection error).
#pragma once

#include <spool/job.hpp>
#include <spool/result.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <memory>
#include <string>
#include <vector>

namespace spool {

struct client_options {
    std::string redis_url = "redis://127.0.0.1:6379/0";
    std::string prefix = "spool";
    std::size_t max_payload_bytes = default_max_payload_bytes;
};

class client {
public:
    client(boost::asio::any_io_executor ex, client_options opts);
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    boost::asio::awaitable<result<submit_result>> submit(job_spec spec);
    // Batched: far fewer round trips than one submit per job. One result per spec.
    boost::asio::awaitable<result<std::vector<result<submit_result>>>> submit_many(std::vector<job_spec> specs);
    boost::asio::awaitable<result<job_record>> get(std::string id);
    // The result JSON; errc::result_not_ready / errc::result_expired otherwise.
    boost::asio::awaitable<result<std::string>> result_of(std::string id);
    boost::asio::awaitable<result<job_status>> cancel(std::string id);
    boost::asio::awaitable<result<void>> remove(std::string id);
    boost::asio::awaitable<result<void>> retry(std::string id);
    // Stops the connection; pending calls complete with errc::shutting_down.
    void close();

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace spool
