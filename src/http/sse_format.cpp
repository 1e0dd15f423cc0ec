// src/http/sse_format.cpp
#include "http/sse_format.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace spool::http {

namespace {

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out += name;
    out += ": ";
    for (char c : value)
        if (c != '\r' && c != '\n') out += c;
    out += '\n';
}

}  // namespace

std::string format_sse(const job_event& e) {
    std::string out;
    out.reserve(e.data.size() + e.id.size() + e.type.size() + 32);
    if (!e.id.empty()) append_field(out, "id", e.id);
    if (!e.type.empty()) append_field(out, "event", e.type);
    std::string_view data = e.data;
    for (;;) {
        auto nl = data.find_first_of("\r\n");
        out += "data: ";
        out += data.substr(0, nl);
        out += '\n';
        if (nl == std::string_view::npos) break;
        // "\r\n" is one line break.
        std::size_t skip = (data[nl] == '\r' && nl + 1 < data.size() && data[nl + 1] == '\n') ? 2 : 1;
        data.remove_prefix(nl + skip);
    }
    out += '\n';
    return out;
}

std::string format_sse_comment(std::string_view text) {
    std::string out = ": ";
    for (char c : text)
        if (c != '\r' && c != '\n') out += c;
    out += "\n\n";
    return out;
}

std::optional<job_status> event_status(const job_event& e) {
    boost::system::error_code ec;
    auto v = boost::json::parse(e.data, ec);
    if (ec || !v.is_object()) return std::nullopt;
    auto* s = v.get_object().if_contains("status");
    if (!s || !s->is_string()) return std::nullopt;
    return parse_job_status(s->get_string());
}

bool is_terminal_event(const job_event& e) {
    auto s = event_status(e);
    return s && is_terminal(*s);
}

namespace {

bool is_u64(std::string_view s) {
    if (s.empty() || s.size() > 20) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return s.size() < 20 || s <= std::string_view{"18446744073709551615"};
}

}  // namespace

bool is_valid_event_id(std::string_view id) {
    auto dash = id.find('-');
    if (dash == std::string_view::npos) return is_u64(id);
    return is_u64(id.substr(0, dash)) && is_u64(id.substr(dash + 1));
}

}  // namespace spool::http
