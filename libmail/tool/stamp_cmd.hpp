// mstamp's job behind cmd/mstamp.cpp: postage on outgoing mail (mstamp(1));
// the stamping itself is app/stamp.hpp.
#pragma once
#include "libmail/app/stamp.hpp"
#include "libmail/tool/cli.hpp"

#include <iosfwd>

namespace mail {

/// Stamps the message on in for each recipient and writes it to out; returns the exit code.
int run_stamp(Context& ctx, const StampOptions& opt, std::istream& in, std::ostream& out, std::ostream& err);

} // namespace mail
