// mstamp's stamp-book and stamp-authority commands (mstamp book ..., mstamp
// authority ...); the key lookups --paid shares with them are policy/book.hpp.
#pragma once
#include "libmail/tool/cli.hpp"
#include "libmail/policy/book.hpp"
#include "libmail/policy/postage.hpp"

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace mail {

/// Options of the book and authority commands, filled by CLI11.
struct BookOptions {
    std::string command;  ///< keygen, import, balance, list; init, pubkey, issue, serve
    std::string file;     ///< import: a certificate file, or - for stdin
    std::string owner;    ///< issue: the owner's public key
    std::optional<std::string> count, expires;
    std::vector<std::string> listen;
    bool force = false, json = false;
    std::int64_t max_requests = 0;  ///< serve: stop after this many (tests)
};

/// Runs `mstamp book COMMAND`; returns the exit code.
int run_book(Context& ctx, const BookOptions& opt, std::istream& in, std::ostream& out, std::ostream& err);
/// Runs `mstamp authority COMMAND`; returns the exit code.
int run_authority(Context& ctx, const BookOptions& opt, std::istream& in, std::ostream& out, std::ostream& err);


} // namespace mail
