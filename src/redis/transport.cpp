// src/redis/transport.cpp
#include "redis/transport.hpp"

#include "redis/command.hpp"
#include "util/log.hpp"

#include <spool/error.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/un.h>

#include <array>
#include <string_view>

namespace spool::redis::detail {

namespace ssl = asio::ssl;
using boost::system::error_code;

namespace {

asio::awaitable<transport::io_result> not_open() {
    co_return transport::io_result{asio::error::not_connected, 0};
}

struct read_visitor {
    asio::mutable_buffer buf;
    asio::awaitable<transport::io_result> operator()(std::monostate&) const { return not_open(); }
    template <class Stream>
    asio::awaitable<transport::io_result> operator()(Stream& s) const {
        return s.async_read_some(buf, use_tuple);
    }
};

struct write_visitor {
    asio::const_buffer buf;
    asio::awaitable<transport::io_result> operator()(std::monostate&) const { return not_open(); }
    template <class Stream>
    asio::awaitable<transport::io_result> operator()(Stream& s) const {
        return asio::async_write(s, buf, use_tuple);
    }
};

struct close_visitor {
    void operator()(std::monostate&) const noexcept {}
    void operator()(transport::tls_stream& s) const noexcept {
        error_code ignored;
        s.lowest_layer().close(ignored);
    }
    template <class Socket>
    void operator()(Socket& s) const noexcept {
        error_code ignored;
        s.close(ignored);
    }
};

bool is_ip_address(const std::string& host) {
    error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

}  // namespace

transport::transport(asio::any_io_executor ex, const connection_options& opts)
    : ex_{ex}, opts_{opts}, resolver_{ex}, connect_timer_{ex}, self_{std::make_shared<transport*>(this)} {
    if (!opts_.tls.enabled) return;
    tls_ctx_ = std::make_unique<ssl::context>(ssl::context::tls_client);
    tls_ctx_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                          ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    error_code ec;
    if (opts_.tls.ca_file.empty()) {
        tls_ctx_->set_default_verify_paths(ec);
        if (ec) tls_error_ = "TLS: cannot load the system CA paths: " + ec.message();
    } else {
        tls_ctx_->load_verify_file(opts_.tls.ca_file, ec);
        if (ec) tls_error_ = "TLS: cannot load CA file " + opts_.tls.ca_file + ": " + ec.message();
    }
    if (tls_error_.empty() && !opts_.tls.cert_file.empty()) {
        tls_ctx_->use_certificate_chain_file(opts_.tls.cert_file, ec);
        if (ec)
            tls_error_ = "TLS: cannot load certificate " + opts_.tls.cert_file + ": " + ec.message();
        else {
            tls_ctx_->use_private_key_file(opts_.tls.key_file, ssl::context::pem, ec);
            if (ec) tls_error_ = "TLS: cannot load key " + opts_.tls.key_file + ": " + ec.message();
        }
    }
}

transport::~transport() {
    *self_ = nullptr;
    close();
}

asio::awaitable<transport::io_result> transport::read_some(asio::mutable_buffer buf) {
    return std::visit(read_visitor{buf}, stream_);
}

asio::awaitable<transport::io_result> transport::write(asio::const_buffer buf) {
    return std::visit(write_visitor{buf}, stream_);
}

void transport::close() noexcept {
    closed_ = true;
    std::visit(close_visitor{}, stream_);
    resolver_.cancel();
}

void transport::on_connect_timeout(std::uint64_t generation) {
    if (!opening_ || generation != generation_) return;  // that open() already finished
    timed_out_ = true;
    close();
}

asio::awaitable<open_result> transport::open(reply_reader& reader) {
    reader.reset();
    closed_ = false;
    opening_ = true;
    timed_out_ = false;
    auto generation = ++generation_;
    // The deadline closes the stream, which aborts whatever step open() is in.
    connect_timer_.expires_after(opts_.connect_timeout);
    auto on_timeout = [self = std::weak_ptr<transport*>{self_}, generation](error_code ec) {
        if (ec) return;
        if (auto alive = self.lock(); alive && *alive) (*alive)->on_connect_timeout(generation);
    };
    connect_timer_.async_wait(std::move(on_timeout));

    open_result res = co_await open_stream();
    if (!res.ec) res = co_await handshake(reader);
    opening_ = false;
    connect_timer_.cancel();
    if (res.ec && timed_out_) {
        res.why =
            "timed out after " + std::to_string(opts_.connect_timeout.count()) + " ms (" + res.why + ")";
        res.ec = errc::timeout;
        res.rejected = false;
    }
    if (res.ec) close();
    co_return res;
}

asio::awaitable<open_result> transport::open_stream() {
    if (!tls_error_.empty()) co_return open_result{errc::config_error, tls_error_, true};

    if (!opts_.unix_path.empty()) {
        if (opts_.unix_path.size() >= sizeof(sockaddr_un::sun_path))
            co_return open_result{errc::config_error, "unix socket path too long: " + opts_.unix_path, true};
        auto& s = stream_.emplace<unix_socket>(ex_);
        asio::local::stream_protocol::endpoint ep{opts_.unix_path};
        auto [ec] = co_await s.async_connect(ep, use_tuple);
        if (ec) co_return open_result{ec, "connect " + opts_.unix_path + ": " + ec.message()};
        co_return open_result{};
    }

    auto where = opts_.host + ":" + std::to_string(opts_.port);
    auto [rec, endpoints] =
        co_await resolver_.async_resolve(opts_.host, std::to_string(opts_.port), use_tuple);
    if (rec) co_return open_result{rec, "resolve " + opts_.host + ": " + rec.message()};
    // close() during the lookup had no socket to abort yet.
    if (closed_) co_return open_result{asio::error::operation_aborted, "closed while connecting"};

    tcp_socket* sock = nullptr;
    tls_stream* tls = nullptr;
    if (opts_.tls.enabled) {
        tls = &stream_.emplace<tls_stream>(ex_, *tls_ctx_);
        sock = &tls->next_layer();
    } else {
        sock = &stream_.emplace<tcp_socket>(ex_);
    }
    auto [cec, ep] = co_await asio::async_connect(*sock, endpoints, use_tuple);
    if (cec) co_return open_result{cec, "connect " + where + ": " + cec.message()};
    error_code ignored;
    sock->set_option(asio::ip::tcp::no_delay{true}, ignored);
    sock->set_option(asio::socket_base::keep_alive{true}, ignored);
    if (!tls) co_return open_result{};

    const std::string& name = opts_.tls.server_name.empty() ? opts_.host : opts_.tls.server_name;
    if (opts_.tls.verify_peer) {
        tls->set_verify_mode(ssl::verify_peer);
        tls->set_verify_callback(ssl::host_name_verification{name});
    } else {
        tls->set_verify_mode(ssl::verify_none);
    }
    // SNI carries host names only, never addresses.
    if (!is_ip_address(name)) SSL_set_tlsext_host_name(tls->native_handle(), name.c_str());
    auto [hec] = co_await tls->async_handshake(ssl::stream_base::client, use_tuple);
    if (hec) {
        open_result res{hec, "TLS handshake with " + where + ": " + hec.message()};
        long verify = SSL_get_verify_result(tls->native_handle());
        if (opts_.tls.verify_peer && verify != X509_V_OK)
            res.why += std::string{" ("} + X509_verify_cert_error_string(verify) + ")";
        // An OpenSSL error (untrusted or mismatched certificate, not a TLS port...) is
        // configuration; a dropped connection (eof, stream truncated) is not.
        res.rejected = hec.category() == asio::error::get_ssl_category();
        co_return res;
    }
    co_return open_result{};
}

asio::awaitable<open_result> transport::handshake(reply_reader& reader) {
    std::string out;
    std::array<const char*, 6> steps{};
    std::size_t n = 0;
    if (!opts_.password.empty() || !opts_.user.empty()) {
        command auth{"AUTH"};
        if (!opts_.user.empty()) auth.arg(opts_.user);
        auth.arg(opts_.password);
        auth.encode_to(out);
        steps[n++] = "AUTH";
    }
    if (opts_.db != 0) {
        command{"SELECT", opts_.db}.encode_to(out);
        steps[n++] = "SELECT";
    }
    if (!opts_.client_name.empty()) {
        command{"CLIENT", "SETNAME", opts_.client_name}.encode_to(out);
        steps[n++] = "CLIENT SETNAME";
    }
    const bool detect_cluster = opts_.cluster == cluster_mode::detect && opts_.unix_path.empty();
    if (detect_cluster) {
        command{"INFO", "cluster"}.encode_to(out);
        steps[n++] = "INFO cluster";
    }
    // Behind a sentinel: the node it named must still be the master (a failover
    // may be under way).
    if (!opts_.sentinel_master.empty()) {
        command{"ROLE"}.encode_to(out);
        steps[n++] = "ROLE";
    }
    // PING last: the link is only up when the server answers commands (not LOADING).
    command{"PING"}.encode_to(out);
    steps[n++] = "PING";

    auto [wec, written] = co_await write(asio::buffer(out));
    if (wec) co_return open_result{wec, "handshake: " + wec.message()};

    open_result res;
    std::array<char, 2048> buf;
    std::size_t got = 0;
    while (got < n) {
        auto next = reader.next();
        if (!next) co_return open_result{errc::bad_reply, "handshake: protocol error"};
        if (*next) {
            const reply& r = **next;
            const std::string_view step = steps[got];
            if (step == "INFO cluster") {
                // An ACL without INFO: not a cluster as far as we can tell.
                res.cluster_enabled = !r.is_error() && r.str.find("cluster_enabled:1") != std::string::npos;
                ++got;
                continue;
            }
            if (step == "ROLE" && !r.is_error()) {
                bool master = r.is_array() && !r.elements.empty() && r.elements[0].str == "master";
                if (!master && !res.ec) {
                    res.ec = errc::redis_error;
                    res.why = host_port(endpoint{opts_.host, opts_.port}) + ", named master of \"" +
                              opts_.sentinel_master + "\" by the sentinels, is a " +
                              (r.is_array() && !r.elements.empty() ? r.elements[0].str : std::string{"?"});
                }
                ++got;
                continue;
            }
            if (r.is_error() && step == "AUTH" &&
                r.str.find("without any password configured") != std::string::npos) {
                // A password for a server that needs none: harmless, so connect anyway.
                log::get("redis")->warn("{}: the server has no password set; AUTH ignored", describe(opts_));
            } else if (r.is_error() && !res.ec) {
                res.ec = errc::redis_error;
                res.why = std::string{steps[got]} + " refused: " + r.str;
                // A LOADING or BUSY server will answer PING later; refused credentials
                // (NOAUTH: a password is needed), a bad db index or a forbidden SETNAME
                // will not fix themselves.
                res.rejected = std::string_view{steps[got]} != "PING" || r.str.starts_with("NOAUTH") ||
                               r.str.starts_with("NOPERM") || r.str.starts_with("WRONGPASS");
            }
            ++got;
            continue;
        }
        auto [rec, len] = co_await read_some(asio::buffer(buf));
        if (rec) {
            auto why = rec == asio::error::eof ? std::string{"server closed the connection"} : rec.message();
            co_return open_result{rec, "handshake: " + why};
        }
        if (!reader.feed(std::string_view{buf.data(), len}))
            co_return open_result{errc::bad_reply, "handshake: protocol error"};
    }
    co_return res;
}

}  // namespace spool::redis::detail
