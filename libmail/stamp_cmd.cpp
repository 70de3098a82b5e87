// mstamp: see mstamp(1).
#include "libmail/stamp_cmd.hpp"

#include "libmail/address.hpp"
#include "libmail/clock.hpp"
#include "libmail/hashcash.hpp"
#include "libmail/limits.hpp"
#include "libmail/message.hpp"

#include <algorithm>
#include <charconv>
#include <iostream>
#include <set>

namespace mail {

Result<std::vector<std::string>> outgoing_recipients(const std::vector<std::string>& envelope, const MessageReader& msg) {
    std::vector<std::string> out;
    std::set<std::string> seen;
    auto add = [&](const Address& a) {
        std::string n = normalize_address(a);
        if (seen.insert(n).second) out.push_back(n);
    };
    if (!envelope.empty()) {
        for (const auto& r : envelope) {
            auto a = parse_path(r);
            if (!a || a->empty()) return Error{ErrorKind::usage, "--rcpt '" + r + "': not an address"};
            add(*a);
        }
    } else {
        for (const char* name : {"To", "Cc", "Bcc"}) {
            for (const auto& value : msg.get_all(name)) {
                auto list = parse_address_list(value);
                if (!list) return Error{ErrorKind::data, std::string(name) + ": " + list.error().text};
                for (const auto& a : *list) add(a);
            }
        }
    }
    if (out.empty()) return Error{ErrorKind::data, "no recipients: give --rcpt, or To, Cc or Bcc in the message"};
    if (out.size() > limits::recipients)
        return Error{ErrorKind::data, "more than " + std::to_string(limits::recipients) + " recipients"};
    return out;
}

namespace {

Result<int> bits_of(const Context& ctx, const StampOptions& opt) {
    Setting s = ctx.settings().get(opt.bits, nullptr, "bits", std::to_string(hashcash_default_bits));
    int bits = -1;
    auto [p, ec] = std::from_chars(s.value.data(), s.value.data() + s.value.size(), bits);
    if (ec != std::errc() || p != s.value.data() + s.value.size() || bits < 0 || bits > 40)
        return Error{opt.bits ? ErrorKind::usage : ErrorKind::config, s.origin + ": bits must be 0 to 40"};
    return bits;
}

Result<int> stamp(Context& ctx, const StampOptions& opt, std::istream& in, std::ostream& out, std::ostream& err) {
    auto bits = bits_of(ctx, opt);
    if (!bits) return bits.error();
    MessageReader msg(in);
    if (auto r = msg.read_header(); !r) return r.error();
    auto rcpts = outgoing_recipients(opt.rcpts, msg);
    if (!rcpts) return rcpts.error();

    // A recipient that already has a good stamp (the message passed through
    // twice) gets no second one.
    std::int64_t t = now();
    std::set<std::string> stamped;
    for (const auto& v : msg.get_all("X-Hashcash")) {
        for (const auto& r : *rcpts)
            if (check_hashcash(v, r, *bits, t) == HashcashCheck::ok) stamped.insert(r);
    }
    std::vector<std::string> stamps;
    for (const auto& r : *rcpts) {
        if (stamped.count(r)) continue;
        auto s = mint_hashcash(r, *bits, t, opt.threads);
        if (!s) return s.error();
        stamps.push_back(*s);
    }

    // Whitelist the recipients before anything is written: a store that
    // cannot take them fails the filter (exit 75) with nothing on stdout.
    auto store = ctx.open_store();
    if (!store) return store.error();
    auto w = (*store)->transaction([&]() -> Result<void> {
        for (const auto& r : *rcpts) {
            WlEntry e;
            e.kind = WlKind::address;
            e.value = r;
            e.source = "outgoing";
            e.created = t;
            auto ins = (*store)->wl_insert(e);
            if (!ins) return ins.error();
        }
        return {};
    });
    if (!w) return w.error();

    // Stamps go on top in recipient order.
    for (auto it = stamps.rbegin(); it != stamps.rend(); ++it) msg.prepend("X-Hashcash", *it);
    if (auto r = msg.write_header(out); !r) return r.error();
    if (auto r = msg.copy_body(out); !r) return r.error();
    out.flush();
    if (!out) return Error{ErrorKind::tempfail, "write error on stdout"};
    ctx.log_event("stamp", {{"kind", "hashcash"},
                            {"bits", *bits},
                            {"recipients", static_cast<long>(rcpts->size())},
                            {"minted", static_cast<long>(stamps.size())}});
    (void)err;
    return ex_ok;
}

} // namespace

int run_stamp(Context& ctx, const StampOptions& opt, std::istream& in, std::ostream& out, std::ostream& err) {
    auto r = stamp(ctx, opt, in, out, err);
    if (!r) {
        // A filter that fails must not lose mail: anything but a usage or
        // message error is "try again later".
        Error e = r.error();
        if (e.kind != ErrorKind::usage && e.kind != ErrorKind::data && e.kind != ErrorKind::config)
            e.kind = ErrorKind::tempfail;
        return report(ctx.program, e);
    }
    return *r;
}

} // namespace mail
