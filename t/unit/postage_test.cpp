#include "libmail/mail/message.hpp"
#include "libmail/policy/postage.hpp"

#include <catch2/catch.hpp>
#include <openssl/evp.h>

#include <fstream>
#include <iterator>
#include <sstream>

using namespace mail;

namespace {
std::string hash_of(std::string_view body, std::size_t step = 0) {
    RelaxedBodyHash h;
    if (step == 0) {
        h.update(body);
    } else {
        for (std::size_t i = 0; i < body.size(); i += step) h.update(body.substr(i, step));
    }
    return h.finish();
}
// Plain SHA-256, to check RelaxedBodyHash against canonical text written out by hand.
std::string sha256_of(std::string_view s) {
    unsigned char d[32];
    unsigned n = 0;
    EVP_Digest(s.data(), s.size(), d, &n, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<char*>(d), n);
}
std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}
KeyPair fixed_key(char c) {
    KeyPair k;
    k.priv = std::string(32, c);
    k.pub = *ed25519_public(k.priv);
    return k;
}
} // namespace

TEST_CASE("postage: relaxed body canonicalisation (RFC 6376 3.4.4)") {
    // The RFC's example: " C \r\nD \t E\r\n\r\n\r\n" canonicalises to " C\r\nD E\r\n".
    CHECK(hash_of(" C \r\nD \t E\r\n\r\n\r\n") == sha256_of(" C\r\nD E\r\n"));
    CHECK(hash_of("  \t lead\n") == sha256_of(" lead\r\n"));
    CHECK(hash_of("x\n \t \ny\n") == sha256_of("x\r\n\r\ny\r\n"));
    CHECK(hex_encode(hash_of("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(hash_of("\r\n\r\n") == hash_of(""));
    CHECK(hash_of("abc") == hash_of("abc\r\n"));
    CHECK(hash_of("a\nb\n\n") == hash_of("a\r\nb\r\n"));
    CHECK(hash_of("a  \t b   \n") == hash_of("a b\r\n"));
    CHECK(hash_of("x\ry\n") != hash_of("x y\n"));  // a lone CR is data
    CHECK(hash_of("one word\n") != hash_of("one ward\n"));
    CHECK(hash_of("\n\nmiddle\n\n\nend\n") == hash_of("\r\n\r\nmiddle\r\n\r\n\r\nend\r\n"));
    const std::string body = "Hello  there,\r\n\r\n \t indented\t\r\nlast line  \r\n\r\n";
    for (std::size_t step = 1; step < 9; ++step) CHECK(hash_of(body, step) == hash_of(body));
    CHECK(sha256_of("abc\r\n") == hash_of("abc \n"));
}

TEST_CASE("postage: base64 and keys round trip and refuse junk") {
    for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) CHECK(*base64_decode(base64_encode(s)) == s);
    CHECK(base64_encode("foobar") == "Zm9vYmFy");
    for (const char* bad : {"Zm9", "Zm9v!mFy", "Zg==Zg==", "Zh==", "=AAA"}) CHECK_FALSE(base64_decode(bad));
    KeyPair k = fixed_key(1);
    CHECK(parse_public_key(format_public_key(k.pub)) == k.pub);
    CHECK_FALSE(parse_public_key("AAAA"));
    auto sig = ed25519_sign(k.priv, "data");
    REQUIRE(sig.ok());
    CHECK(ed25519_verify(k.pub, "data", *sig));
    CHECK_FALSE(ed25519_verify(k.pub, "date", *sig));
    auto g = ed25519_generate();
    REQUIRE(g.ok());
    CHECK(g->pub.size() == 32);
    CHECK(*ed25519_public(g->priv) == g->pub);
}

TEST_CASE("postage: a book certificate parses back and its signature binds every field") {
    KeyPair auth = fixed_key(1), owner = fixed_key(2);
    auto b = issue_book_with_id(auth, owner.pub, 100, 1900000000, std::string(16, '\x07'));
    REQUIRE(b.ok());
    // The test vector quoted in mstamp(1): Ed25519 is deterministic, so these bytes never change.
    CHECK(format_public_key(auth.pub) == "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=");
    CHECK(format_public_key(owner.pub) == "gTl3Dqh9F19Wo1Rmw0x+zMuNipG07jeiXfYPW4/Js5Q=");
    CHECK(b->text == "mailstamp-book-1 id=07070707070707070707070707070707"
                     " owner=gTl3Dqh9F19Wo1Rmw0x+zMuNipG07jeiXfYPW4/Js5Q= count=100 expires=1900000000"
                     " authority=iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
                     " sig=9tSLisS/zj8C1jHzGoxfWxcEeWPFrFhQm9njMVyKgf7prLC4LdkFKTvlEPxbctlIFCScBUr65sXic6ePHI4cCA==");
    auto p = parse_book(b->text);
    REQUIRE(p);
    CHECK(p->text == b->text);
    CHECK(book_signature_ok(*p));
    CHECK(p->count == 100);
    for (std::string_view field : {"count=100", "expires=1900000000"}) {
        std::string t = b->text;
        std::string changed(field);
        changed.back() = changed.back() == '0' ? '1' : '0';
        t.replace(t.find(field), field.size(), changed);
        auto q = parse_book(t);
        REQUIRE(q);
        CHECK_FALSE(book_signature_ok(*q));
    }
    CHECK_FALSE(parse_book(b->text + " extra=1"));
    CHECK_FALSE(parse_book("mailstamp-book-1 id=00"));
    CHECK_FALSE(issue_book(auth, owner.pub, 0, 1).ok());
    auto fresh = issue_book(auth, owner.pub, 5, 1900000000);
    REQUIRE(fresh.ok());
    CHECK(fresh->id != b->id);
}

TEST_CASE("postage: the header hash covers the signed fields, relaxed") {
    std::vector<std::string_view> h{"Received: x\r\n", "From: a@x\r\n", "Subject: s\r\n", "To: b@y\r\n"};
    std::string base = postage_header_hash(h);
    CHECK(base == sha256_of("from:a@x\r\nto:b@y\r\nsubject:s\r\n"));  // the signed names' order, not the header's
    // Unsigned fields, folding, case and line endings make no difference.
    CHECK(postage_header_hash({"to :\tb@y\n", "X-Spam: yes\n", "subject: s \n", "FROM: a@x"}) == base);
    // A changed, added or repeated signed field does.
    CHECK(postage_header_hash({"From: a@x\r\n", "Subject: S\r\n", "To: b@y\r\n"}) != base);
    CHECK(postage_header_hash({"From: a@x\r\n", "Subject: s\r\n", "To: b@y\r\n", "Cc: c@z\r\n"}) != base);
    CHECK(postage_header_hash({"From: a@x\r\n", "Subject: s\r\n", "Subject: t\r\n", "To: b@y\r\n"}) != base);
    CHECK(postage_header_hash({"From: a@x\r\n", "Subject: s\r\n", "To: b@y\r\n", "Date: d\r\n"}) != base);
    CHECK(postage_header_hash({"From: a@x\r\n", "Subject: s\r\n", "To: b@y\r\n", "Message-ID: <1@x>\r\n"}) != base);
}

TEST_CASE("postage: the version 1 test vector still parses and verifies") {
    KeyPair auth = fixed_key(1);
    // t/fixtures/postage/stamp.txt: stamp 3 of the mstamp(1) book for bob@ours.example, <m1@x>, body "Hello" CRLF.
    std::string v1 = slurp(MAILSTAMP_FIXTURES "/postage/stamp.txt");
    while (!v1.empty() && (v1.back() == '\n' || v1.back() == '\r')) v1.pop_back();
    CHECK(v1.substr(v1.find("; i=")) ==
          "; i=3; r=bob@ours.example; d=1800000000; m=PG0xQHg+; h=Ba3gj8+xBPQLJTahTfzW6RbWQ/XPgESxkCi2B66PSQg=;"
          " s=9TINm1PyDLdYdbUSmAGPYa5SD8VYwlLE5rUzKahNViTNyceKpQFeah82vTISfM//TZFMIewGksbidS7QJmSEDA==");
    auto s = parse_postage(v1);
    REQUIRE(s);
    CHECK(s->version == 1);
    CHECK(s->header_hash.empty());
    CHECK(format_postage(*s) == v1);
    std::string h = hash_of("Hello\r\n");
    CHECK(check_postage(*s, "bob@ours.example", "<m1@x>", h, "any header", {auth.pub}, 1800000000) == PostageCheck::ok);
    CHECK(check_stamp_signatures(*s, {auth.pub}) == PostageCheck::ok);
    PostageStamp t = *s;
    t.index = 4;
    CHECK(check_stamp_signatures(t, {auth.pub}) == PostageCheck::bad_signature);
    // Claimed as version 2, its signature no longer verifies.
    t = *s;
    t.version = 2;
    t.header_hash = std::string(32, '\0');
    CHECK(check_stamp_signatures(t, {auth.pub}) == PostageCheck::bad_signature);
}

TEST_CASE("postage: a stamp passes for its recipient and message, and nowhere else") {
    KeyPair auth = fixed_key(1), owner = fixed_key(2), other = fixed_key(3);
    auto book = issue_book_with_id(auth, owner.pub, 10, 1900000000, std::string(16, '\x07'));
    REQUIRE(book.ok());
    std::string h = hash_of("Hello\r\n");
    std::string hh = postage_header_hash({"Subject: hi\r\n", "Message-ID: <m1@x>\r\n"});
    std::int64_t now = 1800000000;
    auto v = make_postage(*book, owner.priv, 3, "Bob@Ours.example", now, "<m1@x>", h, hh);
    REQUIRE(v.ok());
    auto s = parse_postage(*v);
    REQUIRE(s);
    CHECK(s->version == 2);
    CHECK(format_postage(*s) == *v);
    CHECK(s->spend_key() == "book:07070707070707070707070707070707:3");
    std::vector<std::string> trusted{auth.pub};
    CHECK(check_postage(*s, "bob@ours.example", "<m1@x>", h, hh, trusted, now) == PostageCheck::ok);
    CHECK(check_postage(*s, "bob@ours.example", "<m1@x>", hash_of("Hello\n"), hh, trusted, now) == PostageCheck::ok);
    CHECK(check_postage(*s, "carol@ours.example", "<m1@x>", h, hh, trusted, now) == PostageCheck::wrong_recipient);
    CHECK(check_postage(*s, "bob@ours.example", "<m2@x>", h, hh, trusted, now) == PostageCheck::wrong_message);
    CHECK(check_postage(*s, "bob@ours.example", "<m1@x>", hash_of("Hullo\n"), hh, trusted, now) ==
          PostageCheck::wrong_message);
    CHECK(check_postage(*s, "bob@ours.example", "<m1@x>", h, hh, {other.pub}, now) == PostageCheck::untrusted);
    CHECK(check_postage(*s, "bob@ours.example", "<m1@x>", h, hh, trusted, now + 31 * 86400) == PostageCheck::expired);
    CHECK(check_postage(*s, "bob@ours.example", "<m1@x>", h, hh, trusted, now - 3 * 86400) == PostageCheck::future);
    CHECK(check_postage(*s, "bob@ours.example", "<m1@x>", h, hh, trusted, 1900000001) == PostageCheck::book_expired);

    // Another header: a rewritten Subject, an added Cc.
    CHECK(check_postage(*s, "bob@ours.example", "<m1@x>", h,
                        postage_header_hash({"Subject: URGENT\r\n", "Message-ID: <m1@x>\r\n"}), trusted,
                        now) == PostageCheck::wrong_header);
    CHECK(check_postage(*s, "bob@ours.example", "<m1@x>", h, postage_header_hash({"subject:  hi \n", "message-id:<m1@x>"}),
                        trusted, now) == PostageCheck::ok);

    // Tampering with the signed fields of the header.
    PostageStamp t = *s;
    t.index = 4;
    CHECK(check_postage(t, "bob@ours.example", "<m1@x>", h, hh, trusted, now) == PostageCheck::bad_signature);
    t = *s;
    t.index = 10;
    CHECK(check_postage(t, "bob@ours.example", "<m1@x>", h, hh, trusted, now) == PostageCheck::bad_index);
    t = *s;
    t.date += 1;
    CHECK(check_postage(t, "bob@ours.example", "<m1@x>", h, hh, trusted, now) == PostageCheck::bad_signature);
    // The header hash in the stamp replaced along with the header.
    t = *s;
    t.header_hash = postage_header_hash({"Subject: URGENT\r\n", "Message-ID: <m1@x>\r\n"});
    CHECK(check_postage(t, "bob@ours.example", "<m1@x>", h, t.header_hash, trusted, now) == PostageCheck::bad_signature);
    // A book forged by the owner, claiming the trusted authority.
    t = *s;
    t.book.count = 1000;
    CHECK(check_postage(t, "bob@ours.example", "<m1@x>", h, hh, trusted, now) == PostageCheck::bad_book);
    // A stamp signed with someone else's key.
    auto stolen = make_postage(*book, other.priv, 3, "bob@ours.example", now, "<m1@x>", h, hh);
    CHECK(check_postage(*parse_postage(*stolen), "bob@ours.example", "<m1@x>", h, hh, trusted, now) ==
          PostageCheck::bad_signature);

    // Folding whitespace around separators is tolerated; junk is not.
    std::string folded = *v;
    folded.replace(folded.find("; i="), 4, " ;\t i = ");
    CHECK(parse_postage(folded));
    CHECK_FALSE(parse_postage("v=3" + v->substr(3)));
    CHECK_FALSE(parse_postage("v=1" + v->substr(3)));  // a version 2 stamp has f=
    CHECK_FALSE(parse_postage(*v + "; x=1"));
    CHECK_FALSE(parse_postage(v->substr(0, v->size() - 4)));
    CHECK_FALSE(make_postage(*book, owner.priv, 10, "bob@ours.example", now, "<m1@x>", h, hh).ok());
    CHECK_FALSE(make_postage(*book, owner.priv, 1, "bob; x@y", now, "<m1@x>", h, hh).ok());
}

TEST_CASE("postage: the version 2 test vector of mstamp(1)") {
    // Fixed keys and inputs give fixed stamp text: Ed25519 signatures are deterministic (RFC 8032).
    KeyPair auth = fixed_key(1), owner = fixed_key(2);
    auto book = issue_book_with_id(auth, owner.pub, 100, 1900000000, std::string(16, '\x07'));
    REQUIRE(book.ok());
    CHECK(book->text + "\n" == slurp(MAILSTAMP_FIXTURES "/postage/book.txt"));
    std::istringstream in(slurp(MAILSTAMP_FIXTURES "/postage/message.eml"));
    MessageReader msg(in);
    REQUIRE(msg.read_header().ok());
    std::vector<std::string_view> raw;
    for (const auto& f : msg.fields()) raw.push_back(f.raw);
    std::string hh = postage_header_hash(raw);
    char buf[4096];
    RelaxedBodyHash bh;
    for (;;) {
        auto n = msg.read_body(buf, sizeof buf);
        REQUIRE(n.ok());
        if (*n == 0) break;
        bh.update(std::string_view(buf, *n));
    }
    std::string h = bh.finish();
    CHECK(hex_encode(h) == "05ade08fcfb104f40b2536a14dfcd6e916d643f5cf8044b19028b607ae8f4908");
    CHECK(hex_encode(hh) == "09bec5cbacf76cc2ca55e93c7d8f94f4c7e675fd990660f11cd853878d0ca011");
    auto v = make_postage(*book, owner.priv, 3, "bob@ours.example", 1800000000, *msg.get("Message-ID"), h, hh);
    REQUIRE(v.ok());
    std::string want = slurp(MAILSTAMP_FIXTURES "/postage/stamp-2.txt");
    while (!want.empty() && want.back() == '\n') want.pop_back();
    CHECK(*v == want);
    // As printed in mstamp(1), and checked against an independent Ed25519 implementation.
    CHECK(v->substr(v->find("; i=")) ==
          "; i=3; r=bob@ours.example; d=1800000000; m=PG0xQHg+; h=Ba3gj8+xBPQLJTahTfzW6RbWQ/XPgESxkCi2B66PSQg=;"
          " f=Cb7Fy6z3bMLKVek8fY+U9Mfmdf2ZBmDxHNhTh40MoBE=;"
          " s=ZTftlC6iJcxkMA/Dwb2E8pKNH2hJRG8unvq0C5VozQI2tEqXvReaKRUAY8iF2uLxNAdvOfrh0g22KjgTB+bJCQ==");
    auto s = parse_postage(*v);
    REQUIRE(s);
    CHECK(check_postage(*s, "bob@ours.example", "<m1@x>", h, hh, {auth.pub}, 1800000000) == PostageCheck::ok);
}
