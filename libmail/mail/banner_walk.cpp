// The recruitment banner's walk over a body, editing text parts in place as
// they stream through: see banner_internal.hpp. Only a line (at most
// limits::line_length of it), a part header (limits::header_size), one
// encoded line and the HTML after a candidate </body> (banner_html_tail)
// are ever held.
#include "libmail/mail/banner_internal.hpp"

#include "libmail/base/codec.hpp"
#include "libmail/base/codec_stream.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/base/text.hpp"
#include "libmail/mail/message.hpp"

#include <memory>
#include <optional>
#include <ostream>
#include <vector>

namespace mail::banner_detail {

namespace {

// Octets after a </body> held back while a later one may come; past this the banner goes at the end of the
// part instead. (Not in base/limits.hpp: nothing outside this file needs it, and it is no input limit.)
constexpr std::size_t banner_html_tail = 64 * 1024;

// The body in pieces: a whole line with its end, or a stretch of a longer line.
class BodyLines {
public:
    explicit BodyLines(MessageReader& m) : m_(m) {}
    // The next piece into piece; at_start when it begins a line. False at the end.
    Result<bool> next(std::string& piece, bool& at_start) {
        piece.clear();
        at_start = at_start_;
        for (;;) {
            if (pos_ == len_) {
                auto n = m_.read_body(buf_, sizeof buf_);
                if (!n) return n.error();
                pos_ = 0;
                len_ = *n;
                if (len_ == 0) return !piece.empty();
            }
            while (pos_ < len_) {
                char c = buf_[pos_++];
                piece += c;
                if (c == '\n' || piece.size() >= limits::line_length) {
                    at_start_ = c == '\n';
                    return true;
                }
            }
        }
    }

private:
    MessageReader& m_;
    char buf_[65536];
    std::size_t pos_ = 0, len_ = 0;
    bool at_start_ = true;
};

// What ended a stretch of body: the end of the input, or a delimiter line of bounds[level].
struct Stop {
    bool eof = true;
    std::size_t level = 0;
    Delimiter kind = Delimiter::none;
    std::string line;
};

struct Walk {
    BodyLines in;
    std::ostream& out;
    std::string_view banner;
    std::string eol;
    std::vector<std::string> bounds;
    std::size_t parts = 0;
};

std::optional<Stop> delimiter(const Walk& w, const std::string& piece, bool at_start) {
    if (!at_start || piece.size() < 2 || piece[0] != '-' || piece[1] != '-') return std::nullopt;
    for (std::size_t i = w.bounds.size(); i-- > 0;) {
        Delimiter d = delimiter_of(piece, w.bounds[i]);
        if (d != Delimiter::none) return Stop{false, i, d, piece};
    }
    return std::nullopt;
}

// Copies the body to the next delimiter (returned, not written) or the end.
Result<Stop> pass(Walk& w) {
    std::string piece;
    bool at_start = true;
    for (;;) {
        auto more = w.in.next(piece, at_start);
        if (!more) return more.error();
        if (!*more) return Stop{};
        if (auto d = delimiter(w, piece, at_start)) return *d;
        w.out << piece;
    }
}

// The line end the text itself uses last (dflt until it shows one).
struct EolSense {
    std::string eol;
    bool cr = false;
    void see(std::string_view s) {
        for (char c : s) {
            if (c == '\n') eol = cr ? "\r\n" : "\n";
            cr = c == '\r';
        }
    }
};

// Text with a line end before the insertion point held back: appends the banner at the end.
class TextAppend {
public:
    TextAppend(ByteSink out, std::string_view banner, std::string eol, bool keep_end)
        : out_(std::move(out)), banner_(banner), eol_{std::move(eol)}, keep_end_(keep_end) {}
    void put(std::string_view s) {
        if (s.empty()) return;
        any_ = true;
        last_ = s.back();
        eol_.see(s);
        out_(s);
    }
    void finish() {
        const std::string& e = eol_.eol;
        if (any_) out_(last_ == '\n' ? e : e + e);
        out_(text_lines(banner_, e));
        if (keep_end_ && last_ == '\n') out_(e);
    }

private:
    ByteSink out_;
    std::string_view banner_;
    EolSense eol_;
    bool keep_end_;  ///< the text ended with a line end of its own (not the delimiter's): so does the new text
    bool any_ = false;
    char last_ = 0;
};

// HTML: the banner goes before the last "</body", or at the end. What follows a candidate is held back, at
// most banner_html_tail octets; past that the candidate is given up.
class HtmlInsert {
public:
    HtmlInsert(ByteSink out, std::string_view banner, std::string eol, bool keep_end)
        : out_(std::move(out)), banner_(banner), eol_{std::move(eol)}, keep_end_(keep_end) {}
    void put(std::string_view s) {
        eol_.see(s);
        if (!s.empty()) last_ = s.back();
        static constexpr std::string_view tag = "</body";
        std::string out;
        for (char c : s) {
            buf_ += c;
            char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
            match_ = l == tag[match_] ? match_ + 1 : (l == tag[0] ? 1 : 0);
            if (match_ == tag.size()) {  // a new candidate: what came before it goes out
                out.append(buf_, 0, buf_.size() - tag.size());
                buf_.erase(0, buf_.size() - tag.size());
                holding_ = true;
                match_ = 0;
            } else if (!holding_ || buf_.size() > banner_html_tail) {
                out.append(buf_, 0, buf_.size() - match_);  // only a partial match stays
                buf_.erase(0, buf_.size() - match_);
                holding_ = false;
            }
        }
        if (!out.empty()) out_(out);
    }
    void finish() {
        const std::string& e = eol_.eol;
        std::string block = html_block(banner_, e);
        if (holding_) {
            out_(block + e);
            out_(buf_);
        } else {
            out_(buf_);
            out_(e + block);
            if (keep_end_ && last_ == '\n') out_(e);
        }
    }

private:
    ByteSink out_;
    std::string_view banner_;
    EolSense eol_;
    bool keep_end_;
    char last_ = 0;
    std::size_t match_ = 0;
    bool holding_ = false;
    std::string buf_;  ///< not yet written: a partial match, or a candidate and what follows it
};

// Edits one text part's body: decode, add the banner, encode again; the line end before the stop is held back
// and written after. Returns the stop (not written).
Result<Stop> edit_leaf(Walk& w, const ContentType& type, std::string_view cte) {
    ByteSink raw = [&w](std::string_view s) { w.out.write(s.data(), static_cast<std::streamsize>(s.size())); };
    std::unique_ptr<Base64Encoder> b64;
    std::unique_ptr<QpEncoder> qp;
    ByteSink encoded = raw;
    std::string teol = w.eol;  // the line end inside the decoded text, until the text shows its own
    if (cte == "base64") {
        b64 = std::make_unique<Base64Encoder>(raw, w.eol);
        encoded = [&](std::string_view s) { b64->put(s); };
        teol = "\r\n";
    } else if (cte == "quoted-printable") {
        qp = std::make_unique<QpEncoder>(raw, w.eol);
        encoded = [&](std::string_view s) { qp->put(s); };
        teol = "\n";
    }
    bool html = type.is("text", "html");
    // In base64 the text's last line end is its own; elsewhere it is the one held back below.
    TextAppend text(encoded, w.banner, teol, b64 != nullptr);
    HtmlInsert markup(encoded, w.banner, teol, b64 != nullptr);
    ByteSink decoded = [&](std::string_view s) {
        if (html) {
            markup.put(s);
        } else {
            text.put(s);
        }
    };
    Base64Decoder b64in(decoded);
    std::string qp_carry;
    auto feed = [&](std::string_view s) {
        if (cte == "base64") {
            b64in.put(s);
        } else if (cte == "quoted-printable") {
            // Decoded up to the last line end, or else all but an "=" in the last two octets: an escape or a
            // soft line break whose rest comes in the next piece (the line end held back, a long line's split).
            qp_carry.append(s);
            std::size_t keep = qp_carry.rfind('\n');
            std::size_t upto = keep != std::string::npos ? keep + 1 : qp_carry.size();
            std::size_t eq = qp_carry.find('=', upto >= 2 ? upto - 2 : 0);
            if (keep == std::string::npos && eq != std::string::npos) upto = eq;
            if (upto > 0) {
                decoded(qp_decode(std::string_view(qp_carry).substr(0, upto)));
                qp_carry.erase(0, upto);
            }
        } else {
            decoded(s);
        }
    };

    std::string piece, held;
    bool at_start = true;
    Stop stop;
    for (;;) {
        auto more = w.in.next(piece, at_start);
        if (!more) return more.error();
        if (!*more) break;
        if (auto d = delimiter(w, piece, at_start)) {
            stop = *d;
            break;
        }
        feed(held);
        held.clear();
        std::size_t cut = piece.size();
        if (!piece.empty() && piece.back() == '\n') cut = piece.size() >= 2 && piece[piece.size() - 2] == '\r' ? piece.size() - 2 : piece.size() - 1;
        feed(std::string_view(piece).substr(0, cut));
        held = piece.substr(cut);
    }
    if (!qp_carry.empty()) {
        // A soft line break right before the delimiter (whose line end it was) joins nothing.
        std::size_t e = qp_carry.find_last_not_of(" \t");
        if (e != std::string::npos && qp_carry[e] == '=') qp_carry.resize(e);
        decoded(qp_decode(qp_carry));
    }
    b64in.finish();
    if (html) {
        markup.finish();
    } else {
        text.finish();
    }
    if (b64) b64->finish();
    if (qp) qp->finish();
    w.out << (held.empty() ? w.eol : held);
    return stop;
}

struct PartHead {
    std::string text;
    ContentType type;
    std::string cte;
};

// Reads and writes a part's header; a stop when a delimiter or the end comes first.
Result<std::optional<Stop>> part_head(Walk& w, PartHead& h) {
    std::string piece;
    bool at_start = true;
    for (;;) {
        auto more = w.in.next(piece, at_start);
        if (!more) return more.error();
        if (!*more) return std::optional<Stop>(Stop{});
        if (auto d = delimiter(w, piece, at_start)) return std::optional<Stop>(*d);
        w.out << piece;
        if (at_start && (piece == "\n" || piece == "\r\n")) break;
        h.text += piece;
        if (h.text.size() > limits::header_size) {
            h.text.clear();
            h.type = ContentType{"application", "octet-stream", {}};  // too big to read: left alone
            return std::optional<Stop>();
        }
    }
    MimeHeader mh = parse_mime_header(h.text);
    h.type = parse_content_type(mh.value("content-type"));
    std::string cte = lower(mh.value("content-transfer-encoding"));
    h.cte = cte.empty() ? "7bit" : cte;
    return std::optional<Stop>();
}

bool editable_multipart(const ContentType& t, std::string_view cte) {
    std::string b = t.param("boundary");
    return t.type == "multipart" && (t.subtype == "mixed" || t.subtype == "alternative" || t.subtype == "related") &&
           identity_cte(cte) && !b.empty() && b.size() <= limits::mime_boundary;
}

Result<Stop> edit_multipart(Walk& w, const ContentType& type, std::size_t depth, bool& applied);

// One part after its delimiter: edited when it should be, else passed through.
Result<Stop> edit_part(Walk& w, const ContentType& parent, std::size_t index, std::size_t depth, bool& applied) {
    PartHead h;
    auto head = part_head(w, h);
    if (!head) return head.error();
    if (*head) return **head;
    bool room = ++w.parts <= limits::mime_parts && depth + 1 < limits::mime_depth;
    bool multi = editable_multipart(h.type, h.cte);
    bool leaf = leaf_takes(h.type, h.cte, w.banner);
    bool want = false;
    if (parent.subtype == "alternative") want = multi || leaf;
    else if (parent.subtype == "related") want = index == 0 && (multi || leaf);
    else want = index == 0 && (multi || (leaf && h.type.is("text", "html")));
    if (!room || !want) return pass(w);
    if (multi) {
        bool inner = false;
        auto r = edit_multipart(w, h.type, depth + 1, inner);
        applied = applied || inner;
        return r;
    }
    applied = true;
    return edit_leaf(w, h.type, h.cte);
}

Result<Stop> edit_multipart(Walk& w, const ContentType& type, std::size_t depth, bool& applied) {
    w.bounds.push_back(type.param("boundary"));
    const std::size_t level = w.bounds.size() - 1;
    auto stop = pass(w);  // the preamble
    std::size_t index = 0;
    while (stop && !stop->eof && stop->level == level) {
        if (stop->kind == Delimiter::close) {
            if (type.subtype == "mixed" && !applied) {
                w.out << "--" << w.bounds[level] << w.eol << banner_part(w.banner, w.eol);
                applied = true;
            }
            w.out << stop->line;
            w.bounds.pop_back();
            return pass(w);  // the epilogue
        }
        w.out << stop->line;
        stop = edit_part(w, type, index++, depth, applied);
    }
    w.bounds.pop_back();
    return stop;
}

} // namespace

Result<bool> edit_body(MessageReader& msg, const ContentType& type, std::string_view cte, std::string_view banner,
                       std::ostream& out) {
    Walk w{BodyLines(msg), out, banner, msg.eol(), {}, 0};
    bool applied = false;
    Result<Stop> stop = type.type == "multipart" ? edit_multipart(w, type, 0, applied) : edit_leaf(w, type, cte);
    if (!stop) return stop.error();
    return type.type == "multipart" ? applied : true;
}

} // namespace mail::banner_detail
