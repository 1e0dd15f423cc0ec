// src/redis/script.cpp
#include "redis/script.hpp"

#include <spool/error.hpp>

#include <openssl/evp.h>

#include <stdexcept>

namespace spool::redis {

namespace {

std::string sha1_hex(std::string_view text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha1(), nullptr) != 1)
        throw std::runtime_error("SHA1 digest failed");
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        out.push_back(hex[digest[i] >> 4]);
        out.push_back(hex[digest[i] & 0xf]);
    }
    return out;
}

bool is_noscript(const result<reply>& r) { return r && r->is_error() && r->str.starts_with("NOSCRIPT"); }

}  // namespace

script::script(std::string source) : source_{std::move(source)}, sha1_{sha1_hex(source_)} {}

command script::evalsha_command(const std::vector<std::string>& keys,
                                const std::vector<std::string>& args) const {
    command cmd;
    cmd.args().reserve(3 + keys.size() + args.size());
    cmd.arg("EVALSHA").arg(sha1_).arg(keys.size());
    for (const auto& k : keys) cmd.arg(k);
    for (const auto& a : args) cmd.arg(a);
    return cmd;
}

asio::awaitable<result<reply>> script::eval(connection& conn, std::vector<std::string> keys,
                                            std::vector<std::string> args,
                                            std::chrono::milliseconds timeout) const {
    auto evalsha = evalsha_command(keys, args);
    auto first = co_await conn.exec(std::move(evalsha), timeout);
    if (!is_noscript(first)) co_return first;

    // Redis lost the script (restart, SCRIPT FLUSH, failover): load it and retry
    // once. Both go out in one write: one round trip.
    std::vector<command> retry;
    retry.reserve(2);
    retry.emplace_back("SCRIPT", "LOAD", source_);
    retry.push_back(evalsha_command(keys, args));
    auto both = co_await conn.exec_many(std::move(retry), timeout);
    if (!both) co_return both.error();
    if (both->size() != 2) co_return make_error_code(errc::bad_reply);
    // A script that does not compile: its SCRIPT LOAD error says why.
    if ((*both)[0].is_error()) co_return std::move((*both)[0]);
    co_return std::move((*both)[1]);
}

}  // namespace spool::redis
