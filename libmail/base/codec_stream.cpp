// Streaming MIME transfer encodings: see codec_stream.hpp.
#include "libmail/base/codec_stream.hpp"

#include "libmail/base/codec.hpp"

namespace mail {


void Base64Decoder::put(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (done_) break;
        if (c == '=') {
            if (!out.empty()) out_(out);
            out.clear();
            finish();
            done_ = true;
            break;
        }
        int v = base64_value(c);
        if (v < 0) continue;
        bits_ = (bits_ << 6) | static_cast<unsigned>(v);
        if (++have_ == 4) {
            out += static_cast<char>((bits_ >> 16) & 0xff);
            out += static_cast<char>((bits_ >> 8) & 0xff);
            out += static_cast<char>(bits_ & 0xff);
            bits_ = 0;
            have_ = 0;
        }
    }
    if (!out.empty()) out_(out);
}

void Base64Decoder::finish() {
    std::string out;
    if (have_ == 2) {
        out += static_cast<char>((bits_ >> 4) & 0xff);
    } else if (have_ == 3) {
        out += static_cast<char>((bits_ >> 10) & 0xff);
        out += static_cast<char>((bits_ >> 2) & 0xff);
    }
    have_ = 0;
    bits_ = 0;
    if (!out.empty()) out_(out);
}

void Base64Encoder::line(std::string_view chunk) {
    if (!first_) out_(eol_);
    first_ = false;
    out_(base64_encode(chunk));
}

void Base64Encoder::put(std::string_view bytes) {
    pending_.append(bytes);
    std::size_t at = 0;
    for (; pending_.size() - at >= 57; at += 57) line(std::string_view(pending_).substr(at, 57));
    pending_.erase(0, at);
}

void Base64Encoder::finish() {
    if (!pending_.empty()) line(pending_);
    pending_.clear();
}

void QpEncoder::end_line(bool hard) {
    if (hard && !line_.empty() && (line_.back() == ' ' || line_.back() == '\t')) {
        char c = line_.back();
        line_.pop_back();
        line_ += c == ' ' ? "=20" : "=09";
    }
    out_(line_);
    out_(hard ? eol_ : "=" + eol_);
    line_.clear();
}

void QpEncoder::put(std::string_view bytes) {
    for (char c : bytes) {
        if (cr_) {
            cr_ = false;
            if (c == '\n') {
                end_line(true);
                continue;
            }
            if (line_.size() + 3 > 75) end_line(false);
            line_ += "=0D";  // a CR on its own is data
        }
        if (c == '\r') {
            cr_ = true;
            continue;
        }
        if (c == '\n') {
            end_line(true);
            continue;
        }
        auto u = static_cast<unsigned char>(c);
        std::string tok;
        if ((u >= 33 && u <= 126 && c != '=') || c == ' ' || c == '\t') {
            tok = std::string(1, c);
        } else {
            tok = "=" + hex_encode(std::string(1, c));
            for (auto& h : tok)
                if (h >= 'a' && h <= 'f') h = static_cast<char>(h - 'a' + 'A');
        }
        if (line_.size() + tok.size() > 75) end_line(false);
        line_ += tok;
    }
}

void QpEncoder::finish() {
    if (cr_) {
        cr_ = false;
        if (line_.size() + 3 > 75) end_line(false);
        line_ += "=0D";
    }
    if (!line_.empty() && (line_.back() == ' ' || line_.back() == '\t')) {
        char c = line_.back();
        line_.pop_back();
        line_ += c == ' ' ? "=20" : "=09";
    }
    out_(line_);
    line_.clear();
}

} // namespace mail
