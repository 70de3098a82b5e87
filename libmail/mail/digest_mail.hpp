// The digest of held mail (mchallenge(1) DIGEST) as a message: a multipart/alternative with a plain-text part
// and an HTML part that needs no images, scripts, styles from elsewhere or links other than mailto:. Pure:
// the caller gives every value, already taken from the store; everything a sender wrote (its address, its
// subject) is cut to a bounded length, made one line and, in the HTML, escaped.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// One held message as the digest lists it.
struct DigestEntry {
    std::string id;         ///< the held id
    std::string sender;     ///< "" for <>
    std::string subject;
    std::int64_t received = 0;
    std::int64_t size = 0;
    std::string category;   ///< e.g. "Unknown [B], challenged"
    std::string why;        ///< why it is held
    std::string release;    ///< the address that releases it
    std::string whitelist;  ///< the address that releases it and whitelists its sender
};

/// One digest, for one recipient.
struct DigestMail {
    std::string id;          ///< the digest's id (Message-ID, boundary)
    std::string recipient;
    std::string from;        ///< the envelope sender and From: our own address, known when the digest comes back
    std::string all;         ///< the address that releases every entry
    std::string hostname;
    std::int64_t date = 0;
    std::int64_t expires = 0;  ///< when the addresses stop working (the soonest of them)
    std::vector<DigestEntry> entries;
};

/// The longest subject a digest shows, in octets (longer ones are cut at a UTF-8 boundary, "..." added).
inline constexpr std::size_t digest_subject_max = 78;

/// s made safe to stand in HTML text or a quoted attribute: & < > " ' as character references.
std::string html_escape(std::string_view s);

/// A mailto: URI for address with subject, percent-encoding every octet that is not unreserved (RFC 6068).
std::string mailto_uri(std::string_view address, std::string_view subject);

/// s with its RFC 2047 encoded words (B and Q) in UTF-8, US-ASCII or ISO-8859-1 decoded to UTF-8; words in
/// other charsets, and anything malformed, are left as written.
std::string decode_words(std::string_view s);

/// The subject as the digest shows it: encoded words decoded, one line, at most digest_subject_max octets;
/// "(no subject)" when empty.
std::string digest_subject(std::string_view s);

/// The plain-text part's content.
std::string digest_text(const DigestMail& d);

/// The HTML part's content: a whole document.
std::string digest_html(const DigestMail& d);

/// The whole message (LF line ends, as a sendmail program or SmtpClient takes it).
std::string compose_digest(const DigestMail& d);

} // namespace mail
