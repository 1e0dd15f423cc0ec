// src/ui/assets.hpp
// The dashboard's files (ui/ in the source tree), compiled into the binary by
// cmake/embed_assets.cmake. Immutable data; safe from any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace spool::ui {

// One file as the generator writes it.
struct raw_asset {
    const char* path;          // "/index.html", "/app.js", ...
    const char* content_type;  // "text/javascript; charset=utf-8", ...
    const char* etag;          // a quoted strong ETag: "\"3f2a...\""
    const unsigned char* data;
    std::size_t size;
};

struct asset {
    std::string_view path;
    std::string_view content_type;
    std::string_view etag;
    std::string_view body;
};

// Every embedded file (generated).
std::span<const raw_asset> raw_assets() noexcept;

// The file at `path` (relative to ui/, with a leading '/'), or nullopt.
std::optional<asset> find_asset(std::string_view path) noexcept;

}  // namespace spool::ui
