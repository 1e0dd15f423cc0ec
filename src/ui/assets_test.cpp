// src/ui/assets_test.cpp
// The embedded dashboard: every file of ui/ is in the binary, byte for byte,
// with a content type and its own ETag.
#include "ui/assets.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace {

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in{p, std::ios::binary};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

TEST(UiAssets, EveryFileOfUiIsEmbeddedByteForByte) {
    const char* src = std::getenv("SPOOL_SOURCE_DIR");
    ASSERT_NE(src, nullptr) << "ctest sets SPOOL_SOURCE_DIR";
    const std::filesystem::path dir = std::filesystem::path{src} / "ui";
    std::size_t files = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator{dir}) {
        if (!e.is_regular_file()) continue;
        ++files;
        auto rel = "/" + std::filesystem::relative(e.path(), dir).generic_string();
        auto a = spool::ui::find_asset(rel);
        ASSERT_TRUE(a.has_value()) << rel << " is not embedded";
        EXPECT_EQ(a->body, read_file(e.path())) << rel;
    }
    EXPECT_EQ(spool::ui::raw_assets().size(), files);
    EXPECT_GE(files, 5u);
}

TEST(UiAssets, ContentTypesAndDistinctEtags) {
    std::set<std::string> etags;
    for (const auto& r : spool::ui::raw_assets()) {
        std::string etag = r.etag;
        EXPECT_EQ(etag.size(), 18u) << r.path;  // "<16 hex digits>"
        EXPECT_EQ(etag.front(), '"');
        EXPECT_TRUE(etags.insert(etag).second) << r.path << " shares its ETag";
    }
    EXPECT_EQ(std::string{spool::ui::find_asset("/index.html")->content_type}, "text/html; charset=utf-8");
    EXPECT_EQ(std::string{spool::ui::find_asset("/app.js")->content_type}, "text/javascript; charset=utf-8");
    EXPECT_EQ(std::string{spool::ui::find_asset("/style.css")->content_type}, "text/css; charset=utf-8");
    EXPECT_EQ(std::string{spool::ui::find_asset("/favicon.svg")->content_type}, "image/svg+xml");
    EXPECT_FALSE(spool::ui::find_asset("/nope.js").has_value());
    EXPECT_FALSE(spool::ui::find_asset("index.html").has_value());  // paths start with '/'
}
