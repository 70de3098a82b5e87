// mstamp's job behind cmd/mstamp.cpp: postage on outgoing mail. So far the
// hashcash kind (DESIGN §6); signed and timed postage are still to come.
#pragma once
#include "libmail/cli.hpp"

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace mail {

/// mstamp's options, filled by CLI11.
struct StampOptions {
    std::string sender;
    std::vector<std::string> rcpts;
    std::optional<std::string> bits;
    unsigned threads = 0;
};

/// Stamps the message on in for each recipient and writes it to out; returns the exit code.
int run_stamp(Context& ctx, const StampOptions& opt, std::istream& in, std::ostream& out, std::ostream& err);

/// The recipients of an outgoing message: the envelope ones given, else To, Cc and Bcc; normalised, unique.
Result<std::vector<std::string>> outgoing_recipients(const std::vector<std::string>& envelope,
                                                     const class MessageReader& msg);

} // namespace mail
