// src/http/router.hpp
// Maps (method, path) to a route id and its path parameters. Sans-io: the server
// keeps the route functions in a table indexed by the id; router_test.cpp tests
// the matching with plain strings.
//
// Patterns are '/'-separated segments; a segment "{name}" captures one whole
// (percent-decoded) segment. Precedence does not depend on registration order:
// among the patterns that match, the one whose first differing segment is a
// literal wins, so "/solve/async/stats" beats "/solve/async/{id}". A single
// trailing slash is ignored ("/api/jobs/" is "/api/jobs").
#pragma once

#include <ostream>  // before Boost: 1.81's core/detail/string_view.hpp uses std::ostream

#include <boost/beast/http/verb.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spool::http {

using verb = boost::beast::http::verb;

// Path parameters of a match, in pattern order.
class route_params {
public:
    void add(std::string name, std::string value) { items_.emplace_back(std::move(name), std::move(value)); }
    // The value of `name`, or "" when the pattern has no such parameter.
    std::string_view get(std::string_view name) const noexcept;
    const std::vector<std::pair<std::string, std::string>>& items() const noexcept { return items_; }

private:
    std::vector<std::pair<std::string, std::string>> items_;
};

enum class match_kind { found, not_found, method_not_allowed };

struct route_match {
    match_kind kind = match_kind::not_found;
    int id = -1;               // the route id given to add() (found only)
    std::string_view pattern;  // the matched pattern (found only); lives as long as the router
    route_params params;
    std::string allow;  // method_not_allowed: "GET, POST" (the Allow header)
};

class router {
public:
    // Registers `pattern` for `method` under `id`. Returns false (and adds nothing)
    // when the pattern is malformed (not starting with '/', empty or unclosed "{")
    // or the same method + pattern shape is already registered.
    bool add(verb method, std::string_view pattern, int id);

    // Matches already-decoded path segments ("/a/b" → {"a","b"}).
    route_match match(verb method, const std::vector<std::string>& segments) const;
    // Convenience for tests and simple callers: splits `path` on '/' (no decoding).
    route_match match(verb method, std::string_view path) const;

    // "/a/b/" → {"a","b"}; "/" → {}. A single trailing empty segment is dropped.
    static std::vector<std::string> split_path(std::string_view path);

private:
    struct segment {
        std::string text;  // literal text, or the parameter name
        bool param = false;
    };
    struct route {
        verb method;
        std::string pattern;
        std::vector<segment> segments;
        int id;
    };
    static bool matches(const route& r, const std::vector<std::string>& segments);
    // True when `a` should win over `b` (both match the same path).
    static bool more_specific(const route& a, const route& b);

    std::vector<route> routes_;
};

}  // namespace spool::http
