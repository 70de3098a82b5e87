// The bounce fixtures written in the formats seen in the wild
// (t/fixtures/dsn/wild/FAMILY/NAME.eml), each checked against its sidecar
// NAME.expect:
//   notice: yes|no
//   permanent: yes|no                                  (notices only)
//   recipient: ADDRESS STATUS|- permanent|temporary    (in the parser's order)
//   sisimai: agree | sisimai: differs REASON           (read by t/dsn-sisimai.bats)
#include "libmail/mail/dsn.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

using namespace mail;
namespace fs = std::filesystem;

namespace {

const fs::path wild = fs::path(MAILSTAMP_FIXTURES) / "dsn" / "wild";

std::string read_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    REQUIRE(f);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

struct WildExpect {
    bool notice = false;
    bool permanent = true;
    std::vector<std::string> recipients;  // "ADDRESS STATUS permanent|temporary"
    std::string sisimai;
};

WildExpect expect_of(const fs::path& p) {
    WildExpect e;
    std::istringstream in(read_file(p));
    std::string line;
    bool seen_notice = false;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        auto colon = line.find(": ");
        INFO(p.string() << ": " << line);
        REQUIRE(colon != std::string::npos);
        std::string key = line.substr(0, colon), value = line.substr(colon + 2);
        if (key == "notice") {
            REQUIRE((value == "yes" || value == "no"));
            e.notice = value == "yes";
            seen_notice = true;
        } else if (key == "permanent") {
            REQUIRE((value == "yes" || value == "no"));
            e.permanent = value == "yes";
        } else if (key == "recipient") {
            e.recipients.push_back(value);
        } else if (key == "sisimai") {
            e.sisimai = value;
        } else {
            FAIL("unknown key " << key);
        }
    }
    REQUIRE(seen_notice);
    return e;
}

std::vector<fs::path> fixtures() {
    std::vector<fs::path> v;
    if (!fs::exists(wild)) return v;
    for (const auto& f : fs::recursive_directory_iterator(wild))
        if (f.path().extension() == ".eml") v.push_back(f.path());
    std::sort(v.begin(), v.end());
    return v;
}

std::string family_of(const fs::path& p) { return p.parent_path().filename().string(); }

} // namespace

TEST_CASE("dsn wild: every fixture gives the report its .expect names", "[dsn]") {
    for (const auto& f : fixtures()) {
        INFO(f.string());
        fs::path exp = f;
        exp.replace_extension(".expect");
        REQUIRE(fs::exists(exp));
        const WildExpect e = expect_of(exp);
        const std::string text = read_file(f);
        REQUIRE(text.rfind("X-Fixture-Source: " + family_of(f) + ": ", 0) == 0);
        auto r = parse_dsn(text);
        REQUIRE(r.ok());
        CHECK(r->is_notice == e.notice);
        if (!e.notice) {
            CHECK(e.recipients.empty());
            CHECK(r->recipients.empty());
            continue;
        }
        CHECK(r->permanent == e.permanent);
        std::vector<std::string> got;
        for (const auto& rc : r->recipients)
            got.push_back(rc.address + " " + (rc.status.empty() ? "-" : rc.status) + " " +
                          (rc.permanent ? "permanent" : "temporary"));
        CHECK(got == e.recipients);
        for (const auto& rc : r->recipients) {
            CHECK(rc.diagnostic.size() <= limits::dsn_diagnostic);
            CHECK(rc.diagnostic.find_first_of("\r\n") == std::string::npos);
        }
        // The same notice with CRLF line ends reads the same.
        std::string crlf;
        for (std::size_t i = 0; i < text.size(); ++i) {
            if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) crlf += '\r';
            crlf += text[i];
        }
        auto r2 = parse_dsn(crlf);
        REQUIRE(r2.ok());
        CHECK(r2->is_notice == r->is_notice);
        CHECK(r2->recipients.size() == r->recipients.size());
    }
}

TEST_CASE("dsn wild: every .expect has its fixture, and the families are covered", "[dsn]") {
    std::map<std::string, int> per_family;
    for (const auto& f : fixtures()) ++per_family[family_of(f)];
    if (fs::exists(wild))
        for (const auto& f : fs::recursive_directory_iterator(wild)) {
            if (f.path().extension() != ".expect") continue;
            fs::path eml = f.path();
            eml.replace_extension(".eml");
            INFO(f.path().string());
            CHECK(fs::exists(eml));
        }
    for (const auto& [family, n] : per_family) {
        INFO(family);
        CHECK(n >= 4);
    }
}
