// Running another program (sendmail, for challenges and deliveries) the
// Postfix way (DESIGN §8.6): an argv vector, never a shell; a minimal
// environment; stdin fed from memory or a spool; output discarded; a time
// limit after which the child is killed.
#pragma once
#include "libmail/base/error.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// Runs argv[0] (a path) with argv, feeding it what source writes (called with a write function), and waits
/// at most timeout. The exit status, or kind tempfail when it could not be run, was killed or timed out.
Result<int> run_program(const std::vector<std::string>& argv,
                        const std::function<Result<void>(const std::function<Result<void>(std::string_view)>&)>& source,
                        std::chrono::seconds timeout);

} // namespace mail
