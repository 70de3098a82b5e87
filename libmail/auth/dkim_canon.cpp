// Canonicalisation (RFC 6376 §3.4): header fields simple and relaxed, and the body streamed through a
// running hash that takes at most l= canonical octets (§3.4.5, §3.5 l=). Bare LF is taken as CRLF.
#include "libmail/auth/dkim_internal.hpp"

#include "libmail/base/canon.hpp"

#include <openssl/evp.h>

#include <cstdlib>

namespace mail::dkim::detail {

std::string canon_header(std::string_view raw, bool relaxed) {
    if (relaxed) return relaxed_header_field(raw);
    // simple: unchanged, but every line end is CRLF (a bare LF taken as one), and it ends with one.
    std::string out;
    out.reserve(raw.size() + 2);
    for (std::size_t k = 0; k < raw.size(); ++k) {
        char c = raw[k];
        if (c == '\n' && (k == 0 || raw[k - 1] != '\r')) out.push_back('\r');
        out.push_back(c);
    }
    if (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0) out += "\r\n";
    return out;
}

BodyHash::BodyHash(bool relaxed, const EVP_MD* md, long long limit) : relaxed_(relaxed), md_(md), limit_(limit) {
    ctx_ = EVP_MD_CTX_new();
    if (!ctx_ || EVP_DigestInit_ex(ctx_, md, nullptr) != 1) std::abort();
}

BodyHash::~BodyHash() { EVP_MD_CTX_free(ctx_); }

void BodyHash::put(const char* p, std::size_t n) {
    if (limit_ >= 0) {
        auto lim = static_cast<std::uint64_t>(limit_);
        std::size_t take = total_ >= lim ? 0 : static_cast<std::size_t>(std::min<std::uint64_t>(n, lim - total_));
        if (take > 0) EVP_DigestUpdate(ctx_, p, take);
    } else {
        EVP_DigestUpdate(ctx_, p, n);
    }
    total_ += n;
}

void BodyHash::text(char c) {
    if (!line_has_text_) {
        for (; empty_lines_ > 0; --empty_lines_) put("\r\n", 2);
        line_has_text_ = true;
    }
    if (pending_space_) put(" ", 1);
    pending_space_ = false;
    put(&c, 1);
}

void BodyHash::end_line() {
    if (line_has_text_) put("\r\n", 2);
    else ++empty_lines_;
    line_has_text_ = false;
    pending_space_ = false;
}

void BodyHash::update(std::string_view chunk) {
    for (char c : chunk) {
        if (cr_) {
            cr_ = false;
            if (c == '\n') {
                end_line();
                continue;
            }
            text('\r');  // a lone CR is data
        }
        if (c == '\r') cr_ = true;
        else if (c == '\n') end_line();
        else if (relaxed_ && (c == ' ' || c == '\t')) {
            // relaxed: whitespace runs become one SP, none at the end of a line (§3.4.4)
            pending_space_ = true;
        } else text(c);
    }
}

void BodyHash::finish() {
    if (done_) return;
    done_ = true;
    if (cr_) {
        cr_ = false;
        text('\r');
    }
    if (line_has_text_) put("\r\n", 2);  // a last line without its line end still ends with CRLF
    if (!relaxed_ && total_ == 0) put("\r\n", 2);  // simple: an empty body is one CRLF (§3.4.3)
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, md, &n);
    digest_.assign(reinterpret_cast<const char*>(md), n);
}

} // namespace mail::dkim::detail
