// src/ui/assets.cpp
#include "ui/assets.hpp"

namespace spool::ui {

std::optional<asset> find_asset(std::string_view path) noexcept {
    for (const auto& a : raw_assets())
        if (path == a.path)
            return asset{a.path, a.content_type, a.etag,
                         std::string_view{reinterpret_cast<const char*>(a.data), a.size}};
    return std::nullopt;
}

}  // namespace spool::ui
