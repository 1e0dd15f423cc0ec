// app/output.hpp
// What the CLI client prints: aligned text tables, key/value listings, JSON
// values as plain text, and the live progress bar of `watch` / `submit --wait`.
// Pure functions returning text; the caller writes it.
#pragma once

#include <boost/json/value.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spool::cli {

// Columns in terminal cells (UTF-8 aware: one cell per code point; no wide glyphs).
std::size_t display_width(std::string_view utf8) noexcept;

// A text table: a header row, then rows; columns padded to their widest cell and
// separated by two spaces; the last column is not padded. A row shorter than the
// header is filled with empty cells.
class table {
public:
    explicit table(std::vector<std::string> headers);
    void add_row(std::vector<std::string> cells);
    std::size_t rows() const noexcept { return rows_.size(); }
    // Every line ends in '\n'.
    std::string render() const;

private:
    std::vector<std::string> headers_;
    std::vector<std::vector<std::string>> rows_;
};

// "key:    value" lines with the values aligned, in the given order.
std::string key_values(const std::vector<std::pair<std::string, std::string>>& rows);

// A JSON value as a table cell: strings unquoted, null as "-", arrays of
// scalars comma-joined, objects as compact JSON.
std::string cell_text(const boost::json::value& v);
// Nested objects as indented "key: value" lines (for `stats`).
std::string json_tree(const boost::json::value& v, std::size_t indent = 0);

// "[#####.....]" for 50 % at width 10; percent is clamped to 0..100.
std::string progress_bar(int percent, std::size_t width = 10);
// "[#####.....]  50%  step 5/10  in_progress" (message omitted when empty).
std::string progress_line(int percent, std::string_view message, std::string_view status,
                          std::size_t width = 10);
// The same line for redrawing in place on a terminal: "\r" + line + erase to end of line.
std::string progress_redraw(int percent, std::string_view message, std::string_view status,
                            std::size_t width = 10);

}  // namespace spool::cli
