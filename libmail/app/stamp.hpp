// Postage on outgoing mail (mstamp(1)), for mstamp (tool/stamp_cmd) and
// msmtp-proxy's stamping: hashcash stamps, timed stamps (hashcash whose price
// rises with the sender's volume), and signed postage from a stamp book.
#pragma once
#include "libmail/app/context.hpp"

#include <iosfwd>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

namespace mail {

/// The kinds of postage.
enum class StampKind { hashcash, timed, paid };

/// mstamp's options, filled by CLI11.
struct StampOptions {
    std::string sender;
    std::vector<std::string> rcpts;
    std::optional<StampKind> kind;  ///< default from config `kind`, else hashcash
    std::optional<std::string> bits;
    std::optional<std::string> banner;  ///< a file of banner text; unset: config `banner`
    std::optional<std::string> banner_text;  ///< the banner itself (a daemon reads the file once); beats banner
    /// The scope of the recipients' whitelist entries; unset: the sender (--sender, else From) when it is in a
    /// protected domain, else none.
    std::optional<std::string> whitelist_scope;
    unsigned threads = 0;
};

/// Stamps the message on in for each recipient and writes it to out; notes (stamps left) go to err, failures
/// are returned, never printed.
Result<int> stamp_message(Context& ctx, const StampOptions& opt, std::istream& in, std::ostream& out,
                          std::ostream& err);

/// The recruitment banner: the text of file cli, else of the file config `banner` names; nothing when neither is
/// set. An unreadable file is kind noinput, one of 64 KB or more kind data.
Result<std::optional<std::string>> resolve_banner(const Context& ctx, const std::optional<std::string>& cli);

/// The message on in with banner appended (mail/banner.hpp) to out, nothing else changed.
Result<void> banner_message(std::string_view banner, std::istream& in, std::ostream& out);

/// The recipients of an outgoing message: the envelope ones given, else To, Cc and Bcc; normalised, unique.
Result<std::vector<std::string>> outgoing_recipients(const std::vector<std::string>& envelope,
                                                     const class MessageReader& msg);

/// The timed-stamp rule: bits = min(max_bits, base_bits + volume / step), volume = the sender's messages
/// in the window before this one.
struct TimedRule {
    int base_bits = 20;
    int max_bits = 30;
    std::int64_t step = 10;
    std::int64_t window = 86400;
    /// Bits for a sender who sent volume messages in the window.
    int bits_for(std::int64_t volume) const;
};

} // namespace mail
