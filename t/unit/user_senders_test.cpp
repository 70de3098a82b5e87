#include "libmail/policy/user_senders.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>
#include <sqlite3.h>

using namespace mail;

TEST_CASE("user_senders: an allowed sender is an address or @domain, normalised") {
    CHECK(*parse_user_sender("Alice@Ours.Example.") == "alice@ours.example");
    CHECK(*parse_user_sender("@Lists.Ours.Example") == "@lists.ours.example");
    for (const char* bad : {"", "alice", "@", "@[192.0.2.1]", "alice@[192.0.2.1]", "a@-bad-.example", "two words@x.org",
                            "a@b@c", "a\x01@x.org"}) {
        INFO(bad);
        auto r = parse_user_sender(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::usage);
        CHECK(r.error().text.find('\n') == std::string::npos);
    }
}

TEST_CASE("user_senders: stored senders, else the login when it is an address, else none") {
    User alice{"Alice@Ours.Example", "h", 1, 1};
    CHECK(user_senders(alice) == std::vector<std::string>{"alice@ours.example"});
    CHECK(user_senders_default(alice));
    User carol{"carol", "h", 1, 1, {"carol@ours.example", "@sales.ours.example"}};
    CHECK(user_senders(carol) == carol.senders);
    CHECK_FALSE(user_senders_default(carol));
    CHECK(user_senders(User{"dave", "h", 1, 1}).empty());
    CHECK(user_senders(User{"@ours.example", "h", 1, 1}).empty());  // a login is never a whole domain
    CHECK(user_senders(User{"x@[192.0.2.1]", "h", 1, 1}).empty());
    // Stored senders replace the default, the login included.
    User erin{"erin@ours.example", "h", 1, 1, {"e@ours.example"}};
    CHECK_FALSE(may_send_as(user_senders(erin), "erin@ours.example"));
    CHECK(may_send_as(user_senders(erin), "e@ours.example"));
}

TEST_CASE("user_senders: may_send_as matches addresses exactly and @domains by domain") {
    std::vector<std::string> s{"carol@ours.example", "@sales.ours.example"};
    CHECK(may_send_as(s, "carol@ours.example"));
    CHECK(may_send_as(s, "anyone@sales.ours.example"));
    CHECK_FALSE(may_send_as(s, "bob@ours.example"));
    CHECK_FALSE(may_send_as(s, "carol+x@ours.example"));
    CHECK_FALSE(may_send_as(s, "x@sub.sales.ours.example"));
    CHECK_FALSE(may_send_as(s, "x@ours.example"));
    CHECK_FALSE(may_send_as(s, ""));
    CHECK_FALSE(may_send_as({}, "carol@ours.example"));
}

TEST_CASE("user_senders: the store keeps them; a store from before they existed gives every user the default") {
    TmpDir d;
    std::string p = d.file("s.db");
    {
        auto s = open_store(p);
        REQUIRE(s.ok());
        Store& st = **s;
        CHECK(*st.user_add(User{"carol", "h", 1, 1, {"carol@ours.example", "@sales.ours.example"}}));
        CHECK(*st.user_add(User{"alice@ours.example", "h", 1, 1}));
        auto c = st.user_get("carol");
        REQUIRE(c->has_value());
        CHECK((*c)->senders == std::vector<std::string>{"carol@ours.example", "@sales.ours.example"});
        CHECK(*st.user_set_senders("carol", {"c2@ours.example"}));
        CHECK_FALSE(*st.user_set_senders("nobody", {"c2@ours.example"}));
        CHECK((*st.user_get("carol"))->senders == std::vector<std::string>{"c2@ours.example"});
        CHECK((*st.user_get("carol"))->changed == 1);  // the password's time, untouched
        CHECK(*st.user_set_senders("carol", {}));
        CHECK((*st.user_get("carol"))->senders.empty());
        auto all = st.user_list();
        REQUIRE(all->size() == 2);
        CHECK((*all)[0].senders.empty());
    }
    // Make it a version-5 store with a user, as an older program left it, and open it again.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(p.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db,
                         "DELETE FROM users; ALTER TABLE users DROP COLUMN senders; DROP TABLE token_holds;"
                         "ALTER TABLE whitelist DROP COLUMN auth; DROP TABLE digest_tokens;"  // versions 7 and 8
                         "INSERT INTO users(name,hash,created,changed) VALUES('bob@ours.example','h',1,1);"
                         "PRAGMA user_version=5;",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    auto s = open_store(p);
    REQUIRE(s.ok());
    auto b = (*s)->user_get("bob@ours.example");
    REQUIRE(b.ok());
    REQUIRE(b->has_value());
    CHECK((*b)->senders.empty());
    CHECK(user_senders(**b) == std::vector<std::string>{"bob@ours.example"});
}
