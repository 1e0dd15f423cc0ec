// src/http/router.cpp
#include "http/router.hpp"

#include <algorithm>

namespace spool::http {

std::string_view route_params::get(std::string_view name) const noexcept {
    for (const auto& [k, v] : items_)
        if (k == name) return v;
    return {};
}

std::vector<std::string> router::split_path(std::string_view path) {
    std::vector<std::string> out;
    if (path.empty() || path == "/") return out;
    if (path.front() == '/') path.remove_prefix(1);
    if (!path.empty() && path.back() == '/') path.remove_suffix(1);
    std::size_t start = 0;
    for (;;) {
        auto slash = path.find('/', start);
        out.emplace_back(
            path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    return out;
}

bool router::add(verb method, std::string_view pattern, int id) {
    if (pattern.empty() || pattern.front() != '/') return false;
    route r{method, std::string{pattern}, {}, id};
    for (auto& s : split_path(pattern)) {
        if (s.empty()) return false;
        auto open = s.find('{');
        auto close = s.find('}');
        if (open == std::string::npos && close == std::string::npos) {
            r.segments.push_back({std::move(s), false});
            continue;
        }
        // A parameter must be a whole segment: "{name}".
        if (open != 0 || close != s.size() - 1 || s.size() < 3) return false;
        r.segments.push_back({s.substr(1, s.size() - 2), true});
    }
    for (const auto& other : routes_) {
        if (other.method != method || other.segments.size() != r.segments.size()) continue;
        bool same_shape = true;
        for (std::size_t i = 0; i < r.segments.size() && same_shape; ++i) {
            const auto& a = r.segments[i];
            const auto& b = other.segments[i];
            same_shape = a.param == b.param && (a.param || a.text == b.text);
        }
        if (same_shape) return false;
    }
    routes_.push_back(std::move(r));
    return true;
}

bool router::matches(const route& r, const std::vector<std::string>& segments) {
    if (r.segments.size() != segments.size()) return false;
    for (std::size_t i = 0; i < segments.size(); ++i) {
        const auto& s = r.segments[i];
        if (s.param ? segments[i].empty() : s.text != segments[i]) return false;
    }
    return true;
}

bool router::more_specific(const route& a, const route& b) {
    for (std::size_t i = 0; i < a.segments.size() && i < b.segments.size(); ++i)
        if (a.segments[i].param != b.segments[i].param) return !a.segments[i].param;
    return false;
}

route_match router::match(verb method, const std::vector<std::string>& segments) const {
    route_match m;
    const route* best = nullptr;
    std::vector<verb> allowed;
    for (const auto& r : routes_) {
        if (!matches(r, segments)) continue;
        // HEAD is served wherever GET is (RFC 9110 §9.3.2): the same answer, header only.
        bool serves = r.method == method || (method == verb::head && r.method == verb::get);
        if (!serves) {
            auto allow = [&](verb v) {
                if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) allowed.push_back(v);
            };
            allow(r.method);
            if (r.method == verb::get) allow(verb::head);
            continue;
        }
        if (!best || more_specific(r, *best)) best = &r;
    }
    if (best) {
        m.kind = match_kind::found;
        m.id = best->id;
        m.pattern = best->pattern;
        for (std::size_t i = 0; i < segments.size(); ++i)
            if (best->segments[i].param) m.params.add(best->segments[i].text, segments[i]);
        return m;
    }
    if (!allowed.empty()) {
        // A path that exists for other methods: 405 with Allow.
        m.kind = match_kind::method_not_allowed;
        std::sort(allowed.begin(), allowed.end());
        for (auto v : allowed) {
            if (!m.allow.empty()) m.allow += ", ";
            m.allow += boost::beast::http::to_string(v);
        }
    }
    return m;
}

route_match router::match(verb method, std::string_view path) const {
    return match(method, split_path(path));
}

}  // namespace spool::http
