// The shared store (DESIGN §4): one interface for every program, so a second
// backend can be added without touching the tools. The SQLite backend lives in
// store_sqlite.cpp and the sqlite_*.cpp files beside it; every statement is
// prepared, every write is one short IMMEDIATE transaction, and a lock held
// past the busy timeout is a tempfail.
#pragma once
#include "libmail/base/error.hpp"

#include <cstdint>
#include <climits>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// The kinds of whitelist entry.
enum class WlKind {
    address,     ///< one sender address
    domain,      ///< a sender domain, exactly
    subdomains,  ///< a sender domain and every domain below it
    recipient,   ///< an unconditional recipient: takes mail from anyone
};

/// The stable name of a kind, as stored and exported.
std::string_view to_string(WlKind k);
/// The kind named by s, or nothing.
std::optional<WlKind> parse_wl_kind(std::string_view s);

/// The authentication a whitelist entry's hit needs (mwhitelist(1) --auth; mailstamp(7) ADMISSION).
enum class WlAuth {
    automatic,  ///< "auto": a pass when the sender's domain publishes SPF, DMARC or signs; else none needed
    spf,        ///< SPF pass for the domain of the identity matched
    dkim,       ///< a DKIM pass for that domain
    dmarc,      ///< a DMARC pass (an aligned SPF or DKIM pass, or a trusted ARC chain)
    none,       ///< no authentication: the behaviour before issue 14, for the rare partner that needs it
};

/// The stable name of a requirement ("auto", "spf", "dkim", "dmarc", "none").
std::string_view to_string(WlAuth a);
/// The requirement named by s, or nothing.
std::optional<WlAuth> parse_wl_auth(std::string_view s);

/// One whitelist entry as stored. value and scope are normalised.
struct WlEntry {
    std::int64_t id = 0;
    WlKind kind = WlKind::address;
    std::string value;
    std::string scope;  ///< "" = every recipient; else a protected domain or one recipient
    std::string note;
    std::string source = "manual";  ///< manual, import, outgoing, confirmed
    WlAuth auth = WlAuth::automatic;  ///< what a hit needs
    std::int64_t created = 0;
    std::int64_t hits = 0;
    std::int64_t last_hit = 0;
};

/// Counts for `mwhitelist stats`.
struct WlStats {
    std::vector<std::pair<std::string, std::int64_t>> by_kind;
    std::vector<std::pair<std::string, std::int64_t>> by_source;
    std::int64_t total = 0;
    std::int64_t hits = 0;
    std::int64_t domains = 0;
};

/// States a one-time or revoked token can be recorded in; reserved: held by an SMTP transaction between RCPT
/// and the end of its DATA (never a record of its own).
enum class TokenState { used, revoked, reserved };

/// The stable name of a token state.
std::string_view to_string(TokenState s);

/// A recorded token (used or revoked), kept until it expires.
struct TokenRecord {
    std::string id;         ///< the token payload, lower case
    TokenState state = TokenState::used;
    std::string recipient;  ///< the address the token stands for
    std::int64_t expires = 0;
    std::int64_t changed = 0;
};

/// A secret key with its id, for MACs that must stay checkable across rotation.
struct Secret {
    int key_id = 0;
    std::string bytes;
    std::int64_t created = 0;
};

/// What recording a spent stamp found.
enum class SpendState {
    fresh,          ///< first time seen: recorded now
    same_message,   ///< seen before on this same message (a retry, a second filter): not a double spend
    other_message,  ///< seen before on another message: a double spend
};

/// A stamp spent on a message.
struct SpendRecord {
    std::string stamp;    ///< the stamp's identity (hashcash text, or "book:ID:INDEX")
    std::string message;  ///< the message's identity (Message-ID and body hash)
    std::int64_t now = 0;
    std::int64_t expires = 0;  ///< when the record may be dropped (the stamp is worthless by then)
};

/// An imported stamp book.
struct Book {
    std::string id;    ///< the book id (hex)
    std::string cert;  ///< the certificate as issued (text)
    std::int64_t count = 0;
    std::int64_t next = 0;  ///< next index to use
    std::int64_t expires = 0;
    std::int64_t imported = 0;
};

/// One stamp taken from a book.
struct BookStamp {
    std::string book;
    std::int64_t index = 0;
};

/// An SMTP AUTH user (msmtp-proxy).
struct User {
    std::string name;
    std::string hash;  ///< the password hash, as password.hpp writes it
    std::int64_t created = 0;
    std::int64_t changed = 0;
    std::vector<std::string> senders{};  ///< addresses (or @domains) the user may send as; empty: the default (user_senders)
};

/// States of a held row: held (no challenge yet), pending (challenged), quiet (held, never challenged),
/// releasing (being delivered), deletable (to be purged), match (a notice that matched a challenge),
/// ended (its file gone; the row kept until expiry so a late confirmation is known).
enum class HeldState { held, pending, quiet, releasing, deletable, match, ended };

/// The stable name of a held state, as stored and shown.
std::string_view to_string(HeldState s);
/// The held state a stored name stands for; nothing for any other text.
std::optional<HeldState> parse_held_state(std::string_view s);

/// A message held by mchallenge (or a notice filed against one), as stored.
struct Held {
    std::string id;          ///< 16 hex digits
    HeldState state = HeldState::held;
    std::string sender;      ///< normalised; "" for <>
    std::vector<std::string> rcpts;
    std::string subject;     ///< one line, for list and the challenge
    std::string message_id;
    std::string msg_key;     ///< "sha256:HEX" of the envelope and the whole message (DeliveryDigest): the same
                             ///< delivery again is held once; rows from before schema 6 hold sender|Message-ID|size
    std::string path;        ///< the file holding the message's bytes
    std::int64_t size = 0;
    std::int64_t received = 0;
    std::int64_t expires = 0;
    std::string confirm;     ///< the confirm token's payload
    std::string bounce;      ///< the payload of the token in the challenge's envelope sender
    std::int64_t challenged = 0;
    std::int64_t changed = 0;
    std::string note;        ///< why it is in its state
    std::string parent;      ///< a match row: the held message it matched
};

/// What a digest address does when the digest's recipient writes to it (mchallenge(1) DIGEST).
enum class DigestAction {
    release,    ///< releases one held message
    whitelist,  ///< releases one held message and whitelists its sender
    all,        ///< releases every message the digest listed
    from,       ///< the digest's own envelope sender: marks the digest coming back as ours; releases nothing
};

/// The stable name of an action, as stored.
std::string_view to_string(DigestAction a);
/// The action a stored name stands for; nothing for any other text.
std::optional<DigestAction> parse_digest_action(std::string_view s);

/// An address handed out in a digest, bound to its recipient and the held messages it acts on.
struct DigestToken {
    std::string id;                 ///< the token payload, lower case
    DigestAction action = DigestAction::release;
    std::string recipient;          ///< the digest's recipient: the only one whose reply counts
    std::vector<std::string> held;  ///< the held ids it acts on
    std::string digest;             ///< the digest it came in
    std::int64_t expires = 0;
    std::int64_t used = 0;          ///< when it was used; 0: not yet
};

/// Which column held_find looks in.
enum class HeldKey { id, confirm, bounce, msg_key };

/// Which held rows held_each visits.
struct HeldFilter {
    std::int64_t received_before = INT64_MAX;
    std::string sender;               ///< "" = any
    std::vector<HeldState> states;    ///< empty = any
};

/// An outgoing message held for GET by msourced: one row per recipient domain of a message.
struct SourceOut {
    std::string id;                  ///< 32 lower-case hex digits: the GET key, unique
    std::string domain;              ///< the recipient domain this row notifies
    std::string sender;              ///< envelope sender
    std::vector<std::string> rcpts;  ///< the recipients in domain
    std::string path;                ///< the file with the message's bytes
    std::int64_t size = 0;
    std::int64_t created = 0;
    std::int64_t expires = 0;        ///< served until then
    std::int64_t gets = 0;           ///< GETs served so far
    std::int64_t max_gets = 0;       ///< GETs allowed
    std::string state;               ///< queued (notice not given yet), notified (SOURCE accepted),
                                     ///< sent (given by DATA), failed (refused for good)
    std::int64_t tries = 0;          ///< notice attempts so far
    std::int64_t next_try = 0;       ///< not tried again before this
    std::string note;                ///< the last reply or error
};

/// A SOURCE notice msourced accepted: a partial message whose body is fetched from the sender's MX.
struct SourceIn {
    std::string id;                  ///< 32 lower-case hex digits
    std::string domain;              ///< the sender's domain: where the body is fetched from
    std::string sender;
    std::vector<std::string> rcpts;
    std::string client;              ///< the address of the client that gave the notice
    std::string helo;
    std::int64_t received = 0;
    std::int64_t expires = 0;
    std::int64_t tries = 0;          ///< fetch attempts so far
    std::int64_t next_try = 0;
    std::string note;                ///< the last reply or error
};

/// How to open a store.
/// What open_store does when the store file does not exist.
enum class StoreCreate {
    never,  ///< nothing is created: a missing store is kind tempfail naming the path
    file,   ///< the file is created (0600, 0660 in a setgid group directory), never its directory
    dirs,   ///< the file and its missing directories (0700): only for the default per-user path
};

struct StoreOptions {
    int busy_timeout_ms = 10000;
    bool read_only = false;  ///< do not create or migrate; fail if missing
    StoreCreate create = StoreCreate::file;  ///< when the file is missing (ignored when read_only: never)
};

/// The store interface shared by every program.
class Store {
public:
    virtual ~Store() = default;

    /// Runs fn inside one write transaction: all of it lands, or none of it.
    virtual Result<void> transaction(const std::function<Result<void>()>& fn) = 0;

    /// Inserts e unless (kind, value, scope) exists; true when inserted.
    virtual Result<bool> wl_insert(const WlEntry& e) = 0;
    /// Removes the entry (kind, value, scope); true when one was removed.
    virtual Result<bool> wl_remove(WlKind kind, std::string_view value, std::string_view scope) = 0;
    /// Every entry whose value is one of values and whose scope is one of scopes.
    virtual Result<std::vector<WlEntry>> wl_lookup(const std::vector<std::string>& values,
                                                   const std::vector<std::string>& scopes) = 0;
    /// Calls fn for every entry, ordered by kind, value, scope.
    virtual Result<void> wl_each(const std::function<void(const WlEntry&)>& fn) = 0;
    /// Counts n hits on entry id, the last at time now.
    virtual Result<void> wl_hit(std::int64_t id, std::int64_t now, std::int64_t n = 1) = 0;
    /// Counts of entries by kind and source.
    virtual Result<WlStats> wl_stats() = 0;

    /// Adds a protected domain; true when it was new.
    virtual Result<bool> domain_add(std::string_view domain, std::int64_t now) = 0;
    /// Removes a protected domain; true when it existed.
    virtual Result<bool> domain_remove(std::string_view domain) = 0;
    /// The protected domains, sorted.
    virtual Result<std::vector<std::string>> domain_list() = 0;

    /// The secrets kept for purpose, newest key id first.
    virtual Result<std::vector<Secret>> secrets(std::string_view purpose) = 0;
    /// Stores a new secret for purpose under a fresh key id, returned.
    virtual Result<int> secret_add(std::string_view purpose, std::string_view bytes, std::int64_t now) = 0;

    /// Records id as used unless a record exists: the existing state, or nothing when this call recorded it.
    /// Atomic across processes: of two concurrent calls exactly one gets nothing. A live reservation of a
    /// transaction counts as a use (the state reserved).
    virtual Result<std::optional<TokenState>> token_consume(const TokenRecord& r) = 0;
    /// Reserves r.id for holder until `until` unless it is recorded or another holder's reservation is live at
    /// r.changed: that state, or nothing when holder has it now. Atomic across processes.
    virtual Result<std::optional<TokenState>> token_reserve(const TokenRecord& r, std::string_view holder,
                                                            std::int64_t until) = 0;
    /// Records r as used and drops holder's reservation, as token_consume but past holder's own reservation.
    virtual Result<std::optional<TokenState>> token_claim(const TokenRecord& r, std::string_view holder) = 0;
    /// Drops holder's reservation of id (if it still has one).
    virtual Result<void> token_release(std::string_view id, std::string_view holder) = 0;
    /// Deletes the used record of id, so the token works again (its message was not taken); true when it did.
    virtual Result<bool> token_give_back(std::string_view id) = 0;
    /// Records id as revoked (replacing a used record).
    virtual Result<void> token_revoke(const TokenRecord& r) = 0;
    /// The record for id, if any.
    virtual Result<std::optional<TokenRecord>> token_get(std::string_view id) = 0;
    /// Every record not yet expired at now.
    virtual Result<std::vector<TokenRecord>> token_list(std::int64_t now) = 0;
    /// Deletes records expired before now, and reservations run out by then; how many records.
    virtual Result<std::int64_t> token_expire(std::int64_t now) = 0;

    /// Records r unless its stamp is recorded already; says which. Atomic across processes.
    virtual Result<SpendState> spend(const SpendRecord& r) = 0;
    /// Deletes spend records expired before now; how many.
    virtual Result<std::int64_t> spend_expire(std::int64_t now) = 0;

    /// Adds a stamp book; false when a book with its id exists.
    virtual Result<bool> book_add(const Book& b) = 0;
    /// Every book, soonest expiry first.
    virtual Result<std::vector<Book>> book_list() = 0;
    /// Takes n stamps from unexpired books, soonest expiry first, atomically:
    /// all n, or none (an empty result) when the books hold fewer.
    virtual Result<std::vector<BookStamp>> book_take(std::int64_t n, std::int64_t now) = 0;

    /// The messages sender sent in the window before now, then records n more at now. Older records are dropped.
    virtual Result<std::int64_t> volume_add(std::string_view sender, std::int64_t n, std::int64_t now,
                                            std::int64_t window) = 0;

    /// Adds a user; false when the name exists.
    virtual Result<bool> user_add(const User& u) = 0;
    /// Replaces the password hash of name at now; false when there is no such user.
    virtual Result<bool> user_set_hash(std::string_view name, std::string_view hash, std::int64_t now) = 0;
    /// Replaces the senders name may use (empty: the default); false when there is no such user.
    virtual Result<bool> user_set_senders(std::string_view name, const std::vector<std::string>& senders) = 0;
    /// Removes name; false when there was no such user.
    virtual Result<bool> user_remove(std::string_view name) = 0;
    /// The user called name, if any.
    virtual Result<std::optional<User>> user_get(std::string_view name) = 0;
    /// Every user, by name.
    virtual Result<std::vector<User>> user_list() = 0;

    /// Records a held message; false when its id exists.
    virtual Result<bool> held_add(const Held& h) = 0;
    /// The held row whose key column equals value, if any (for msg_key a live row before an ended one).
    virtual Result<std::optional<Held>> held_find(HeldKey key, std::string_view value) = 0;
    /// Calls fn for every row the filter takes, oldest first.
    virtual Result<void> held_each(const HeldFilter& f, const std::function<void(const Held&)>& fn) = 0;
    /// Moves row id to state to (and note, when not empty) if its state is one of from; true when it moved.
    /// Atomic across processes: of two concurrent calls from the same states, one gets true.
    virtual Result<bool> held_transition(std::string_view id, const std::vector<HeldState>& from, HeldState to,
                                         std::int64_t now, std::string_view note) = 0;
    /// Records when the challenge for id went out.
    virtual Result<void> held_set_challenged(std::string_view id, std::int64_t when) = 0;
    /// Deletes row id; true when it existed.
    virtual Result<bool> held_remove(std::string_view id) = 0;

    /// Records the addresses of one digest, all or none.
    virtual Result<void> digest_add(const std::vector<DigestToken>& ts) = 0;
    /// The digest address with payload id, if any.
    virtual Result<std::optional<DigestToken>> digest_get(std::string_view id) = 0;
    /// Uses digest address id at now: true when this call did (it existed, was unused and in date), false
    /// when it was used already, gone or out of date. One statement: of two concurrent calls, one gets true.
    virtual Result<bool> digest_claim(std::string_view id, std::int64_t now) = 0;
    /// Makes a claimed address usable again (its release could not be done now); true when it did.
    virtual Result<bool> digest_unclaim(std::string_view id, std::int64_t used) = 0;
    /// Deletes digest addresses expired before now; how many.
    virtual Result<std::int64_t> digest_expire(std::int64_t now) = 0;

    /// Records an outgoing row; false when its id exists.
    virtual Result<bool> source_out_add(const SourceOut& o) = 0;
    /// Every outgoing row, oldest (created, then rowid) first.
    virtual Result<std::vector<SourceOut>> source_out_list() = 0;
    /// Takes an outgoing row in state queued whose next_try <= now for a notice attempt: sets its next_try to
    /// until and returns true; false when it is not due (another process took it). Atomic across processes.
    virtual Result<bool> source_out_claim(std::string_view id, std::int64_t now, std::int64_t until) = 0;
    /// Sets state, tries, next_try and note of row id.
    virtual Result<void> source_out_update(std::string_view id, std::string_view state, std::int64_t tries,
                                           std::int64_t next_try, std::string_view note) = 0;
    /// Serves a GET: when row id exists in state notified, now < expires and gets < max_gets, counts one more
    /// GET and returns the row (with gets already incremented); nothing otherwise. Atomic across processes:
    /// max_gets concurrent calls at most get a row.
    virtual Result<std::optional<SourceOut>> source_out_get(std::string_view id, std::int64_t now) = 0;
    /// Deletes row id; true when it existed.
    virtual Result<bool> source_out_remove(std::string_view id) = 0;
    /// How many outgoing rows use the file path (the rows of one message share it).
    virtual Result<std::int64_t> source_out_path_uses(std::string_view path) = 0;

    /// Records a partial message; false when (domain, id) exists already.
    virtual Result<bool> source_in_add(const SourceIn& p) = 0;
    /// Every partial row, ordered by domain, then received, then rowid.
    virtual Result<std::vector<SourceIn>> source_in_list() = 0;
    /// Takes partial row (domain, id) whose next_try <= now for a fetch: sets its next_try to until and
    /// returns true; false when it is not due or gone. Atomic across processes (two fetchers: one gets true).
    virtual Result<bool> source_in_claim(std::string_view domain, std::string_view id, std::int64_t now,
                                         std::int64_t until) = 0;
    /// Sets tries, next_try and note of partial row (domain, id).
    virtual Result<void> source_in_retry(std::string_view domain, std::string_view id, std::int64_t tries,
                                         std::int64_t next_try, std::string_view note) = 0;
    /// Deletes partial row (domain, id); true when it existed.
    virtual Result<bool> source_in_remove(std::string_view domain, std::string_view id) = 0;

    /// Counts one event for key (a client address) in fixed windows of window seconds (the window is
    /// now / window): true when the events in the current window, this one included, are at most limit.
    /// Rows of past windows are deleted on the way. Atomic across processes.
    virtual Result<bool> rate_hit(std::string_view key, std::int64_t now, std::int64_t window, std::int64_t limit) = 0;
    /// The events counted for key in the current window of window seconds (the windows of rate_hit), after
    /// adding add (0: only look; no row is written then). Atomic across processes.
    virtual Result<std::int64_t> rate_count(std::string_view key, std::int64_t now, std::int64_t window,
                                            std::int64_t add) = 0;
};

/// For a process whose threads each use their own store objects (msmtp-proxy): SQLite without its
/// per-connection mutexes and memory statistics, whose global lock every thread queued on. Call before any
/// store is opened; false when SQLite was initialised already.
bool store_multithread_init();

/// Opens (creating and migrating when needed) the SQLite store at path.
/// A new personal store is mode 0600; in a setgid group-writable directory, 0660.
Result<std::unique_ptr<Store>> open_store(const std::string& path, const StoreOptions& opt = {});

/// A config error for a store name no program may use: a postgresql:// URI that is not one, or that holds a
/// password (which would show in ps and in logs). Programs check their store name once at start.
Result<void> check_store_name(const std::string& name);

/// The schema version this build reads and writes.
int store_schema_version();

} // namespace mail
