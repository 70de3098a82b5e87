// Signed postage (DESIGN §6): Ed25519 stamp books and Mailstamp-Postage stamps.
//
// An authority key signs stamp books (book id, owner public key, count,
// expiry). The book's owner signs each stamp over (book id, index, recipient,
// date, Message-ID, SHA-256 of the body under RFC 6376 relaxed body
// canonicalisation, and — from version 2 — SHA-256 of the From, To, Cc,
// Subject, Date and Message-ID fields under RFC 6376 relaxed header
// canonicalisation), so a stamp lifted onto another message, recipient or
// subject fails, while an MTA rewriting CRLF/LF or refolding does not break
// it. Verifying needs only the authority's public key: the stamp carries its
// book certificate. The text formats and test vectors are in mstamp(1).
#pragma once
#include "libmail/base/canon.hpp"
#include "libmail/base/codec.hpp"
#include "libmail/base/error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// The header fields a version 2 stamp signs, in the order they are hashed.
inline constexpr std::string_view postage_signed_fields[] = {"From", "To", "Cc", "Subject", "Date", "Message-ID"};

/// SHA-256 (32 octets) of every field of raw_fields named in postage_signed_fields, relaxed:
/// for each name in that order, each such field in header order. Absent fields add nothing.
std::string postage_header_hash(const std::vector<std::string_view>& raw_fields);

/// An Ed25519 key pair, raw 32-octet keys.
struct KeyPair {
    std::string priv;
    std::string pub;
};

/// A fresh key pair from OpenSSL's random source.
Result<KeyPair> ed25519_generate();
/// The public key of a raw private key.
Result<std::string> ed25519_public(std::string_view priv);
/// The 64-octet signature of data.
Result<std::string> ed25519_sign(std::string_view priv, std::string_view data);
/// True when sig is pub's signature of data.
bool ed25519_verify(std::string_view pub, std::string_view data, std::string_view sig);

/// A public key as written in key files and on the command line (base64 of 32 octets).
std::string format_public_key(std::string_view pub);
/// Reads a key file: one public key per line, '#' comments and blank lines ignored.
Result<std::vector<std::string>> read_public_keys(const std::string& path);
/// Parses one public key (base64 of 32 octets).
std::optional<std::string> parse_public_key(std::string_view text);

/// A stamp book certificate.
struct BookCert {
    std::string id;         ///< 16 octets
    std::string owner;      ///< owner's public key, 32 octets
    std::int64_t count = 0; ///< stamps 0..count-1
    std::int64_t expires = 0;
    std::string authority;  ///< the issuing authority's public key, 32 octets
    std::string sig;        ///< the authority's signature, 64 octets
    std::string text;       ///< the certificate as written (one line, no CR/LF)
    std::string id_hex() const;
};

/// Issues a book: a fresh random id, signed with the authority's key.
Result<BookCert> issue_book(const KeyPair& authority, std::string_view owner_pub, std::int64_t count,
                            std::int64_t expires);
/// Issues a book with the given 16-octet id (for test vectors; issue_book picks a random one).
Result<BookCert> issue_book_with_id(const KeyPair& authority, std::string_view owner_pub, std::int64_t count,
                                    std::int64_t expires, std::string_view id);
/// Parses a certificate's text; nothing when malformed. The signature is not checked.
std::optional<BookCert> parse_book(std::string_view text);
/// True when the certificate's signature verifies under its authority key.
bool book_signature_ok(const BookCert& b);

/// The stamp version mstamp writes; version 1 stamps (no header hash) are still read.
inline constexpr int postage_version = 2;

/// A postage stamp taken apart.
struct PostageStamp {
    int version = postage_version;
    BookCert book;
    std::int64_t index = 0;
    std::string recipient;   ///< normalised address
    std::int64_t date = 0;   ///< Unix seconds, when stamped
    std::string message_id;  ///< as in the Message-ID field, angle brackets included
    std::string body_hash;   ///< 32 octets
    std::string header_hash; ///< 32 octets (version 2); empty in version 1
    std::string sig;         ///< owner's signature, 64 octets
    /// "book:<id hex>:<index>", the key of its spend record.
    std::string spend_key() const;
};

/// The version 2 Mailstamp-Postage field value for one recipient, signed with the owner's private key;
/// header_hash is postage_header_hash of the message's header as it will be sent.
Result<std::string> make_postage(const BookCert& book, std::string_view owner_priv, std::int64_t index,
                                 std::string_view recipient, std::int64_t date, std::string_view message_id,
                                 std::string_view body_hash, std::string_view header_hash);
/// Parses a Mailstamp-Postage field value (unfolded), version 1 or 2; nothing when malformed.
std::optional<PostageStamp> parse_postage(std::string_view value);
/// The stamp's field value in its one canonical spelling (one line, "; " between fields).
std::string format_postage(const PostageStamp& s);

/// How long a postage stamp stays good after its date, and the allowance for clock skew (as hashcash).
inline constexpr std::int64_t postage_validity = 28 * 86400;
inline constexpr std::int64_t postage_grace = 2 * 86400;

/// Outcomes of checking a stamp (the local part; spending is checked by the caller).
enum class PostageCheck {
    ok,
    malformed,
    untrusted,       ///< the book's authority key is not one of the trusted keys
    bad_book,        ///< the book's signature does not verify
    book_expired,    ///< past the book's expiry at the stamp's date or now
    bad_index,       ///< index outside 0..count-1
    wrong_recipient, ///< not for this recipient
    wrong_message,   ///< Message-ID or body hash differ
    wrong_header,    ///< a signed header field differs (version 2)
    bad_signature,   ///< the owner's signature does not verify
    expired,         ///< older than validity + grace
    future,          ///< dated after now + grace
};
/// The word for an outcome.
std::string_view to_string(PostageCheck c);

/// Checks s for recipient (normalised), the message's Message-ID, body hash and header hash
/// (postage_header_hash; ignored for version 1), trusted authority keys, and now.
PostageCheck check_postage(const PostageStamp& s, std::string_view recipient, std::string_view message_id,
                           std::string_view body_hash, std::string_view header_hash,
                           const std::vector<std::string>& trusted, std::int64_t now);
/// What can be checked of s without its message: authority trusted, book signature, index, owner signature.
PostageCheck check_stamp_signatures(const PostageStamp& s, const std::vector<std::string>& trusted);

} // namespace mail
