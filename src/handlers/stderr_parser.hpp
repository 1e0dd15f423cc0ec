// src/handlers/stderr_parser.hpp
// Reads an exec child's stderr as it arrives (sans-io: bytes in, events out):
// lines `PROGRESS <percent> [message]` become progress reports, everything else
// is kept as a bounded tail for the error message of a failed attempt.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace spool::handlers {

struct progress_line {
    int percent = 0;  // clamped to 0..100
    std::string message;
};

// Parses one line (without its newline): "PROGRESS 42", "PROGRESS 42.5 half way",
// "PROGRESS 42% msg". nullopt when the line is not a progress line.
std::optional<progress_line> parse_progress_line(std::string_view line);

class stderr_parser {
public:
    using progress_fn = std::function<void(int percent, std::string message)>;

    explicit stderr_parser(progress_fn on_progress, std::size_t tail_bytes = 2048)
        : on_progress_{std::move(on_progress)}, tail_bytes_{tail_bytes} {}

    // Feeds the next chunk; complete progress lines are reported at once.
    void feed(std::string_view chunk);
    // End of stream: a last line without a newline is handled too.
    void finish();
    // The last `tail_bytes` of non-progress output, trimmed, starting on a UTF-8
    // boundary and prefixed with "..." when cut.
    std::string tail() const;
    // Bytes fed so far.
    std::size_t total_bytes() const noexcept { return total_; }

private:
    void line(std::string_view l);
    void keep(std::string_view text);

    progress_fn on_progress_;
    std::size_t tail_bytes_;
    std::size_t total_ = 0;
    std::string partial_;     // the current line so far
    bool long_line_ = false;  // the current line outgrew the line limit: plain output
    std::string tail_;        // recent non-progress output (up to 2 * tail_bytes_)
    bool cut_ = false;        // older output was dropped from tail_
};

}  // namespace spool::handlers
