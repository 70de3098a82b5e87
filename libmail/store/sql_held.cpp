// The store (SQL, both engines): messages held by mchallenge.
#include "libmail/store/sql_store.hpp"

#include "libmail/base/text.hpp"

namespace mail {

namespace {

constexpr const char* held_cols =
    "id,state,sender,rcpts,subject,message_id,msg_key,path,size,received,expires,confirm,bounce,challenged,"
    "changed,note,parent";

// The states as the queries match them: ",held,pending," (LIKE '%,' || state || ',%': state names hold no % or _).
std::string state_list(const std::vector<HeldState>& states) {
    std::string out = ",";
    for (HeldState st : states) (out += to_string(st)) += ",";
    return out;
}

} // namespace

// A row whose state is none of HeldState's names (not written by mailstamp) is an error, never
// guessed at: acting on it as some state could deliver or delete what nobody released.
Result<Held> SqlStore::read_held(const SqlRow& s) const {
    Held h;
    std::string state;
    SqlReader(s) >> h.id >> state >> h.sender >> h.rcpts >> h.subject >> h.message_id >> h.msg_key >> h.path >>
        h.size >> h.received >> h.expires >> h.confirm >> h.bounce >> h.challenged >> h.changed >> h.note >> h.parent;
    auto st = parse_held_state(state);
    if (!st)
        return Error{ErrorKind::tempfail,
                     "store " + db_.name() + ": held message " + scrub(h.id, 40) + ": unknown state '" + scrub(state, 40) + "'"};
    h.state = *st;
    return h;
}

Result<bool> SqlStore::held_add(const Held& h) {
    std::string rcpts = join_lines(h.rcpts);
    return write_any("INSERT INTO held(id,state,sender,rcpts,subject,message_id,msg_key,path,size,"
                     "received,expires,confirm,bounce,challenged,changed,note,parent)"
                     " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)"
                     " ON CONFLICT DO NOTHING",
                     "hold message", h.id, to_string(h.state), h.sender, rcpts, h.subject, h.message_id, h.msg_key,
                     h.path, h.size, h.received, h.expires, h.confirm, h.bounce, h.challenged, h.changed, h.note,
                     h.parent);
}

Result<std::optional<Held>> SqlStore::held_find(HeldKey key, std::string_view value) {
    static const std::string by_id = std::string("SELECT ") + held_cols + " FROM held WHERE id=?1";
    static const std::string by_confirm = std::string("SELECT ") + held_cols + " FROM held WHERE confirm=?1 LIMIT 1";
    static const std::string by_bounce = std::string("SELECT ") + held_cols + " FROM held WHERE bounce=?1 LIMIT 1";
    // A live row before an ended one: the retry of a message still held finds it.
    static const std::string by_key = std::string("SELECT ") + held_cols +
                                      " FROM held WHERE msg_key=?1 ORDER BY state='ended', received DESC LIMIT 1";
    const std::string& sql = key == HeldKey::id ? by_id : key == HeldKey::confirm ? by_confirm
                           : key == HeldKey::bounce ? by_bounce : by_key;
    std::optional<Held> out;
    std::optional<Error> bad;
    auto f = step_row(bound(sql.c_str(), value), "read held message", [&](const SqlRow& s) {
        if (auto h = read_held(s)) out = std::move(*h);
        else bad = h.error();
    });
    if (!f) return f.error();
    if (bad) return *bad;
    return out;
}

Result<void> SqlStore::held_each(const HeldFilter& f, const std::function<void(const Held&)>& fn) {
    static const std::string sql = std::string("SELECT ") + held_cols +
                                   " FROM held WHERE received < ?1 AND (?2 = '' OR sender = ?2)"
                                   " AND (?3 = '' OR ?3 LIKE '%,' || state || ',%') ORDER BY received, id";
    std::string states = f.states.empty() ? std::string() : state_list(f.states);
    return each_row(bound(sql.c_str(), f.received_before, f.sender, states), "list held messages",
                    [&](const SqlRow& s) -> Result<void> {
                        auto h = read_held(s);
                        if (!h) return h.error();
                        fn(*h);
                        return {};
                    });
}

Result<bool> SqlStore::held_transition(std::string_view id, const std::vector<HeldState>& from, HeldState to,
                                          std::int64_t now, std::string_view note) {
    std::string states = state_list(from);
    return write_any("UPDATE held SET state=?2, changed=?3, note=CASE WHEN ?4='' THEN note ELSE ?4 END"
                     " WHERE id=?1 AND ?5 LIKE '%,' || state || ',%'",
                     "change held message", id, to_string(to), now, note, states);
}

Result<void> SqlStore::held_set_challenged(std::string_view id, std::int64_t when) {
    return no_count(write_run("UPDATE held SET challenged=?2, changed=?2 WHERE id=?1", "record challenge", id, when));
}

Result<bool> SqlStore::held_remove(std::string_view id) {
    return write_any("DELETE FROM held WHERE id=?1", "remove held message", id);
}

} // namespace mail
