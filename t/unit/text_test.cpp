#include "libmail/base/text.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace mail;
using namespace std::string_literals;

TEST_CASE("lower folds ASCII letters only", "[text]") {
    CHECK(lower("MixedCase-123@Example.ORG") == "mixedcase-123@example.org");
    CHECK(lower("") == "");
    CHECK(lower("\xC3\x84\xC3\x96 ABC") == "\xC3\x84\xC3\x96 abc");  // UTF-8 octets untouched
    CHECK(lower("[\\]^_`{|}~@") == "[\\]^_`{|}~@");
    CHECK(lower('Z') == 'z');
    CHECK(lower('@') == '@');
}

TEST_CASE("trim removes SP, HTAB, CR and LF at the ends only", "[text]") {
    CHECK(trim(" \t a b \t\r\n") == "a b");
    CHECK(trim("a\r\nb") == "a\r\nb");
    CHECK(trim("\r\n") == "");
    CHECK(trim("") == "");
    CHECK(trim("\va\f") == "\va\f");  // other controls are not whitespace here
    CHECK(trim("\xC2\xA0x") == "\xC2\xA0x");
    CHECK(rtrim(" --b-- \t\r\n") == " --b--");
}

TEST_CASE("iequals and istarts_with ignore ASCII case only", "[text]") {
    CHECK(iequals("Content-Type", "content-TYPE"));
    CHECK_FALSE(iequals("abc", "abcd"));
    CHECK_FALSE(iequals("\xC3\x84", "\xC3\xA4"));
    CHECK(iequals("", ""));
    CHECK(istarts_with("PRVS=1234=a@b", "prvs="));
    CHECK(istarts_with("x", ""));
    CHECK_FALSE(istarts_with("prv", "prvs="));
    CHECK_FALSE(istarts_with("[abc", "{abc"));  // '[' and '{' differ by 0x20 but are not letters
}

TEST_CASE("has_control sees C0 controls and DEL", "[text]") {
    CHECK_FALSE(has_control("plain text \xC3\xA4"));
    CHECK(has_control("a\tb"));
    CHECK(has_control("a\rb"));
    CHECK(has_control("\x7f"));
    CHECK(has_control("a\0b"s));
}

TEST_CASE("scrub keeps replies, fields and log lines on one line", "[text]") {
    CHECK(scrub("hello world") == "hello world");
    CHECK(scrub("a\r\nRCPT TO:<x>") == "a??RCPT TO:<x>");
    CHECK(scrub("a\tb") == "a b");
    CHECK(scrub("a\0b\x1b[31m\x7f"s) == "a?b?[31m?");
    CHECK(scrub("gr\xC3\xBC\xC3\x9F") == "gr\xC3\xBC\xC3\x9F");
    CHECK(scrub("") == "");
}

TEST_CASE("utf8_cut never splits a UTF-8 sequence", "[text]") {
    CHECK(utf8_cut("abc", 1) == 1);
    CHECK(utf8_cut("ab\xC3\xBC", 3) == 2);
    CHECK(utf8_cut("a\xE2\x82\xAC", 3) == 1);
    CHECK(utf8_cut("a\xE2\x82\xAC", 1) == 1);
    CHECK(utf8_cut("\x80\x80\x80\x80\x80", 4) == 1);  // at most 3 octets back
}

TEST_CASE("scrub bounds the length at a character boundary", "[text]") {
    CHECK(scrub("abcdef", 6) == "abcdef");
    CHECK(scrub("abcdefg", 6) == "abc...");
    CHECK(scrub("abcdefg", 2) == "...");
    CHECK(scrub("abcd\xC3\xBC", 5) == "ab...");  // the cut comes first: "..." always fits in max
    CHECK(scrub("abcd\xC3\xBCxyz", 8) == "abcd...");  // never half a UTF-8 sequence
    CHECK(scrub("a\r\nbcdef", 6) == "a??...");
    CHECK(scrub("\x80\x80\x80\x80\x80\x80\x80\x80", 7).size() <= 7);  // junk octets: bounded back-off
    std::string once = scrub("x\ty\rz" + std::string(300, 'a'), 100);
    CHECK(once.size() == 100);
    CHECK(scrub(once, 100) == once);
}
