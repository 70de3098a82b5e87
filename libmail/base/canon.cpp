// Relaxed canonicalisation: see canon.hpp and RFC 6376 §3.4.2, §3.4.4.
#include "libmail/base/canon.hpp"

#include "libmail/base/text.hpp"

#include <openssl/evp.h>

#include <cstdlib>

namespace mail {

// ---- relaxed body hash ----

struct RelaxedBodyHash::Impl {
    EVP_MD_CTX* ctx = nullptr;
    std::size_t empty_lines = 0;  // empty lines seen but not yet written: dropped if the body ends here
    bool pending_space = false;   // whitespace seen inside the current line, not yet written
    bool line_has_text = false;   // the current line has non-whitespace
    bool cr = false;              // the previous octet was a CR not yet known to end a line
    bool finished = false;
    void put(const char* p, std::size_t n) { EVP_DigestUpdate(ctx, p, n); }
    void text(char c) {
        if (!line_has_text) {
            for (; empty_lines > 0; --empty_lines) put("\r\n", 2);
        }
        if (pending_space) put(" ", 1);  // leading whitespace too becomes one SP
        pending_space = false;
        line_has_text = true;
        put(&c, 1);
    }
    void end_line() {
        if (line_has_text) {
            put("\r\n", 2);
        } else {
            ++empty_lines;
        }
        line_has_text = false;
        pending_space = false;
    }
    void octet(char c) {
        if (cr) {
            cr = false;
            if (c == '\n') {
                end_line();
                return;
            }
            text('\r');  // a lone CR is data
        }
        if (c == '\r') {
            cr = true;
        } else if (c == '\n') {
            end_line();
        } else if (c == ' ' || c == '\t') {
            pending_space = true;
        } else {
            text(c);
        }
    }
};

RelaxedBodyHash::RelaxedBodyHash() : impl_(new Impl) {
    impl_->ctx = EVP_MD_CTX_new();
    if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1) std::abort();
}

RelaxedBodyHash::~RelaxedBodyHash() {
    EVP_MD_CTX_free(impl_->ctx);
    delete impl_;
}

void RelaxedBodyHash::update(std::string_view chunk) {
    for (char c : chunk) impl_->octet(c);
}

std::string RelaxedBodyHash::finish() {
    if (impl_->cr) {
        impl_->cr = false;
        impl_->text('\r');
    }
    // A last line without a line end still ends with CRLF (RFC 6376 §3.4.4).
    if (impl_->line_has_text) impl_->end_line();
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(impl_->ctx, d, &n);
    return std::string(reinterpret_cast<char*>(d), n);
}

// ---- relaxed header field ----

std::string relaxed_header_field(std::string_view raw) {
    std::size_t colon = raw.find(':');
    std::string_view name = raw.substr(0, colon);
    std::string out;
    out.reserve(raw.size() + 2);
    for (char c : name) {
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;  // WSP before the colon goes
        out += lower(c);
    }
    out += ':';
    if (colon != std::string_view::npos) {
        std::string_view value = raw.substr(colon + 1);
        bool space = false, text = false;
        for (std::size_t i = 0; i < value.size(); ++i) {
            char c = value[i];
            // XXX RFC 6376 §3.4.2: unfolding removes CRLF; a bare LF (an MTA rewrote line ends) goes too.
            if (c == '\n' || (c == '\r' && i + 1 < value.size() && value[i + 1] == '\n')) continue;
            if (c == ' ' || c == '\t') {
                space = text;  // leading whitespace goes; a run inside becomes one SP
                continue;
            }
            if (space) out += ' ';
            space = false;
            text = true;
            out += c;
        }
    }
    out += "\r\n";
    return out;
}

} // namespace mail
