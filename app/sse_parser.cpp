// app/sse_parser.cpp
#include "app/sse_parser.hpp"

#include <charconv>

namespace spool::cli {

std::vector<sse_event> sse_parser::feed(std::string_view chunk) {
    std::vector<sse_event> out;
    if (!bom_checked_ && !chunk.empty()) {
        // A UTF-8 byte order mark may open the stream; it can arrive split, so wait for 3 bytes.
        partial_.append(chunk);
        if (partial_.size() < 3 && std::string_view{"\xEF\xBB\xBF"}.starts_with(partial_)) return out;
        bom_checked_ = true;
        if (partial_.starts_with("\xEF\xBB\xBF")) partial_.erase(0, 3);
        std::string pending = std::move(partial_);
        partial_.clear();
        auto events = feed(pending);
        return events;
    }
    std::size_t pos = 0;
    if (skip_lf_ && !chunk.empty()) {
        if (chunk.front() == '\n') pos = 1;
        skip_lf_ = false;
    }
    while (pos < chunk.size()) {
        auto end = chunk.find_first_of("\r\n", pos);
        if (end == std::string_view::npos) {
            partial_.append(chunk.substr(pos));
            break;
        }
        if (partial_.empty()) {
            line(chunk.substr(pos, end - pos), out);
        } else {
            partial_.append(chunk.substr(pos, end - pos));
            line(partial_, out);
            partial_.clear();
        }
        if (chunk[end] == '\r') {
            if (end + 1 < chunk.size()) {
                if (chunk[end + 1] == '\n') ++end;
            } else {
                skip_lf_ = true;
            }
        }
        pos = end + 1;
    }
    return out;
}

void sse_parser::reset_pending() {
    partial_.clear();
    skip_lf_ = false;
    bom_checked_ = false;
    data_.clear();
    has_data_ = false;
    type_.clear();
    id_buffer_ = last_id_;
}

void sse_parser::line(std::string_view l, std::vector<sse_event>& out) {
    if (l.empty()) {
        // The id takes effect when its event ends, so a half-received event's id is never resumed from.
        last_id_ = id_buffer_;
        if (has_data_) out.push_back(sse_event{last_id_, type_.empty() ? "message" : type_, data_});
        data_.clear();
        has_data_ = false;
        type_.clear();
        return;
    }
    if (l.front() == ':') return;  // comment (keep-alive)
    auto colon = l.find(':');
    std::string_view field = l.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
        value = l.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
        if (has_data_) data_ += '\n';
        data_.append(value);
        has_data_ = true;
    } else if (field == "event") {
        type_.assign(value);
    } else if (field == "id") {
        if (value.find('\0') == std::string_view::npos) id_buffer_.assign(value);
    } else if (field == "retry") {
        long ms = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
        if (ec == std::errc{} && p == value.data() + value.size()) retry_ms_ = ms;
    }
}

}  // namespace spool::cli
