// The store (SQL, both engines): the addresses handed out in mchallenge's digests.
#include "libmail/store/sql_store.hpp"

#include "libmail/base/text.hpp"

namespace mail {

Result<void> SqlStore::digest_add(const std::vector<DigestToken>& ts) {
    return write([&]() -> Result<void> {
        for (const auto& t : ts) {
            std::string held = join_lines(t.held);
            std::string action(to_string(t.action));
            auto r = run("INSERT INTO digest_tokens(id,action,recipient,held,digest,expires,used)"
                         " VALUES(?1,?2,?3,?4,?5,?6,?7)",
                         "record digest address", t.id, action, t.recipient, held, t.digest, t.expires, t.used);
            if (!r) return r.error();
        }
        return {};
    });
}

Result<std::optional<DigestToken>> SqlStore::digest_get(std::string_view id) {
    std::optional<DigestToken> out;
    std::optional<Error> bad;
    auto f = step_row(bound("SELECT id,action,recipient,held,digest,expires,used FROM digest_tokens WHERE id=?1", id),
                      "read digest address", [&](const SqlRow& s) {
                          DigestToken t;
                          std::string action, held;
                          SqlReader(s) >> t.id >> action >> t.recipient >> held >> t.digest >> t.expires >> t.used;
                          auto a = parse_digest_action(action);
                          // An action mailstamp never wrote is an error, not a guess: it could release mail.
                          if (!a) {
                              bad = Error{ErrorKind::tempfail, "store " + db_.name() + ": digest address " +
                                                                   scrub(t.id, 40) + ": unknown action"};
                              return;
                          }
                          t.action = *a;
                          t.held = split_lines(held);
                          out = std::move(t);
                      });
    if (!f) return f.error();
    if (bad) return *bad;
    return out;
}

Result<bool> SqlStore::digest_claim(std::string_view id, std::int64_t now) {
    return write_any("UPDATE digest_tokens SET used=?2 WHERE id=?1 AND used=0 AND expires>=?2", "use digest address",
                     id, now);
}

Result<bool> SqlStore::digest_unclaim(std::string_view id, std::int64_t used) {
    return write_any("UPDATE digest_tokens SET used=0 WHERE id=?1 AND used=?2", "give back digest address", id, used);
}

Result<std::int64_t> SqlStore::digest_expire(std::int64_t now) {
    return write_run("DELETE FROM digest_tokens WHERE expires<?1", "expire digest addresses", now);
}

} // namespace mail
