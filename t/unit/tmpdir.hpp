// A scratch directory for one test, removed afterwards.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

struct TmpDir {
    std::string path;
    TmpDir() {
        char tmpl[] = "/tmp/mailstamp-unit-XXXXXX";
        if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~TmpDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return path + "/" + name; }
    /// Writes text to rel (creating directories); returns the full path.
    std::string write(const std::string& rel, const std::string& text) const {
        std::string p = file(rel);
        std::filesystem::create_directories(std::filesystem::path(p).parent_path());
        std::ofstream(p, std::ios::binary) << text;
        return p;
    }
};
using TempDir = TmpDir;
