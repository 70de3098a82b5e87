// SQLite store: messages held by mchallenge.
#include "libmail/store/sqlite_store.hpp"

#include "libmail/base/text.hpp"

namespace mail {

namespace {

constexpr const char* held_cols =
    "id,state,sender,rcpts,subject,message_id,msg_key,path,size,received,expires,confirm,bounce,challenged,"
    "changed,note,parent";

} // namespace

// A row whose state is none of HeldState's names (not written by mailstamp) is an error, never
// guessed at: acting on it as some state could deliver or delete what nobody released.
Result<Held> SqliteStore::read_held(sqlite3_stmt* s) const {
    Held h;
    h.id = col(s, 0);
    std::string state = col(s, 1);
    auto st = parse_held_state(state);
    if (!st)
        return Error{ErrorKind::tempfail,
                     "store " + path_ + ": held message " + scrub(h.id, 40) + ": unknown state '" + scrub(state, 40) + "'"};
    h.state = *st;
    h.sender = col(s, 2);
    h.rcpts = split_lines(col(s, 3));
    h.subject = col(s, 4);
    h.message_id = col(s, 5);
    h.msg_key = col(s, 6);
    h.path = col(s, 7);
    h.size = sqlite3_column_int64(s, 8);
    h.received = sqlite3_column_int64(s, 9);
    h.expires = sqlite3_column_int64(s, 10);
    h.confirm = col(s, 11);
    h.bounce = col(s, 12);
    h.challenged = sqlite3_column_int64(s, 13);
    h.changed = sqlite3_column_int64(s, 14);
    h.note = col(s, 15);
    h.parent = col(s, 16);
    return h;
}

Result<bool> SqliteStore::held_add(const Held& h) {
    bool added = false;
    std::string rcpts = join_lines(h.rcpts);
    auto r = write([&]() -> Result<void> {
        auto s = prep("INSERT OR IGNORE INTO held(id,state,sender,rcpts,subject,message_id,msg_key,path,size,"
                      "received,expires,confirm,bounce,challenged,changed,note,parent)"
                      " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)");
        if (!s) return s.error();
        bind(*s, 1, h.id);
        bind(*s, 2, to_string(h.state));
        bind(*s, 3, h.sender);
        bind(*s, 4, rcpts);
        bind(*s, 5, h.subject);
        bind(*s, 6, h.message_id);
        bind(*s, 7, h.msg_key);
        bind(*s, 8, h.path);
        bind(*s, 9, h.size);
        bind(*s, 10, h.received);
        bind(*s, 11, h.expires);
        bind(*s, 12, h.confirm);
        bind(*s, 13, h.bounce);
        bind(*s, 14, h.challenged);
        bind(*s, 15, h.changed);
        bind(*s, 16, h.note);
        bind(*s, 17, h.parent);
        if (auto d = step_done(*s, "hold message"); !d) return d;
        added = sqlite3_changes(db_) > 0;
        return {};
    });
    if (!r) return r.error();
    return added;
}

Result<std::optional<Held>> SqliteStore::held_find(HeldKey key, std::string_view value) {
    static const std::string by_id = std::string("SELECT ") + held_cols + " FROM held WHERE id=?1";
    static const std::string by_confirm = std::string("SELECT ") + held_cols + " FROM held WHERE confirm=?1 LIMIT 1";
    static const std::string by_bounce = std::string("SELECT ") + held_cols + " FROM held WHERE bounce=?1 LIMIT 1";
    // A live row before an ended one: the retry of a message still held finds it.
    static const std::string by_key = std::string("SELECT ") + held_cols +
                                      " FROM held WHERE msg_key=?1 ORDER BY state='ended', received DESC LIMIT 1";
    const std::string& sql = key == HeldKey::id ? by_id : key == HeldKey::confirm ? by_confirm
                           : key == HeldKey::bounce ? by_bounce : by_key;
    auto s = prep(sql.c_str());
    if (!s) return s.error();
    bind(*s, 1, value);
    int rc = sqlite3_step(*s);
    std::optional<Held> out;
    std::optional<Error> bad;
    if (rc == SQLITE_ROW) {
        if (auto h = read_held(*s)) out = std::move(*h);
        else bad = h.error();
    }
    sqlite3_reset(*s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return err(rc, "read held message");
    if (bad) return *bad;
    return out;
}

Result<void> SqliteStore::held_each(const HeldFilter& f, const std::function<void(const Held&)>& fn) {
    static const std::string sql = std::string("SELECT ") + held_cols +
                                   " FROM held WHERE received < ?1 AND (?2 = '' OR sender = ?2)"
                                   " AND (?3 = '' OR instr(?3, ',' || state || ',') > 0) ORDER BY received, id";
    auto s = prep(sql.c_str());
    if (!s) return s.error();
    std::string states;
    if (!f.states.empty()) {
        states = ",";
        for (HeldState st : f.states) (states += to_string(st)) += ",";
    }
    bind(*s, 1, f.received_before);
    bind(*s, 2, f.sender);
    bind(*s, 3, states);
    int rc;
    while ((rc = sqlite3_step(*s)) == SQLITE_ROW) {
        auto h = read_held(*s);
        if (!h) {
            sqlite3_reset(*s);
            return h.error();
        }
        fn(*h);
    }
    sqlite3_reset(*s);
    if (rc != SQLITE_DONE) return err(rc, "list held messages");
    return {};
}

Result<bool> SqliteStore::held_transition(std::string_view id, const std::vector<HeldState>& from, HeldState to,
                             std::int64_t now, std::string_view note) {
    bool done = false;
    std::string states = ",";
    for (HeldState st : from) (states += to_string(st)) += ",";
    auto r = write([&]() -> Result<void> {
        auto s = prep("UPDATE held SET state=?2, changed=?3, note=CASE WHEN ?4='' THEN note ELSE ?4 END"
                      " WHERE id=?1 AND instr(?5, ',' || state || ',') > 0");
        if (!s) return s.error();
        bind(*s, 1, id);
        bind(*s, 2, to_string(to));
        bind(*s, 3, now);
        bind(*s, 4, note);
        bind(*s, 5, states);
        if (auto d = step_done(*s, "change held message"); !d) return d;
        done = sqlite3_changes(db_) > 0;
        return {};
    });
    if (!r) return r.error();
    return done;
}

Result<void> SqliteStore::held_set_challenged(std::string_view id, std::int64_t when) {
    return write([&]() -> Result<void> {
        auto s = prep("UPDATE held SET challenged=?2, changed=?2 WHERE id=?1");
        if (!s) return s.error();
        bind(*s, 1, id);
        bind(*s, 2, when);
        return step_done(*s, "record challenge");
    });
}

Result<bool> SqliteStore::held_remove(std::string_view id) {
    bool done = false;
    auto r = write([&]() -> Result<void> {
        auto s = prep("DELETE FROM held WHERE id=?1");
        if (!s) return s.error();
        bind(*s, 1, id);
        if (auto d = step_done(*s, "remove held message"); !d) return d;
        done = sqlite3_changes(db_) > 0;
        return {};
    });
    if (!r) return r.error();
    return done;
}

} // namespace mail
