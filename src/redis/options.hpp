// src/redis/options.hpp
// How to reach a Redis server, parsed from a URL:
//   redis://[user:pass@]host[:port][/db]   rediss://... (TLS)   unix:///path/to.sock[?db=N]
//   host:port (the original deployment's REDIS_URL form)
//   redis://host1:7000,host2:7001[/0][?cluster=1]   several seed nodes of a Redis Cluster
//   redis+sentinel://[user:pass@]host:26379,host2:26379/<master-name>[/<db>]   (rediss+sentinel: TLS)
#pragma once

#include <spool/result.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace spool::redis {

struct tls_options {
    bool enabled = false;
    bool verify_peer = true;     // verify the server certificate (and host name)
    std::string ca_file;         // empty: system default paths
    std::string cert_file;       // client certificate (mutual TLS), optional
    std::string key_file;
    std::string server_name;     // SNI / host name check; defaults to host
};

struct endpoint {
    std::string host;
    std::uint16_t port = 6379;
    bool operator==(const endpoint&) const = default;
};
// "host:port" ("[::1]:7000" for an IPv6 address).
std::string host_port(const endpoint& e);

// Whether the server is a Redis Cluster node: said by the URL (`cluster=1|0`,
// REDIS_CLUSTER), or found out at the first connect (INFO cluster).
enum class cluster_mode : std::uint8_t { detect, on, off };

struct connection_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string unix_path;  // non-empty: connect to this unix socket instead of TCP
    std::string user;       // ACL user (empty: "default" via AUTH <password>)
    std::string password;
    int db = 0;
    tls_options tls;
    std::string client_name;  // CLIENT SETNAME, for `CLIENT LIST`
    std::chrono::milliseconds connect_timeout{3000};
    std::chrono::milliseconds request_timeout{5000};  // default per-request deadline
    std::chrono::milliseconds backoff_min{25};        // reconnect backoff: min * 2^n, capped at max
    std::chrono::milliseconds backoff_max{2000};
    // An idle link (nothing read for this long, nothing pending) is probed with a
    // PING; no answer within the same time drops it, so a silently dead link (NAT
    // timeout, frozen server) is noticed even without traffic. 0 turns it off.
    std::chrono::milliseconds health_check{15000};
    // Once a reconnect attempt has failed (Redis is down, not just blipping),
    // fail waiting and new requests at once with errc::not_connected instead of
    // holding them until their deadline. For request/response front ends (the
    // HTTP API answers 503 at once); workers leave it off and ride out restarts.
    bool fail_fast_when_down = false;
    // Every host the URL lists, in order (hosts[0] is host:port): a cluster's seed
    // nodes, or the sentinels. Reconnects go round them.
    std::vector<endpoint> hosts;
    cluster_mode cluster = cluster_mode::detect;
    // Non-empty: `hosts` are sentinels, asked for this master's address before
    // every connect (user/password above are the master's).
    std::string sentinel_master;
    std::string sentinel_user;  // the sentinels' own credentials (`sentinel_user=`, `sentinel_password=`)
    std::string sentinel_password;
    bool cluster_node = false;  // a link a cluster router opened to one node (logs its first connect quietly)
};

// Parses the URL forms above. Query parameters: db, tls_verify=0, ca, cert, key, cluster=0|1,
// sentinel_user, sentinel_password.
// Errors: errc::invalid_argument.
result<connection_options> parse_url(std::string_view url);
// The URL again, with the password masked ("redis://user:***@host:6379/0").
std::string describe(const connection_options& o);

}  // namespace spool::redis
