// app/output.cpp
#include "app/output.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>

namespace spool::cli {

namespace json = boost::json;

std::size_t display_width(std::string_view utf8) noexcept {
    // Count every byte that does not continue a multi-byte sequence.
    return static_cast<std::size_t>(std::count_if(
        utf8.begin(), utf8.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

namespace {

void pad_to(std::string& out, std::string_view cell, std::size_t width) {
    out += cell;
    auto w = display_width(cell);
    if (w < width) out.append(width - w, ' ');
}

}  // namespace

table::table(std::vector<std::string> headers) : headers_{std::move(headers)} {}

void table::add_row(std::vector<std::string> cells) {
    cells.resize(std::max(cells.size(), headers_.size()));
    rows_.push_back(std::move(cells));
}

std::string table::render() const {
    std::size_t columns = headers_.size();
    for (const auto& r : rows_) columns = std::max(columns, r.size());
    std::vector<std::size_t> widths(columns, 0);
    auto measure = [&](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], display_width(row[i]));
    };
    measure(headers_);
    for (const auto& r : rows_) measure(r);

    std::string out;
    auto emit = [&](const std::vector<std::string>& row) {
        std::string line;
        for (std::size_t i = 0; i < columns; ++i) {
            std::string_view cell = i < row.size() ? std::string_view{row[i]} : std::string_view{};
            if (i + 1 == columns)
                line += cell;
            else {
                pad_to(line, cell, widths[i]);
                line += "  ";
            }
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line;
        out += '\n';
    };
    emit(headers_);
    for (const auto& r : rows_) emit(r);
    return out;
}

std::string key_values(const std::vector<std::pair<std::string, std::string>>& rows) {
    std::size_t width = 0;
    for (const auto& [k, v] : rows) width = std::max(width, display_width(k) + 1);
    std::string out;
    for (const auto& [k, v] : rows) {
        pad_to(out, k + ":", width);
        out += "  ";
        out += v;
        out += '\n';
    }
    return out;
}

std::string cell_text(const json::value& v) {
    switch (v.kind()) {
        case json::kind::null:
            return "-";
        case json::kind::string:
            return std::string{v.get_string()};
        case json::kind::bool_:
            return v.get_bool() ? "yes" : "no";
        case json::kind::array: {
            const auto& a = v.get_array();
            bool scalars =
                std::all_of(a.begin(), a.end(), [](const json::value& e) { return !e.is_structured(); });
            if (!scalars) return json::serialize(v);
            std::string out;
            for (const auto& e : a) out += (out.empty() ? "" : ",") + cell_text(e);
            return out.empty() ? "-" : out;
        }
        case json::kind::object:
            return json::serialize(v);
        default:
            return json::serialize(v);  // numbers
    }
}

std::string json_tree(const json::value& v, std::size_t indent) {
    if (!v.is_object()) return std::string(indent, ' ') + cell_text(v) + "\n";
    const auto& o = v.get_object();
    std::size_t width = 0;
    for (const auto& kv : o)
        if (!kv.value().is_object()) width = std::max(width, display_width(kv.key()) + 1);
    std::string out;
    for (const auto& kv : o) {
        out.append(indent, ' ');
        std::string key = std::string{kv.key()} + ":";
        if (kv.value().is_object()) {
            out += key + "\n";
            out += json_tree(kv.value(), indent + 2);
        } else {
            pad_to(out, key, width);
            out += "  " + cell_text(kv.value()) + "\n";
        }
    }
    return out;
}

std::string progress_bar(int percent, std::size_t width) {
    percent = std::clamp(percent, 0, 100);
    std::size_t filled = static_cast<std::size_t>(percent) * width / 100;
    std::string out = "[";
    out.append(filled, '#');
    out.append(width - filled, '.');
    out += ']';
    return out;
}

std::string progress_line(int percent, std::string_view message, std::string_view status, std::size_t width) {
    percent = std::clamp(percent, 0, 100);
    std::string pct = std::to_string(percent) + "%";
    std::string out = progress_bar(percent, width) + " ";
    out.append(4 - std::min<std::size_t>(pct.size(), 4), ' ');
    out += pct;
    if (!message.empty()) {
        out += "  ";
        // One line, whatever the handler sent: control characters would break the redraw.
        for (char c : message) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
    }
    if (!status.empty()) {
        out += "  ";
        out += status;
    }
    return out;
}

std::string progress_redraw(int percent, std::string_view message, std::string_view status,
                            std::size_t width) {
    return "\r" + progress_line(percent, message, status, width) + "\x1b[K";
}

}  // namespace spool::cli
