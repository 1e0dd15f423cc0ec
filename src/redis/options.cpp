// src/redis/options.cpp
#include "redis/options.hpp"

#include <spool/error.hpp>

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

namespace spool::redis {

namespace {

std::string lower(std::string_view s) {
    std::string out{s};
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

template <class I>
bool parse_number(std::string_view s, I& out, I min, I max) {
    long long v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return false;
    if (v < static_cast<long long>(min) || v > static_cast<long long>(max)) return false;
    out = static_cast<I>(v);
    return true;
}

bool parse_bool(std::string_view s, bool& out) {
    auto v = lower(s);
    if (v == "1" || v == "true" || v == "yes" || v == "on")
        out = true;
    else if (v == "0" || v == "false" || v == "no" || v == "off")
        out = false;
    else
        return false;
    return true;
}

}  // namespace

result<connection_options> parse_url(std::string_view url) {
    auto first = url.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return errc::invalid_argument;
    url = url.substr(first, url.find_last_not_of(" \t\r\n") - first + 1);

    // "host", "host:port" (REDIS_URL=localhost:6379): no scheme, so read as redis://.
    std::string text{url};
    if (text.find("://") == std::string::npos) text = "redis://" + text;
    auto parsed = boost::urls::parse_uri(text);
    if (!parsed) return errc::invalid_argument;
    const boost::urls::url_view& u = *parsed;

    connection_options o;
    auto scheme = lower(u.scheme());
    if (scheme != "redis" && scheme != "rediss" && scheme != "unix") return errc::invalid_argument;
    if (u.has_fragment()) return errc::invalid_argument;

    if (u.has_userinfo()) {
        o.user = u.user();
        if (u.has_password()) o.password = u.password();
    }

    if (scheme == "unix") {
        // unix:///path/to.sock: no host, the path is the socket.
        if (!u.host_address().empty() || u.has_port()) return errc::invalid_argument;
        o.unix_path = u.path();
        if (o.unix_path.empty() || o.unix_path == "/") return errc::invalid_argument;
    } else {
        o.host = u.host_address();
        if (o.host.empty()) return errc::invalid_argument;
        if (u.has_port() && !parse_number<std::uint16_t>(u.port(), o.port, 1, 65535))
            return errc::invalid_argument;
        std::string path = u.path();
        if (!path.empty() && path != "/") {
            if (path.front() != '/') return errc::invalid_argument;
            if (!parse_number<int>(std::string_view{path}.substr(1), o.db, 0,
                                   std::numeric_limits<int>::max()))
                return errc::invalid_argument;
        }
        if (scheme == "rediss") {
            o.tls.enabled = true;
            o.tls.server_name = o.host;
        }
    }

    for (auto p : u.params()) {
        if (p.key == "db") {
            if (!parse_number<int>(p.value, o.db, 0, std::numeric_limits<int>::max()))
                return errc::invalid_argument;
        } else if (p.key == "tls_verify") {
            if (!parse_bool(p.value, o.tls.verify_peer)) return errc::invalid_argument;
        } else if (p.key == "ca") {
            o.tls.ca_file = p.value;
        } else if (p.key == "cert") {
            o.tls.cert_file = p.value;
        } else if (p.key == "key") {
            o.tls.key_file = p.value;
        } else {
            // Strict: a misspelt parameter would otherwise silently do nothing.
            return errc::invalid_argument;
        }
    }
    if (o.tls.cert_file.empty() != o.tls.key_file.empty()) return errc::invalid_argument;
    return o;
}

std::string describe(const connection_options& o) {
    std::string auth;
    if (!o.user.empty() || !o.password.empty()) {
        auth = o.user;
        if (!o.password.empty()) auth += ":***";
        auth += "@";
    }
    if (!o.unix_path.empty()) {
        std::string s = "unix://" + auth + o.unix_path;
        if (o.db != 0) s += "?db=" + std::to_string(o.db);
        return s;
    }
    std::string host = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
    return (o.tls.enabled ? "rediss://" : "redis://") + auth + host + ":" + std::to_string(o.port) + "/" +
           std::to_string(o.db);
}

}  // namespace spool::redis
