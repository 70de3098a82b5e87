// Message data framing: see smtp_data.hpp.
#include "libmail/smtp/smtp_data.hpp"

namespace mail {

void DotDecoder::emit(std::string_view s, std::string& out) {
    size_ += s.size();
    if (too_big_) return;
    if (size_ > max_) {
        too_big_ = true;
        return;
    }
    out.append(s);
}

void DotDecoder::bare_newline(std::string& out) {
    bare_ = true;
    if (mode_ == BareNewline::normalise) emit("\r\n", out);
}

std::size_t DotDecoder::feed(std::string_view bytes, std::string& out) {
    if (done_) return 0;
    std::size_t i = 0;
    for (; i < bytes.size(); ++i) {
        char c = bytes[i];
        switch (s_) {
        case State::bol:
        case State::mid: {
            if (s_ == State::bol && c == '.') {
                s_ = State::dot;
                break;
            }
            if (c == '\r') {
                s_ = State::cr;
                break;
            }
            if (c == '\n') {
                bare_newline(out);  // a bare LF: not a line end for framing
                s_ = State::mid;
                break;
            }
            // The run of ordinary octets at once.
            std::size_t j = i;
            while (j < bytes.size() && bytes[j] != '\r' && bytes[j] != '\n') ++j;
            emit(bytes.substr(i, j - i), out);
            i = j - 1;
            s_ = State::mid;
            break;
        }
        case State::cr:
            if (c == '\n') {
                emit("\r\n", out);
                s_ = State::bol;
                break;
            }
            bare_newline(out);  // a bare CR
            s_ = State::mid;
            --i;  // c again, in the middle of a line
            break;
        case State::dot:
            if (c == '\r') {
                s_ = State::dot_cr;
                break;
            }
            // A leading dot is removed (RFC 5321 §4.5.2); c is looked at again.
            s_ = State::mid;
            if (c == '\n') {
                bare_newline(out);
                break;
            }
            --i;
            break;
        case State::dot_cr:
            if (c == '\n') {
                done_ = true;
                return i + 1;
            }
            bare_newline(out);  // ".<CR>" then something else
            s_ = State::mid;
            --i;
            break;
        }
    }
    return i;
}

Result<void> write_stuffed(std::string_view data, bool& at_bol, bool& after_cr,
                           const std::function<Result<void>(std::string_view)>& write) {
    std::string out;
    out.reserve(data.size() + data.size() / 64 + 8);
    std::size_t i = 0;
    while (i < data.size()) {
        char c = data[i];
        if (after_cr) {
            after_cr = false;
            out += "\r\n";
            at_bol = true;
            if (c == '\n') {
                ++i;
                continue;
            }
        }
        if (c == '\r') {
            after_cr = true;
            ++i;
            continue;
        }
        if (c == '\n') {
            out += "\r\n";
            at_bol = true;
            ++i;
            continue;
        }
        if (at_bol && c == '.') out += '.';
        at_bol = false;
        // The rest of the line goes at once.
        std::size_t j = i;
        while (j < data.size() && data[j] != '\r' && data[j] != '\n') ++j;
        out.append(data.substr(i, j - i));
        i = j;
    }
    return write(out);
}

std::string_view stuffed_terminator(bool at_bol, bool after_cr) {
    if (after_cr) return "\r\n.\r\n";
    return at_bol ? std::string_view(".\r\n") : std::string_view("\r\n.\r\n");
}

Result<void> write_message_stuffed(const MessageSource& source,
                                   const std::function<Result<void>(std::string_view)>& write) {
    bool at_bol = true, after_cr = false;
    std::string out;
    auto flush = [&]() -> Result<void> {
        if (out.empty()) return {};
        auto w = write(out);
        out.clear();
        return w;
    };
    auto sink = [&](std::string_view piece) -> Result<void> {
        out.append(piece);
        if (out.size() >= 64 * 1024) return flush();
        return {};
    };
    auto writer = [&](std::string_view data) { return write_stuffed(data, at_bol, after_cr, sink); };
    if (auto w = source(writer); !w) return w;
    out.append(stuffed_terminator(at_bol, after_cr));
    return flush();
}

} // namespace mail
