// src/handlers/stderr_parser.cpp
#include "handlers/stderr_parser.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace spool::handlers {

namespace {

constexpr std::size_t max_line = 64 * 1024;  // longer lines cannot be progress lines
constexpr std::string_view keyword = "PROGRESS";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && (is_space(s.back()) || s.back() == '\n')) s.remove_suffix(1);
    return s;
}

}  // namespace

std::optional<progress_line> parse_progress_line(std::string_view line) {
    line = trim(line);
    if (line.substr(0, keyword.size()) != keyword) return std::nullopt;
    line.remove_prefix(keyword.size());
    if (line.empty() || !is_space(line.front())) return std::nullopt;
    line = trim(line);
    auto token_size =
        static_cast<std::size_t>(std::find_if(line.begin(), line.end(), is_space) - line.begin());
    auto number = line.substr(0, token_size);
    if (!number.empty() && number.back() == '%') number.remove_suffix(1);
    double value = 0;
    auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (number.empty() || ec != std::errc{} || p != number.data() + number.size() || !std::isfinite(value))
        return std::nullopt;
    progress_line out;
    out.percent = static_cast<int>(std::clamp(value, 0.0, 100.0));
    out.message = std::string{trim(line.substr(token_size))};
    return out;
}

void stderr_parser::feed(std::string_view chunk) {
    total_ += chunk.size();
    while (!chunk.empty()) {
        auto nl = chunk.find('\n');
        auto piece = chunk.substr(0, nl);
        if (long_line_) {
            keep(piece);
        } else if (partial_.size() + piece.size() > max_line) {
            long_line_ = true;
            keep(partial_);
            keep(piece);
            partial_.clear();
        } else {
            partial_.append(piece);
        }
        if (nl == std::string_view::npos) break;
        if (long_line_) {
            keep("\n");
            long_line_ = false;
        } else {
            line(partial_);
            partial_.clear();
        }
        chunk.remove_prefix(nl + 1);
    }
}

void stderr_parser::finish() {
    if (!partial_.empty()) line(partial_);
    partial_.clear();
    long_line_ = false;
}

void stderr_parser::line(std::string_view l) {
    if (auto p = parse_progress_line(l)) {
        if (on_progress_) on_progress_(p->percent, std::move(p->message));
        return;
    }
    keep(l);
    keep("\n");
}

void stderr_parser::keep(std::string_view text) {
    tail_.append(text);
    if (tail_.size() > 2 * tail_bytes_) {
        tail_.erase(0, tail_.size() - tail_bytes_);
        cut_ = true;
    }
}

std::string stderr_parser::tail() const {
    std::string_view t = tail_;
    bool cut = cut_;
    if (t.size() > tail_bytes_) {
        t.remove_prefix(t.size() - tail_bytes_);
        cut = true;
    }
    if (cut)  // do not start inside a UTF-8 sequence
        while (!t.empty() && (static_cast<unsigned char>(t.front()) & 0xC0) == 0x80) t.remove_prefix(1);
    t = trim(t);
    if (t.empty()) return {};
    return cut ? "..." + std::string{t} : std::string{t};
}

}  // namespace spool::handlers
