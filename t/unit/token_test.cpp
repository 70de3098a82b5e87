#include "libmail/policy/token.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

using namespace mail;

namespace {
Secret key(int id, char fill = 'k') { return Secret{id, std::string(32, fill), 0}; }
std::string make(const TokenRequest& r, const Secret& k = key(1)) {
    auto t = make_token(r, k, "abc");
    REQUIRE(t.ok());
    return *t;
}
TokenRequest req(std::uint8_t flags = 0, std::string sender = "") {
    TokenRequest r;
    r.recipient = "Alice@Example.ORG";
    r.flags = flags;
    r.expires = 2000000000;
    r.sender = std::move(sender);
    return r;
}
} // namespace

TEST_CASE("token: base32 round trip, either case, canonical only") {
    std::string bin("\x00\xff\x10\x20\x7f", 5);
    std::string t = base32_encode(bin);
    CHECK(t == "ad7raid7");
    CHECK(*base32_decode(t) == bin);
    std::string up = t;
    std::transform(up.begin(), up.end(), up.begin(), ::toupper);
    CHECK(*base32_decode(up) == bin);
    CHECK_FALSE(base32_decode("ad7raid1").has_value());  // 1 is not in the alphabet
    CHECK_FALSE(base32_decode("ad7raid9").has_value());
    CHECK(base32_encode("\xff") == "74");
    CHECK(*base32_decode("74") == "\xff");
    CHECK_FALSE(base32_decode("75").has_value());  // non-zero padding bits
    CHECK_FALSE(base32_decode("7").has_value());   // not a whole octet
}

TEST_CASE("token: a made token fits the format and verifies") {
    std::string a = make(req());
    INFO(a);
    CHECK(a.rfind("Alice+", 0) == 0);
    CHECK(a.size() == std::string("Alice+").size() + 24 + std::string("@Example.ORG").size());
    auto t = parse_token(a, '+');
    REQUIRE(t.has_value());
    CHECK(t->recipient() == "alice@example.org");
    CHECK(t->expires == 2000000000);
    CHECK(verify_token(*t, "", {key(1)}, 1000) == TokenCheck::ok);
}

TEST_CASE("token: case folding by an MTA does not break it") {
    std::string a = make(req());
    std::string up = a;
    std::transform(up.begin(), up.end(), up.begin(), ::toupper);
    auto t = parse_token(up, '+');
    REQUIRE(t.has_value());
    CHECK(verify_token(*t, "", {key(1)}, 1000) == TokenCheck::ok);
}

TEST_CASE("token: every single-character change is invalid") {
    std::string a = make(req(token_flag::sender, "bob@x.org"));
    auto plus = a.find('+');
    auto at = a.find('@');
    const std::string alphabet = "abcdefghijklmnopqrstuvwxyz234567";
    int tried = 0;
    for (auto i = plus + 1; i < at; ++i) {
        for (char c : alphabet) {
            if (c == std::tolower(static_cast<unsigned char>(a[i]))) continue;
            std::string b = a;
            b[i] = c;
            auto t = parse_token(b, '+');
            if (t) CHECK(verify_token(*t, "bob@x.org", {key(1)}, 1000) == TokenCheck::invalid);
            ++tried;
        }
    }
    CHECK(tried == 32 * 31);
    // The recipient is bound too.
    std::string other = "carol" + a.substr(a.find('+'));
    CHECK(verify_token(*parse_token(other, '+'), "bob@x.org", {key(1)}, 1000) == TokenCheck::invalid);
}

TEST_CASE("token: expiry, unknown key, wrong sender") {
    std::string a = make(req());
    auto t = parse_token(a, '+');
    CHECK(verify_token(*t, "", {key(1)}, 2000000001) == TokenCheck::expired);
    CHECK(verify_token(*t, "", {key(2)}, 1000) == TokenCheck::invalid);
    CHECK(verify_token(*t, "", {key(1, 'z')}, 1000) == TokenCheck::invalid);

    std::string b = make(req(token_flag::sender, "Bob@X.org"));
    auto tb = parse_token(b, '+');
    REQUIRE(tb.has_value());
    CHECK(tb->payload.size() == 32);
    CHECK(verify_token(*tb, "bob@x.org", {key(1)}, 1000) == TokenCheck::ok);
    CHECK(verify_token(*tb, "prvs=1234567890=bob@x.org", {key(1)}, 1000) == TokenCheck::ok);
    CHECK(verify_token(*tb, "eve@x.org", {key(1)}, 1000) == TokenCheck::wrong_sender);
    CHECK(verify_token(*tb, "", {key(1)}, 1000) == TokenCheck::wrong_sender);
}

TEST_CASE("token: the qmail delimiter and the local-part limit") {
    auto r = req();
    r.delimiter = '-';
    std::string a = make(r);
    CHECK(a.find("Alice-") == 0);
    CHECK_FALSE(parse_token(a, '+').has_value());
    CHECK(parse_token(a, '-').has_value());
    r.recipient = std::string(50, 'x') + "@example.org";
    auto too_long = make_token(r, key(1), "abc");
    REQUIRE_FALSE(too_long.ok());
    CHECK(too_long.error().kind == ErrorKind::data);
}

TEST_CASE("token: key ids wrap into one octet") {
    CHECK(key_byte_of(1) == 1);
    CHECK(key_byte_of(255) == 255);
    CHECK(key_byte_of(256) == 1);
}

TEST_CASE("token: store-backed one-time tokens are consumed once; revoke and rotate") {
    TmpDir d;
    auto s = open_store(d.file("s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    auto r = req(token_flag::once);
    r.expires = 5000;
    auto a = issue_token(st, r, 1000);
    REQUIRE(a.ok());
    CHECK(check_token(st, *a, "", false, '+', 1000)->check == TokenCheck::ok);
    CHECK(check_token(st, *a, "", true, '+', 1000)->check == TokenCheck::ok);
    CHECK(check_token(st, *a, "", true, '+', 1000)->check == TokenCheck::used);
    CHECK(check_token(st, *a, "", false, '+', 1000)->check == TokenCheck::used);

    r.flags = 0;
    auto dated = issue_token(st, r, 1000);
    CHECK(check_token(st, *dated, "", true, '+', 1000)->check == TokenCheck::ok);
    CHECK(check_token(st, *dated, "", true, '+', 1000)->check == TokenCheck::ok);
    REQUIRE(revoke_token(st, *dated, '+', 1000)->check == TokenCheck::ok);
    CHECK(check_token(st, *dated, "", false, '+', 1000)->check == TokenCheck::revoked);

    auto before = issue_token(st, r, 1000);
    REQUIRE(rotate_token_secret(st, 1000).ok());
    auto after = issue_token(st, r, 1000);
    CHECK(check_token(st, *before, "", false, '+', 1000)->check == TokenCheck::ok);
    CHECK(check_token(st, *after, "", false, '+', 1000)->check == TokenCheck::ok);
    CHECK(parse_token(*before, '+')->key_byte != parse_token(*after, '+')->key_byte);
}

TEST_CASE("token: two processes consuming one token at once: exactly one succeeds") {
    TmpDir d;
    std::string p = d.file("s.db");
    std::string addr;
    {
        auto s = open_store(p);
        REQUIRE(s.ok());
        auto r = req(token_flag::once);
        r.expires = 5000;
        addr = *issue_token(**s, r, 1000);
    }
    for (int round = 0; round < 5; ++round) {
        std::string a = addr;
        if (round > 0) {
            auto s = open_store(p);
            auto r = req(token_flag::once);
            r.expires = 5000;
            a = *issue_token(**s, r, 1000);
        }
        std::vector<pid_t> kids;
        for (int i = 0; i < 2; ++i) {
            pid_t pid = fork();
            REQUIRE(pid >= 0);
            if (pid == 0) {
                int rc = 3;
                {
                    auto s = open_store(p);
                    if (s) {
                        auto v = check_token(**s, a, "", true, '+', 1000);
                        rc = !v ? 4 : (v->check == TokenCheck::ok ? 0 : 1);
                    }
                }
                _exit(rc);
            }
            kids.push_back(pid);
        }
        int ok = 0, used = 0;
        for (pid_t k : kids) {
            int status = 0;
            waitpid(k, &status, 0);
            REQUIRE(WIFEXITED(status));
            if (WEXITSTATUS(status) == 0) ++ok;
            if (WEXITSTATUS(status) == 1) ++used;
        }
        CHECK(ok == 1);
        CHECK(used == 1);
    }
}

TEST_CASE("token: the postage flag is carried and covered by the MAC") {
    std::string a = make(req(token_flag::once | token_flag::postage));
    auto t = parse_token(a, '+');
    REQUIRE(t.has_value());
    CHECK(t->flags == (token_flag::once | token_flag::postage));
    CHECK(verify_token(*t, "", {key(1)}, 1000) == TokenCheck::ok);
    // The same token with the flag dropped does not verify.
    auto bin = *base32_decode(t->payload);
    bin[0] = static_cast<char>(0x10 | token_flag::once);
    Token u = *t;
    u.payload = base32_encode(bin);
    u.flags = token_flag::once;
    CHECK(verify_token(u, "", {key(1)}, 1000) == TokenCheck::invalid);
}

TEST_CASE("token: a reservation keeps a one-time token for one holder until claimed, released or run out") {
    TmpDir d;
    auto s = open_store(d.file("s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    auto r = req(token_flag::once);
    r.expires = 5000;
    auto a = issue_token(st, r, 1000);
    REQUIRE(a.ok());
    std::optional<TokenRecord> ha, hb;
    CHECK(reserve_token(st, *a, "", "A", 1600, '+', 1000, ha)->check == TokenCheck::ok);
    REQUIRE(ha.has_value());
    CHECK(reserve_token(st, *a, "", "A", 1600, '+', 1001, ha)->check == TokenCheck::ok);  // the same holder again
    CHECK(reserve_token(st, *a, "", "B", 1600, '+', 1001, hb)->check == TokenCheck::reserved);
    CHECK_FALSE(hb.has_value());
    // Consuming at once (mverify) respects the reservation.
    CHECK(check_token(st, *a, "", true, '+', 1002)->check == TokenCheck::reserved);
    // Only the holder can claim it; then it is used for everyone.
    TokenRecord rec = *ha;
    rec.changed = 1003;
    CHECK(**st.token_claim(rec, "B") == TokenState::reserved);
    CHECK_FALSE(st.token_claim(rec, "A")->has_value());
    CHECK(reserve_token(st, *a, "", "B", 1600, '+', 1004, hb)->check == TokenCheck::used);
    // Given back (the message was not taken): it works again.
    CHECK(*st.token_give_back(ha->id));
    CHECK(reserve_token(st, *a, "", "B", 1700, '+', 1005, hb)->check == TokenCheck::ok);
    // Released by another holder: nothing happens; by its holder: free again.
    REQUIRE(st.token_release(hb->id, "A"));
    CHECK(reserve_token(st, *a, "", "C", 1700, '+', 1006, ha)->check == TokenCheck::reserved);
    REQUIRE(st.token_release(hb->id, "B"));
    CHECK(reserve_token(st, *a, "", "C", 1700, '+', 1007, ha)->check == TokenCheck::ok);
    // A reservation nobody ends runs out at its time.
    CHECK(reserve_token(st, *a, "", "D", 1800, '+', 1700, hb)->check == TokenCheck::reserved);
    CHECK(reserve_token(st, *a, "", "D", 1800, '+', 1701, hb)->check == TokenCheck::ok);
    // A revoked token cannot be reserved; dated tokens are not reserved at all.
    REQUIRE(revoke_token(st, *a, '+', 1702)->check == TokenCheck::ok);
    CHECK(reserve_token(st, *a, "", "E", 1800, '+', 1800, hb)->check == TokenCheck::revoked);
    r.flags = 0;
    auto dated = issue_token(st, r, 1000);
    CHECK(reserve_token(st, *dated, "", "A", 1800, '+', 1000, ha)->check == TokenCheck::ok);
    CHECK_FALSE(ha.has_value());
    CHECK(reserve_token(st, *dated, "", "B", 1800, '+', 1000, hb)->check == TokenCheck::ok);
}

TEST_CASE("token: eight processes reserving one token at once: exactly one holds it") {
    TmpDir d;
    std::string p = d.file("s.db");
    std::string addr;
    {
        auto s = open_store(p);
        REQUIRE(s.ok());
        auto r = req(token_flag::once);
        r.expires = 5000;
        addr = *issue_token(**s, r, 1000);
    }
    std::vector<pid_t> kids;
    for (int i = 0; i < 8; ++i) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int rc = 3;
            {
                auto s = open_store(p);
                if (s) {
                    std::optional<TokenRecord> h;
                    auto v = reserve_token(**s, addr, "", "holder" + std::to_string(i), 1600, '+', 1000, h);
                    rc = !v ? 4 : (v->check == TokenCheck::ok ? 0 : v->check == TokenCheck::reserved ? 1 : 2);
                }
            }
            _exit(rc);
        }
        kids.push_back(pid);
    }
    int ok = 0, reserved = 0;
    for (pid_t k : kids) {
        int status = 0;
        waitpid(k, &status, 0);
        REQUIRE(WIFEXITED(status));
        if (WEXITSTATUS(status) == 0) ++ok;
        if (WEXITSTATUS(status) == 1) ++reserved;
    }
    CHECK(ok == 1);
    CHECK(reserved == 7);
}
