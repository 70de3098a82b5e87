// Stamp-book keys and balance: see book.hpp.
#include "libmail/policy/book.hpp"

#include "libmail/policy/postage.hpp"

namespace mail {

Result<std::optional<std::string>> owner_key_for(Store& store, std::string_view pub) {
    auto keys = store.secrets(owner_key_purpose);
    if (!keys) return keys.error();
    for (const auto& k : *keys) {
        auto p = ed25519_public(k.bytes);
        if (p && *p == pub) return std::optional<std::string>(k.bytes);
    }
    return std::optional<std::string>();
}

Result<std::int64_t> book_balance(Store& store, std::int64_t now_) {
    auto books = store.book_list();
    if (!books) return books.error();
    std::int64_t n = 0;
    for (const auto& b : *books)
        if (b.expires > now_) n += b.count - b.next;
    return n;
}

} // namespace mail
