// mailstamp-store's commands (copy, info), behind the thin main() in cmd/mailstamp-store.cpp.
#pragma once
#include "libmail/tool/cli.hpp"

#include <cstdint>
#include <iosfwd>
#include <string>

namespace mail {

/// mailstamp-store's options, filled by CLI11.
struct StoreCmdOptions {
    std::string command;  ///< copy, info
    std::string from, to;
    std::int64_t batch = 1000;  ///< copy: rows a write transaction takes
};

/// Runs one mailstamp-store command; returns the exit code.
int run_store_cmd(Context& ctx, const StoreCmdOptions& opt, std::ostream& out, std::ostream& err);

} // namespace mail
