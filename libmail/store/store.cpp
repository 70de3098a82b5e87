// The store interface's own functions: the stable names of its kinds and states (store.hpp).
#include "libmail/store/store.hpp"

namespace mail {

std::string_view to_string(WlKind k) {
    switch (k) {
    case WlKind::address: return "address";
    case WlKind::domain: return "domain";
    case WlKind::subdomains: return "subdomains";
    case WlKind::recipient: return "recipient";
    }
    return "address";
}

std::string_view to_string(HeldState s) {
    switch (s) {
    case HeldState::held: return "held";
    case HeldState::pending: return "pending";
    case HeldState::quiet: return "quiet";
    case HeldState::releasing: return "releasing";
    case HeldState::deletable: return "deletable";
    case HeldState::match: return "match";
    case HeldState::ended: return "ended";
    }
    return "held";
}

std::optional<HeldState> parse_held_state(std::string_view s) {
    for (HeldState st : {HeldState::held, HeldState::pending, HeldState::quiet, HeldState::releasing,
                         HeldState::deletable, HeldState::match, HeldState::ended})
        if (to_string(st) == s) return st;
    return std::nullopt;
}

std::string_view to_string(DigestAction a) {
    switch (a) {
    case DigestAction::release: return "release";
    case DigestAction::whitelist: return "whitelist";
    case DigestAction::all: return "all";
    case DigestAction::from: return "from";
    }
    return "release";
}

std::optional<DigestAction> parse_digest_action(std::string_view s) {
    for (DigestAction a : {DigestAction::release, DigestAction::whitelist, DigestAction::all, DigestAction::from})
        if (to_string(a) == s) return a;
    return std::nullopt;
}

std::string_view to_string(WlAuth a) {
    switch (a) {
    case WlAuth::automatic: return "auto";
    case WlAuth::spf: return "spf";
    case WlAuth::dkim: return "dkim";
    case WlAuth::dmarc: return "dmarc";
    case WlAuth::none: return "none";
    }
    return "auto";
}

std::optional<WlAuth> parse_wl_auth(std::string_view s) {
    if (s == "auto") return WlAuth::automatic;
    if (s == "spf") return WlAuth::spf;
    if (s == "dkim") return WlAuth::dkim;
    if (s == "dmarc") return WlAuth::dmarc;
    if (s == "none") return WlAuth::none;
    return std::nullopt;
}

std::optional<WlKind> parse_wl_kind(std::string_view s) {
    if (s == "address") return WlKind::address;
    if (s == "domain") return WlKind::domain;
    if (s == "subdomains") return WlKind::subdomains;
    if (s == "recipient") return WlKind::recipient;
    return std::nullopt;
}

std::string_view to_string(TokenState s) {
    switch (s) {
    case TokenState::used: return "used";
    case TokenState::revoked: return "revoked";
    case TokenState::reserved: return "reserved";
    }
    return "used";
}

} // namespace mail
