// A scratch directory for one test, removed afterwards.
#pragma once
#include <filesystem>
#include <stdexcept>
#include <string>
#include <cstdlib>

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
};
