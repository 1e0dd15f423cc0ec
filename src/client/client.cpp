// src/client/client.cpp
// spool::client over store::broker and one pipelined connection.
#include <spool/client.hpp>

#include "redis/connection.hpp"
#include "store/broker.hpp"
#include "util/clock.hpp"

#include <spool/error.hpp>

#include <stdexcept>

namespace spool {

struct client::impl {
    std::shared_ptr<redis::connection> conn;
    std::unique_ptr<store::broker> broker;
};

client::client(boost::asio::any_io_executor ex, client_options opts) : impl_{std::make_unique<impl>()} {
    auto ropts = redis::parse_url(opts.redis_url);
    if (!ropts) throw std::invalid_argument("invalid Redis URL: " + opts.redis_url);
    impl_->conn = redis::connection::create(ex, *ropts);
    impl_->conn->start();
    store::broker_options bo;
    bo.prefix = opts.prefix;
    bo.max_payload_bytes = opts.max_payload_bytes;
    impl_->broker = std::make_unique<store::broker>(*impl_->conn, bo);
}

client::~client() { close(); }

void client::close() {
    if (impl_ && impl_->conn) impl_->conn->stop();
}

boost::asio::awaitable<result<submit_result>> client::submit(job_spec spec) {
    return impl_->broker->submit(std::move(spec), now_millis());
}

boost::asio::awaitable<result<std::vector<result<submit_result>>>> client::submit_many(std::vector<job_spec> specs) {
    return impl_->broker->submit_many(std::move(specs), now_millis());
}

boost::asio::awaitable<result<job_record>> client::get(std::string id) { return impl_->broker->get(std::move(id)); }

boost::asio::awaitable<result<std::string>> client::result_of(std::string id) {
    auto r = co_await impl_->broker->get_result(std::move(id));
    if (!r) co_return r.error();
    co_return std::move(r->data);
}

boost::asio::awaitable<result<job_status>> client::cancel(std::string id) {
    return impl_->broker->cancel(std::move(id), now_millis());
}

boost::asio::awaitable<result<void>> client::remove(std::string id) {
    return impl_->broker->remove(std::move(id), now_millis());
}

boost::asio::awaitable<result<void>> client::retry(std::string id) {
    return impl_->broker->retry(std::move(id), now_millis());
}

}  // namespace spool
