// Streaming message reader and writer: see message.hpp.
#include "libmail/mail/message.hpp"

#include "libmail/base/canon.hpp"
#include "libmail/base/text.hpp"
#include "libmail/mail/spool.hpp"

#include <istream>
#include <ostream>

namespace mail {

namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// A field line: a name of printable ASCII other than ':' (RFC 5322 §3.6.8),
// then a colon (obsolete syntax allows whitespace before it).
bool is_field_line(std::string_view line) {
    std::size_t i = 0;
    while (i < line.size()) {
        auto c = static_cast<unsigned char>(line[i]);
        if (c == ':') break;
        if (c < 33 || c > 126) break;
        ++i;
    }
    if (i == 0) return false;
    std::size_t j = i;
    while (j < line.size() && is_wsp(line[j])) ++j;
    return j < line.size() && line[j] == ':';
}

bool is_blank_line(std::string_view line) { return line == "\n" || line == "\r\n"; }

bool ends_crlf(std::string_view line) { return line.size() >= 2 && line.substr(line.size() - 2) == "\r\n"; }

std::string_view strip_eol(std::string_view s) {
    if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
    if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
    return s;
}


// Only the input's last line can lack a line end; when an edit puts
// something after it, it needs one, or the two would run together.
void write_line(std::ostream& out, std::string_view line, bool more, const std::string& eol) {
    out << line;
    if (!more || line.empty() || line.back() == '\n') return;
    out << (line.back() == '\r' ? "\n" : eol);
}

} // namespace

std::string_view HeaderField::name() const {
    std::string_view r = raw;
    auto colon = r.find(':');
    std::string_view n = r.substr(0, colon);
    while (!n.empty() && is_wsp(n.back())) n.remove_suffix(1);
    return n;
}

std::string HeaderField::value() const {
    std::string_view r = raw;
    auto colon = r.find(':');
    if (colon == std::string_view::npos) return {};
    std::string out;
    for (char c : r.substr(colon + 1))
        if (c != '\r' && c != '\n') out.push_back(c);
    std::size_t b = 0;
    while (b < out.size() && is_wsp(out[b])) ++b;
    std::size_t e = out.size();
    while (e > b && is_wsp(out[e - 1])) --e;
    return out.substr(b, e - b);
}

bool HeaderField::is(std::string_view n) const { return iequals(name(), n); }

MessageReader::MessageReader(std::istream& in, std::size_t max_message_size) : in_(in), max_size_(max_message_size) {}

// Reads one line with its line end (LF, CRLF, or none at the end of input).
// Lines longer than limits::line_length are an error.
Result<bool> MessageReader::read_line(std::string& line) {
    line.clear();
    std::streambuf* sb = in_.rdbuf();
    if (sb == nullptr) return Error{ErrorKind::software, "message reader has no input"};
    for (;;) {
        int c = sb->sbumpc();
        if (c == std::char_traits<char>::eof()) break;
        line.push_back(static_cast<char>(c));
        // The limit counts the line end too (limits.hpp).
        if (line.size() > limits::line_length)
            return Error{ErrorKind::data, "header line longer than " + std::to_string(limits::line_length) + " octets"};
        if (c == '\n') break;
    }
    octets_ += line.size();
    if (octets_ > max_size_)
        return Error{ErrorKind::data, "message larger than " + std::to_string(max_size_) + " octets"};
    return !line.empty();
}

Result<void> MessageReader::read_header() {
    std::string line;
    auto got = read_line(line);
    if (!got) return got.error();
    if (!*got) return Error{ErrorKind::data, "empty message"};
    if (ends_crlf(line)) eol_ = "\r\n";
    if (line.rfind("From ", 0) == 0) {
        mbox_from_ = line;
        got = read_line(line);
        if (!got) return got.error();
        if (!*got) return {};
        // procmail writes its From line with LF whatever the message uses:
        // added fields follow the header's own line ending when it has one.
        if (line.back() == '\n') eol_ = ends_crlf(line) ? "\r\n" : "\n";
    }
    std::size_t total = 0;
    for (;;) {
        if (is_blank_line(line)) {
            separator_ = line;
            return {};
        }
        if (is_wsp(line[0]) && !fields_.empty()) {
            fields_.back().raw += line;
            if (fields_.back().raw.size() > limits::header_field_size)
                return Error{ErrorKind::data, "header field " + std::string(fields_.back().name().substr(0, 64)) +
                                                  " longer than " + std::to_string(limits::header_field_size) +
                                                  " octets"};
        } else if (is_field_line(line)) {
            if (fields_.size() >= limits::header_fields)
                return Error{ErrorKind::data, "more than " + std::to_string(limits::header_fields) + " header fields"};
            fields_.push_back(HeaderField{line});
            if (line.size() > limits::header_field_size)
                return Error{ErrorKind::data, "header field " + std::string(fields_.back().name().substr(0, 64)) +
                                                  " longer than " + std::to_string(limits::header_field_size) +
                                                  " octets"};
        } else {
            // XXX RFC 5322 §2.1: the body starts only after a blank line.
            // This line is not a field, not a fold, not blank: there is no
            // place for it in a header, so the header ends here and the line
            // is the body's first, kept as is (no separator is invented).
            pending_ = line;
            return {};
        }
        total += line.size();
        if (total > limits::header_size)
            return Error{ErrorKind::data, "header section larger than " + std::to_string(limits::header_size) + " octets"};
        got = read_line(line);
        if (!got) return got.error();
        if (!*got) return {};
    }
}

std::optional<std::string> MessageReader::get(std::string_view name) const {
    for (const auto& f : fields_)
        if (f.is(name)) return f.value();
    return std::nullopt;
}

std::vector<std::string> MessageReader::get_all(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& f : fields_)
        if (f.is(name)) out.push_back(f.value());
    return out;
}

std::size_t MessageReader::remove(std::string_view name) {
    std::size_t before = fields_.size();
    std::erase_if(fields_, [&](const HeaderField& f) { return f.is(name); });
    return before - fields_.size();
}

void MessageReader::prepend(std::string_view name, std::string_view value) {
    // Text we put into a header ourselves is scrubbed: no CR or LF can end the
    // line and smuggle in a field of its own (DESIGN §8.6).
    std::string raw = scrub(name);
    raw += ": ";
    raw += scrub(value);
    raw += eol_;
    fields_.insert(fields_.begin(), HeaderField{raw});
}

void MessageReader::tag_subject(std::string_view tag_in) {
    const std::string tag = scrub(tag_in);
    if (tag.empty()) return;
    for (auto& f : fields_) {
        if (!f.is("Subject")) continue;
        auto colon = f.raw.find(':');
        if (colon == std::string::npos) continue;
        std::string v = f.value();
        if (v.rfind(tag, 0) == 0 && (v.size() == tag.size() || is_wsp(v[tag.size()]))) return;
        std::size_t at = colon + 1;
        while (at < f.raw.size() && is_wsp(f.raw[at])) ++at;
        bool empty = strip_eol(std::string_view(f.raw).substr(at)).empty();
        // The tag is a word of its own, separated by a space, so an RFC 2047
        // encoded word that starts the subject stays whole and decodable.
        std::string insert = at == colon + 1 ? " " : "";
        insert += tag;
        if (!empty) insert += " ";
        f.raw.insert(at, insert);
        return;
    }
    std::string raw = "Subject: ";
    raw += tag;
    raw += eol_;
    fields_.push_back(HeaderField{raw});
}

Result<void> MessageReader::write_header(std::ostream& out) const {
    // A header that ended in a malformed line has no separator, and read
    // unedited it needs none. After an edit that line could read back as
    // part of the header: a fold of the field now above it, or the mbox
    // From line once every field is gone. A separator keeps it body.
    std::string_view first = pending_;
    bool fold = !fields_.empty() && !first.empty() && is_wsp(first[0]);
    bool from = fields_.empty() && mbox_from_.empty() && first.rfind("From ", 0) == 0;
    std::string_view sep = separator_.empty() && (fold || from) ? std::string_view(eol_) : separator_;
    write_line(out, mbox_from_, !fields_.empty() || !sep.empty(), eol_);
    for (std::size_t i = 0; i < fields_.size(); ++i)
        write_line(out, fields_[i].raw, i + 1 < fields_.size() || !sep.empty(), eol_);
    out << sep;
    if (!out) return Error{ErrorKind::tempfail, "write error"};
    return {};
}

Result<std::size_t> MessageReader::read_body(char* buf, std::size_t n) {
    if (pending_pos_ < pending_.size()) {
        std::size_t k = std::min(n, pending_.size() - pending_pos_);
        pending_.copy(buf, k, pending_pos_);
        pending_pos_ += k;
        return k;
    }
    in_.read(buf, static_cast<std::streamsize>(n));
    auto k = static_cast<std::size_t>(in_.gcount());
    if (in_.bad()) return Error{ErrorKind::tempfail, "read error"};
    octets_ += k;
    if (octets_ > max_size_)
        return Error{ErrorKind::data, "message larger than " + std::to_string(max_size_) + " octets"};
    return k;
}

Result<void> MessageReader::copy_body(std::ostream& out) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
        auto k = read_body(buf.data(), buf.size());
        if (!k) return k.error();
        if (*k == 0) break;
        out.write(buf.data(), static_cast<std::streamsize>(*k));
        if (!out) return Error{ErrorKind::tempfail, "write error"};
    }
    return {};
}

Result<std::string> spool_body(MessageReader& msg, Spool& spool) {
    RelaxedBodyHash hash;
    char buf[65536];
    for (;;) {
        auto n = msg.read_body(buf, sizeof buf);
        if (!n) return n.error();
        if (*n == 0) break;
        hash.update(std::string_view(buf, *n));
        if (auto w = spool.write(std::string_view(buf, *n)); !w) return w.error();
    }
    return hash.finish();
}

Result<void> write_message(MessageReader& msg, Spool* spooled, std::ostream& out) {
    if (auto r = msg.write_header(out); !r) return r;
    if (spooled) {
        if (auto r = spooled->copy_to(out); !r) return r;
    } else if (auto r = msg.copy_body(out); !r) {
        return r;
    }
    out.flush();
    if (!out) return Error{ErrorKind::tempfail, "write error on stdout"};
    return {};
}

} // namespace mail
