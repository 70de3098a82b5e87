#include "libmail/auth/auth.hpp"

#include "t/unit/fake_dns.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

using namespace mail;
using mail::test::FakeDns;

namespace {

std::vector<HeaderField> fields(std::initializer_list<std::string> raws) {
    std::vector<HeaderField> out;
    for (const auto& r : raws) out.push_back(HeaderField{r + "\n"});
    return out;
}

const std::string postfix =
    "Received: from mail.example.org (mail.example.org [192.0.2.10])\n"
    "\tby mx.example.net (Postfix) with ESMTPS id 4QZ1Jw2v5Kz9sWn\n"
    "\tfor <bob@example.net>; Sat,  5 Dec 2026 10:00:00 +0000 (UTC)";
const std::string postfix_unknown =
    "Received: from helo.example.org (unknown [IPv6:2001:db8::25])\n"
    "\tby mx.example.net (Postfix) with ESMTP id 4QZ1Jw2v5Kz9sWo; Sat, 5 Dec 2026 10:00:00 +0000 (UTC)";
const std::string sendmail =
    "Received: from relay.example.com (host-7.example.com [198.51.100.7] (may be forged))\n"
    "\tby mx.example.net (8.17.1.9/8.17.1.9/Debian-2) with ESMTP id 3B5A0D2x012345\n"
    "\tfor <bob@example.net>; Sat, 5 Dec 2026 10:00:00 GMT";
const std::string exim =
    "Received: from host-7.example.com ([198.51.100.7] helo=relay.example.com)\n"
    "\tby mx.example.net with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384\n"
    "\t(Exim 4.96)\n\t(envelope-from <alice@example.com>)\n\tid 1kABCD-0001Xy-1a\n"
    "\tfor bob@example.net; Sat, 05 Dec 2026 10:00:00 +0000";
const std::string exim_nordns =
    "Received: from [203.0.113.9] (helo=laptop.local)\n\tby mx.example.net with esmtp (Exim 4.96)\n"
    "\t(envelope-from <alice@example.com>)\n\tid 1kABCD-0001Xy-1b; Sat, 05 Dec 2026 10:00:00 +0000";
const std::string internal =
    "Received: from mx1.example.net (mx1.example.net [10.1.2.3])\n\tby mailbox.example.net (Postfix) with ESMTP id 11;"
    " Sat, 5 Dec 2026 10:00:01 +0000";
const std::string reinjected =
    "Received: from localhost (localhost [127.0.0.1])\n\tby mx.example.net (Postfix) with ESMTP id 12;"
    " Sat, 5 Dec 2026 10:00:02 +0000";

} // namespace

TEST_CASE("client_from_received: Postfix, Sendmail and Exim forms", "[auth]") {
    auto c = auth::client_from_received(fields({postfix}), {});
    REQUIRE(c);
    CHECK(c->ip == "192.0.2.10");
    CHECK(c->helo == "mail.example.org");

    c = auth::client_from_received(fields({postfix_unknown}), {});
    REQUIRE(c);
    CHECK(c->ip == "2001:db8::25");
    CHECK(c->helo == "helo.example.org");

    c = auth::client_from_received(fields({sendmail}), {});
    REQUIRE(c);
    CHECK(c->ip == "198.51.100.7");
    CHECK(c->helo == "relay.example.com");

    c = auth::client_from_received(fields({exim}), {});
    REQUIRE(c);
    CHECK(c->ip == "198.51.100.7");
    CHECK(c->helo == "relay.example.com");

    c = auth::client_from_received(fields({exim_nordns}), {});
    REQUIRE(c);
    CHECK(c->ip == "203.0.113.9");
    CHECK(c->helo == "laptop.local");

    // Postfix with an address literal as HELO: the address is the one in the comment.
    c = auth::client_from_received(
        fields({"Received: from [192.0.2.99] (unknown [192.0.2.11]) by mx.example.net (Postfix) with SMTP id 1; date"}), {});
    REQUIRE(c);
    CHECK(c->ip == "192.0.2.11");
    CHECK(c->helo == "[192.0.2.99]");
    // Sendmail with no reverse name; Exim with a port.
    c = auth::client_from_received(fields({"Received: from helo.example ([192.0.2.12]) by mx (8.17/8.17) id x; date"}), {});
    REQUIRE(c);
    CHECK(c->ip == "192.0.2.12");
    CHECK(c->helo == "helo.example");
    c = auth::client_from_received(
        fields({"Received: from r.example ([192.0.2.13]:41234 helo=h.example ident=joe) by mx with esmtp (Exim 4.96) id y; date"}), {});
    REQUIRE(c);
    CHECK(c->ip == "192.0.2.13");
    CHECK(c->helo == "h.example");
}

TEST_CASE("client_from_received: an address the client wrote in its HELO is never the client", "[auth]") {
    // Exim without a reverse name, and qmail: the sender's HELO text sits in a comment. A client saying
    // EHLO [127.0.0.1] must not pass for loopback (always trusted), which would walk on to a Received field
    // the sender wrote itself.
    const std::string forged_below =
        "Received: from x ([192.0.2.1] helo=mail.good.example) by relay.evil.example; date";
    auto c = auth::client_from_received(
        fields({"Received: from [203.0.113.5] (helo=[127.0.0.1])\n\tby mx.example.net with esmtp (Exim 4.96)\n"
                "\tid 1kABCD-0001Xy-1c; Sat, 05 Dec 2026 10:00:00 +0000",
                forged_below}),
        {});
    REQUIRE(c);
    CHECK(c->ip == "203.0.113.5");
    CHECK(c->helo == "[127.0.0.1]");
    c = auth::client_from_received(
        fields({"Received: from unknown (HELO [127.0.0.1]) ([203.0.113.6])\n\tby mx.example.net with SMTP; date",
                forged_below}),
        {});
    REQUIRE(c);
    CHECK(c->ip == "203.0.113.6");
    // The same HELO literal in Exim's usual form: the address before helo= is the client's.
    c = auth::client_from_received(fields({"Received: from h ([203.0.113.7] helo=[127.0.0.1]) by mx; date", forged_below}), {});
    REQUIRE(c);
    CHECK(c->ip == "203.0.113.7");
}

TEST_CASE("client_from_received: the walk down trusted relays", "[auth]") {
    // The topmost field records our trusted internal MX; the one below, which that MX wrote, the client.
    auto f = fields({internal, postfix, sendmail});
    CHECK_FALSE(auth::client_from_received(f, {}) == std::nullopt);
    CHECK(auth::client_from_received(f, {})->ip == "10.1.2.3");  // not trusted: it is the client
    auto c = auth::client_from_received(f, {"10.0.0.0/8"});
    REQUIRE(c);
    CHECK(c->ip == "192.0.2.10");
    // Both hops trusted: the third field counts.
    c = auth::client_from_received(f, {"10.1.2.3", "192.0.2.0/24"});
    REQUIRE(c);
    CHECK(c->ip == "198.51.100.7");
    // Everything trusted down to the bottom: the message started inside, no client.
    CHECK_FALSE(auth::client_from_received(f, {"10.0.0.0/8", "192.0.2.10", "198.51.100.0/24"}));
    // A loopback reinjection (a content filter) is always our own host.
    c = auth::client_from_received(fields({reinjected, exim}), {});
    REQUIRE(c);
    CHECK(c->ip == "198.51.100.7");
    // IPv6 blocks.
    c = auth::client_from_received(fields({postfix_unknown, postfix}), {"2001:db8::/32"});
    REQUIRE(c);
    CHECK(c->ip == "192.0.2.10");
    // A believed field without a client (local submission): nothing.
    CHECK_FALSE(auth::client_from_received(
        fields({"Received: by mx.example.net (Postfix, from userid 1000) id 13; Sat, 5 Dec 2026 10:00:00 +0000", postfix}), {}));
    // Other fields in between do not matter; no Received at all: nothing.
    c = auth::client_from_received(fields({"X-Spam: no", postfix, "Subject: hi"}), {});
    REQUIRE(c);
    CHECK(c->ip == "192.0.2.10");
    CHECK_FALSE(auth::client_from_received(fields({"Subject: hi"}), {}));
    // Bad relay entries are ignored, never matching.
    CHECK(auth::client_from_received(f, {"bogus", "10.0.0.0/99", ""})->ip == "10.1.2.3");
}

TEST_CASE("parse_authentication_results: RFC 8601 syntax", "[auth]") {
    auto ar = auth::parse_authentication_results(
        "mx.example.net 1; (a comment) spf=pass (sender SPF authorized; \\(quoted\\)) smtp.mailfrom=alice@example.com;\n"
        "\tdkim=pass reason=\"good signature\" header.d=example.com header.s=sel header.b=\"ab/cd+e\";\n"
        " dmarc=fail (p=reject dis=none) header.from=example.com; dkim/1 = neutral header.i=@x.example; "
        "broken ... ; auth=pass smtp.auth=\"joe smith\"@example.com");
    REQUIRE(ar);
    CHECK(ar->authserv_id == "mx.example.net");
    REQUIRE(ar->results.size() == 5);
    CHECK(ar->results[0].method == "spf");
    CHECK(ar->results[0].result == "pass");
    CHECK(ar->results[0].property("smtp.mailfrom") == "alice@example.com");
    REQUIRE(ar->results[0].comments.size() == 1);
    CHECK(ar->results[0].comments[0] == "sender SPF authorized; (quoted)");
    CHECK(ar->results[1].reason == "good signature");
    CHECK(ar->results[1].property("header.b") == "ab/cd+e");
    CHECK(ar->results[2].property("header.from") == "example.com");
    CHECK(ar->results[3].method == "dkim");
    CHECK(ar->results[3].version == "1");
    CHECK(ar->results[3].result == "neutral");
    CHECK(ar->results[4].property("smtp.auth") == "joe smith@example.com");

    auto none = auth::parse_authentication_results("\"quoted.example\" (c) ; none");
    REQUIRE(none);
    CHECK(none->authserv_id == "quoted.example");
    CHECK(none->results.empty());
    CHECK_FALSE(auth::parse_authentication_results("mx.example.net 2; spf=pass smtp.mailfrom=a@b"));
    CHECK_FALSE(auth::parse_authentication_results("  "));
    // The ARC form, "i=N;" first.
    auto arc = auth::parse_authentication_results("i=2; lists.example.org; dmarc=pass header.from=example.com");
    REQUIRE(arc);
    CHECK(arc->authserv_id == "lists.example.org");
    REQUIRE(arc->results.size() == 1);
    CHECK(arc->results[0].result == "pass");
    // Unterminated comments and quotes end the field, nothing read past it.
    CHECK(auth::parse_authentication_results("mx; spf=pass (unterminated smtp.mailfrom=a@b"));
    CHECK(auth::parse_authentication_results("mx; spf=pass smtp.mailfrom=\"a@b"));
}

TEST_CASE("upstream_results: only the topmost trusted field counts", "[auth]") {
    auth::Settings st;
    st.trusted_authserv_ids = {"MX.Example.NET"};
    auto f = fields({"Authentication-Results: evil.example; spf=pass smtp.mailfrom=friend@good.example; dmarc=pass header.from=good.example",
                     "Authentication-Results: mx.example.net;\n spf=fail (not permitted) smtp.mailfrom=friend@good.example;\n"
                     " dkim=pass header.d=good.example header.s=s1 header.b=AbCdEfGh header.a=rsa-sha256;\n"
                     " dkim=fail reason=\"body hash did not verify\" header.i=@other.example;\n"
                     " dmarc=pass (p=reject dis=none) header.from=good.example; arc=none",
                     "Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=friend@good.example",
                     "From: Friend <friend@good.example>"});
    auto r = auth::upstream_results(f, st);
    REQUIRE(r);
    CHECK(r->upstream == "mx.example.net");
    CHECK(r->spf_checked);
    CHECK(r->spf_mailfrom.result == spf::SpfResult::fail);
    CHECK(r->spf_mailfrom.domain == "good.example");
    CHECK(r->mail_from == "friend@good.example");
    REQUIRE(r->dkim.size() == 2);
    CHECK(r->dkim[0].status == dkim::Status::pass);
    CHECK(r->dkim[0].domain == "good.example");
    CHECK(r->dkim[0].selector == "s1");
    CHECK(r->dkim[1].domain == "other.example");
    CHECK(r->dkim[1].reason == "body hash did not verify");
    CHECK(r->dmarc.status == dmarc::Status::pass);
    CHECK(r->dmarc.policy == "reject");
    CHECK(r->dmarc.dkim_aligned);
    CHECK_FALSE(r->dmarc.spf_aligned);
    CHECK(r->from_domain == "good.example");
    CHECK(r->dmarc_pass());
    CHECK(r->dkim_pass("good.example"));
    CHECK_FALSE(r->spf_pass("good.example"));

    // Untrusted ids only: nothing.
    st.trusted_authserv_ids = {"other.example"};
    CHECK_FALSE(auth::upstream_results(f, st));
    st.trusted_authserv_ids = {};
    CHECK_FALSE(auth::upstream_results(f, st));
    // A temporary error upstream stays temporary.
    st.trusted_authserv_ids = {"mx.example.net"};
    auto t = auth::upstream_results(fields({"Authentication-Results: mx.example.net; spf=temperror smtp.mailfrom=a@b.example"}), st);
    REQUIRE(t);
    CHECK(t->temporary());
    // HELO-only and legacy words.
    auto h = auth::upstream_results(fields({"Authentication-Results: mx.example.net; spf=hardfail smtp.helo=h.example"}), st);
    REQUIRE(h);
    CHECK_FALSE(h->spf_checked);
    CHECK(h->spf_helo.result == spf::SpfResult::fail);
    CHECK(h->spf_helo.domain == "h.example");
}

TEST_CASE("method_results: RFC 8601 text", "[auth]") {
    auth::Results r;
    r.spf_checked = true;
    r.mail_from = "alice@example.com";
    r.spf_mailfrom.result = spf::SpfResult::pass;
    r.spf_mailfrom.domain = "example.com";
    r.spf_mailfrom.identity = "mailfrom";
    r.spf_mailfrom.mechanism = "ip4:192.0.2.0/24";
    r.spf_helo.result = spf::SpfResult::none;
    r.spf_helo.domain = "mail.example.com";
    r.spf_helo.identity = "helo";
    dkim::SignatureResult s;
    s.status = dkim::Status::pass;
    s.domain = "example.com";
    s.selector = "sel";
    s.algorithm = "rsa-sha256";
    s.b = "AbCdEfGh/ij+kl==";
    r.dkim.push_back(s);
    s.status = dkim::Status::fail;
    s.b = "AbCdEfGhZZZ";
    s.reason = "body hash did not verify (l=)";
    r.dkim.push_back(s);
    r.from_domain = "example.com";
    r.dmarc.status = dmarc::Status::pass;
    r.dmarc.from_domain = "example.com";
    r.dmarc.policy = "reject";
    r.dmarc.record = dmarc::Record{"reject", "", 100, false, false};
    auto lines = r.method_results();
    REQUIRE(lines.size() == 6);
    CHECK(lines[0] == "spf=pass (matched ip4:192.0.2.0/24) smtp.mailfrom=alice@example.com");
    CHECK(lines[1] == "spf=none smtp.helo=mail.example.com");
    CHECK(lines[2] == "dkim=pass header.d=example.com header.s=sel header.b=\"AbCdEfGh/\" header.a=rsa-sha256");
    CHECK(lines[3] == "dkim=fail (body hash did not verify \\(l=\\)) header.d=example.com header.s=sel header.b=AbCdEfGhZ header.a=rsa-sha256");
    CHECK(lines[4] == "dmarc=pass (p=reject) header.from=example.com");
    CHECK(lines[5] == "arc=none");

    // Null sender, no signatures, DMARC none, ARC pass.
    auth::Results n;
    n.spf_checked = true;
    n.spf_mailfrom.result = spf::SpfResult::fail;
    n.spf_mailfrom.domain = "helo.example.org";
    n.spf_mailfrom.explanation = "see http://example.org/why";
    n.dmarc.from_domain = "example.org";
    n.dmarc.reason = "no DMARC record";
    n.arc.status = dkim::ArcStatus::pass;
    n.arc.instances = 2;
    n.arc.sealers = {"a.example", "lists.example.org"};
    n.arc_trusted = true;
    lines = n.method_results();
    REQUIRE(lines.size() == 4);
    CHECK(lines[0] == "spf=fail (see http://example.org/why) smtp.mailfrom=helo.example.org");
    CHECK(lines[1] == "dkim=none (no signatures)");
    CHECK(lines[2] == "dmarc=none (no DMARC record) header.from=example.org");
    CHECK(lines[3] == "arc=pass (i=2, chain a.example > lists.example.org, trusted sealer says dmarc=pass)");

    // Every line parses back as a resinfo.
    for (const auto& l : lines) {
        auto ar = auth::parse_authentication_results("x; " + l);
        REQUIRE(ar);
        CHECK(ar->results.size() == 1);
    }
    // SPF not checked: no spf line.
    auth::Results u;
    CHECK(u.method_results().front().rfind("dkim=", 0) == 0);
}

TEST_CASE("publishes: SPF and DMARC records, temporary failures", "[auth]") {
    FakeDns dns;
    dns.txts("example.com", {"v=spf1 -all", "other"});
    dns.txts("_dmarc.example.com", {"v=DMARC1; p=none"});
    auto p = auth::publishes(dns, "example.com");
    CHECK(p.spf);
    CHECK(p.dmarc);
    CHECK_FALSE(p.temporary);
    // A subdomain: DMARC through the org domain, no SPF of its own.
    p = auth::publishes(dns, "sub.example.com");
    CHECK_FALSE(p.spf);
    CHECK(p.dmarc);
    dns.txts("quiet.example", {"v=spf10 nothing", "hello"});
    p = auth::publishes(dns, "quiet.example");
    CHECK_FALSE(p.spf);
    CHECK_FALSE(p.dmarc);
    CHECK_FALSE(p.temporary);
    dns.fail("slow.example");
    CHECK(auth::publishes(dns, "slow.example").temporary);
    dns.fail("_dmarc.slow2.example");
    CHECK(auth::publishes(dns, "slow2.example").temporary);
}

TEST_CASE("Checker: upstream results when no client is known, DMARC from local results", "[auth]") {
    FakeDns dns;
    dns.txts("_dmarc.good.example", {"v=DMARC1; p=reject"});
    auth::Settings st;
    st.trusted_authserv_ids = {"mx.example.net"};
    auto f = fields({"Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=friend@good.example; "
                     "dmarc=pass header.from=good.example",
                     "From: friend@good.example", "Subject: x"});
    {
        auth::Checker c(dns, st, f);
        c.body("hello\n");
        auto r = c.finish({}, "friend@good.example");
        CHECK(r.upstream == "mx.example.net");
        CHECK(r.dmarc_pass());
    }
    {
        // A client known: checked here. SPF given (as the proxy does): DMARC aligns with it.
        auth::Checker c(dns, st, f);
        spf::Outcome o;
        o.result = spf::SpfResult::pass;
        o.domain = "good.example";
        o.identity = "mailfrom";
        auto r = c.finish({"192.0.2.1", ""}, "friend@good.example", o);
        CHECK(r.upstream.empty());
        CHECK(r.spf_checked);
        CHECK(r.from_domain == "good.example");
        CHECK(r.dmarc.status == dmarc::Status::pass);
        CHECK(r.dmarc.policy == "reject");
        CHECK(r.spf_pass("good.example"));
    }
    {
        // Two From fields: permerror.
        auth::Checker c(dns, st, fields({"From: a@good.example", "From: b@good.example"}));
        auto r = c.finish({"192.0.2.1", ""}, "a@good.example", spf::Outcome{});
        CHECK(r.dmarc.status == dmarc::Status::permerror);
        CHECK(r.from_domain.empty());
    }
    {
        // A DNS timeout at _dmarc: temporary.
        dns.fail("_dmarc.slow.example");
        auth::Checker c(dns, st, fields({"From: a@slow.example"}));
        auto r = c.finish({"192.0.2.1", ""}, "a@slow.example", spf::Outcome{});
        CHECK(r.temporary());
    }
}
