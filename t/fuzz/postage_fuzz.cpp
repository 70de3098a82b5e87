// Fuzz target: the postage parsers. A book certificate or a Mailstamp-Postage
// value that parses writes back to text that parses to the same fields, and
// checking a parsed stamp never crashes. Violations trap.
#include "libmail/policy/postage.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace {
void check(bool ok) {
    if (!ok) __builtin_trap();
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);
    if (auto b = mail::parse_book(in)) {
        auto again = mail::parse_book(b->text);
        check(again && again->text == b->text && again->id == b->id && again->count == b->count &&
              again->expires == b->expires && again->owner == b->owner && again->sig == b->sig);
        (void)mail::book_signature_ok(*b);
    }
    if (auto s = mail::parse_postage(in)) {
        check(s->book.text.size() <= 1024 && s->body_hash.size() == 32 && s->sig.size() == 64);
        (void)mail::check_postage(*s, s->recipient, s->message_id, s->body_hash, s->header_hash, {s->book.authority}, s->date);
        check(mail::parse_postage(mail::format_postage(*s)).has_value());
        (void)s->spend_key();
    }
    if (auto d = mail::base64_decode(in)) check(mail::base64_encode(*d) == in);
    mail::RelaxedBodyHash h;
    h.update(in);
    check(h.finish().size() == 32);
    return 0;
}
