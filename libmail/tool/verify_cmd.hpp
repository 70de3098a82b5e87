// mverify's job behind cmd/mverify.cpp: verdicts on incoming mail (mverify(1)).
#pragma once
#include "libmail/app/auth_setup.hpp"
#include "libmail/app/settings.hpp"
#include "libmail/tool/cli.hpp"
#include "libmail/policy/verify.hpp"

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace mail {

/// mverify's options, filled by CLI11; unset ones come from the config file.
struct VerifyOptions {
    std::optional<std::string> sender;
    std::vector<std::string> rcpts;
    std::optional<std::string> min_bits;
    std::vector<std::string> authority_keys;  ///< key files
    std::optional<std::string> authority;     ///< HOST:PORT of the spend check
    std::optional<std::string> authority_timeout;
    std::optional<std::string> authserv_id;
    std::optional<std::string> unknown;       ///< mark or reject
    std::optional<std::string> max_size;
    bool trust_upstream = false;
    std::optional<bool> tag;
    std::vector<std::string> trusted_forwarders;  ///< domains whose SRS wrappers are taken off
    AuthOptions auth;                             ///< the client, trusted relays, authserv-ids, ARC sealers
};

/// Classifies the message on in and writes it, with its verdict, to out; returns the exit code
/// (0 delivered, 69 rejected by --unknown reject, 75 on any internal failure with nothing written).
int run_verify(Context& ctx, const VerifyOptions& opt, std::istream& in, std::ostream& out, std::ostream& err);

} // namespace mail
