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

// One "host[:port]" of a host list (brackets around an IPv6 address).
bool parse_host(std::string_view text, std::uint16_t default_port, endpoint& out) {
    const std::string url = "redis://" + std::string{text};  // the view below points into it
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed || !parsed->path().empty() || parsed->has_userinfo() || parsed->has_query()) return false;
    out.host = parsed->host_address();
    out.port = default_port;
    if (out.host.empty()) return false;
    if (parsed->has_port() && !parse_number<std::uint16_t>(parsed->port(), out.port, 1, 65535)) return false;
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

    // "a:1,b:2": a host list (cluster seeds, sentinels). The URL is parsed with
    // its first host; the others are checked one by one.
    std::vector<std::string> more_hosts;
    {
        auto start = text.find("://") + 3;
        auto end = text.find_first_of("/?#", start);
        if (end == std::string::npos) end = text.size();
        auto at = text.rfind('@', end);
        std::size_t hosts_at = (at != std::string::npos && at >= start) ? at + 1 : start;
        std::string list = text.substr(hosts_at, end - hosts_at);
        if (list.find(',') != std::string::npos) {
            std::size_t pos = 0;
            std::vector<std::string> items;
            while (pos <= list.size()) {
                auto comma = list.find(',', pos);
                if (comma == std::string::npos) comma = list.size();
                items.push_back(list.substr(pos, comma - pos));
                pos = comma + 1;
            }
            for (const auto& item : items)
                if (item.empty()) return errc::invalid_argument;
            more_hosts.assign(items.begin() + 1, items.end());
            text = text.substr(0, hosts_at) + items.front() + text.substr(end);
        }
    }

    auto parsed = boost::urls::parse_uri(text);
    if (!parsed) return errc::invalid_argument;
    const boost::urls::url_view& u = *parsed;

    connection_options o;
    auto scheme = lower(u.scheme());
    bool sentinel = false;
    if (scheme == "redis+sentinel" || scheme == "rediss+sentinel") {
        sentinel = true;
        scheme.resize(scheme.size() - std::string_view{"+sentinel"}.size());
    }
    if (scheme != "redis" && scheme != "rediss" && scheme != "unix") return errc::invalid_argument;
    if (scheme == "unix" && !more_hosts.empty()) return errc::invalid_argument;
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
        const std::uint16_t default_port = sentinel ? 26379 : 6379;
        o.port = default_port;
        if (u.has_port() && !parse_number<std::uint16_t>(u.port(), o.port, 1, 65535))
            return errc::invalid_argument;
        o.hosts.push_back(endpoint{o.host, o.port});
        for (const auto& h : more_hosts) {
            endpoint e;
            if (!parse_host(h, default_port, e)) return errc::invalid_argument;
            o.hosts.push_back(std::move(e));
        }
        std::string path = u.path();
        if (sentinel) {
            // /<master-name>[/<db>]
            if (path.size() < 2 || path.front() != '/') return errc::invalid_argument;
            auto rest = std::string_view{path}.substr(1);
            auto slash = rest.find('/');
            o.sentinel_master = std::string{rest.substr(0, slash)};
            if (o.sentinel_master.empty()) return errc::invalid_argument;
            path = slash == std::string_view::npos ? std::string{} : std::string{rest.substr(slash)};
            o.cluster = cluster_mode::off;
        }
        if (!path.empty() && path != "/") {
            if (path.front() != '/') return errc::invalid_argument;
            if (!parse_number<int>(std::string_view{path}.substr(1), o.db, 0,
                                   std::numeric_limits<int>::max()))
                return errc::invalid_argument;
        }
        // The certificate is checked against the host connected to (tls.server_name
        // empty): a cluster node's or a sentinel-named master's, not the URL's first.
        if (scheme == "rediss") o.tls.enabled = true;
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
        } else if (p.key == "cluster" && !sentinel) {
            bool on = false;
            if (!parse_bool(p.value, on)) return errc::invalid_argument;
            o.cluster = on ? cluster_mode::on : cluster_mode::off;
        } else if (p.key == "sentinel_user" && sentinel) {
            o.sentinel_user = p.value;
        } else if (p.key == "sentinel_password" && sentinel) {
            o.sentinel_password = p.value;
        } else {
            // Strict: a misspelt parameter would otherwise silently do nothing.
            return errc::invalid_argument;
        }
    }
    if (o.tls.cert_file.empty() != o.tls.key_file.empty()) return errc::invalid_argument;
    // Redis Cluster has database 0 only.
    if (o.cluster == cluster_mode::on && o.db != 0) return errc::invalid_argument;
    return o;
}

std::string host_port(const endpoint& e) {
    return (e.host.find(':') != std::string::npos ? "[" + e.host + "]" : e.host) + ":" + std::to_string(e.port);
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
    std::string hosts = host_port(endpoint{o.host, o.port});
    for (std::size_t i = 1; i < o.hosts.size(); ++i) hosts += "," + host_port(o.hosts[i]);
    if (!o.sentinel_master.empty()) {
        hosts.clear();
        for (const auto& h : o.hosts) hosts += (hosts.empty() ? "" : ",") + host_port(h);
        return (o.tls.enabled ? "rediss+sentinel://" : "redis+sentinel://") + auth + hosts + "/" +
               o.sentinel_master + "/" + std::to_string(o.db);
    }
    std::string s = (o.tls.enabled ? "rediss://" : "redis://") + auth + hosts + "/" + std::to_string(o.db);
    if (o.cluster == cluster_mode::on) s += "?cluster=1";
    return s;
}

}  // namespace spool::redis
