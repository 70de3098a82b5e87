// The MIME reader: see mime.hpp.
#include "libmail/mail/mime.hpp"

#include "libmail/base/codec.hpp"
#include "libmail/base/text.hpp"

#include <algorithm>
#include <optional>

namespace mail {

namespace {

using std::string_view;
constexpr std::size_t npos = string_view::npos;

// The name of a field line (RFC 5322 §3.6.8, with obsolete white space before
// the colon), or nothing when the line is not a field.
std::optional<string_view> field_name(string_view line, std::size_t* colon) {
    std::size_t i = 0;
    while (i < line.size() && line[i] != ':' && static_cast<unsigned char>(line[i]) > 32 &&
           static_cast<unsigned char>(line[i]) < 127)
        ++i;
    if (i == 0) return std::nullopt;
    std::size_t j = i;
    while (j < line.size() && (line[j] == ' ' || line[j] == '\t')) ++j;
    if (j >= line.size() || line[j] != ':') return std::nullopt;
    *colon = j;
    return line.substr(0, i);
}

// Moves i past white space and comments (nested, with quoted pairs).
void skip_cfws(string_view v, std::size_t& i) {
    for (;;) {
        while (i < v.size() && is_trim_space(v[i])) ++i;
        if (i >= v.size() || v[i] != '(') return;
        int depth = 0;
        for (; i < v.size(); ++i) {
            if (v[i] == '\\') {
                if (i + 1 < v.size()) ++i;  // a quoted pair; a lone backslash at the end ends the value
                continue;
            }
            if (v[i] == '(') ++depth;
            if (v[i] == ')' && --depth == 0) {
                ++i;
                break;
            }
        }
    }
}

// A token at i, lower-cased; i moves past it.
std::string mime_token(string_view v, std::size_t& i) {
    std::size_t b = i;
    while (i < v.size() && !is_trim_space(v[i]) && v[i] != ';' && v[i] != '/' && v[i] != '=' && v[i] != '(' &&
           v[i] != '"')
        ++i;
    return lower(v.substr(b, i - b));
}

// A parameter value at i, a quoted string unquoted; i moves past it.
std::string param_value(string_view v, std::size_t& i) {
    std::string value;
    if (i < v.size() && v[i] == '"') {
        for (++i; i < v.size() && v[i] != '"'; ++i) {
            if (v[i] == '\\' && i + 1 < v.size()) ++i;
            value += v[i];
        }
        if (i < v.size()) ++i;
    } else {
        std::size_t b = i;
        while (i < v.size() && !is_trim_space(v[i]) && v[i] != ';') ++i;
        value = std::string(v.substr(b, i - b));
    }
    return value;
}

void walk(const MimeHeader& h, std::size_t depth, const std::function<void(const MimePart&)>& visit,
          const MimeBounds& bounds, std::size_t& count) {
    if (++count > bounds.parts) return;
    const std::string* ctv = h.get("content-type");
    ContentType ct = parse_content_type(ctv ? string_view(*ctv) : string_view());
    visit(MimePart{h, ct, h.rest, depth});
    if (ct.type != "multipart") return;
    std::string boundary = ct.param("boundary");
    if (boundary.empty() || boundary.size() > bounds.boundary || depth + 1 >= bounds.depth) return;
    for (string_view part : split_multipart(h.rest, boundary, bounds.parts)) {
        if (count >= bounds.parts) break;
        walk(parse_mime_header(part, bounds.fields), depth + 1, visit, bounds, count);
    }
}

} // namespace

const std::string* MimeHeader::get(string_view name) const {
    for (const auto& f : fields)
        if (f.first == name) return &f.second;
    return nullptr;
}

std::string MimeHeader::value(string_view name) const {
    const std::string* v = get(name);
    return v ? *v : std::string();
}

MimeHeader parse_mime_header(string_view text, std::size_t max_fields) {
    MimeHeader h;
    std::size_t pos = 0;
    bool current = false;  // the last line was a field we keep, so a fold continues it
    while (pos < text.size()) {
        std::size_t eol = text.find('\n', pos);
        std::size_t next = eol == npos ? text.size() : eol + 1;
        string_view line = text.substr(pos, (eol == npos ? text.size() : eol) - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) {
            pos = next;
            break;
        }
        if (line[0] == ' ' || line[0] == '\t') {
            if (current) {
                std::string& v = h.fields.back().second;
                string_view more = trim(line);
                if (v.size() + more.size() + 1 <= limits::header_field_size) {
                    if (!v.empty() && !more.empty()) v += ' ';
                    v.append(more);
                }
            }
            pos = next;
            continue;
        }
        std::size_t colon = 0;
        auto name = field_name(line, &colon);
        if (!name) break;
        current = h.fields.size() < max_fields;
        if (current) h.fields.emplace_back(lower(*name), std::string(trim(line.substr(colon + 1))));
        pos = next;
    }
    h.rest = text.substr(std::min(pos, text.size()));
    return h;
}

std::string ContentType::param(string_view name) const {
    for (const auto& p : params)
        if (p.first == name) return p.second;
    return {};
}

std::optional<ContentType> read_content_type(string_view v) {
    ContentType ct;
    std::size_t i = 0;
    skip_cfws(v, i);
    std::string type = mime_token(v, i);
    skip_cfws(v, i);
    if (i >= v.size() || v[i] != '/' || type.empty()) return std::nullopt;
    ++i;
    skip_cfws(v, i);
    std::string sub = mime_token(v, i);
    if (sub.empty()) return std::nullopt;
    ct.type = type;
    ct.subtype = sub;
    while (ct.params.size() < limits::mime_params) {
        skip_cfws(v, i);
        if (i >= v.size()) break;
        if (v[i] != ';') {  // junk: skip to the next parameter
            std::size_t semi = v.find(';', i);
            if (semi == npos) break;
            i = semi;
        }
        ++i;
        skip_cfws(v, i);
        std::string name = mime_token(v, i);
        skip_cfws(v, i);
        if (i >= v.size() || v[i] != '=') continue;
        ++i;
        skip_cfws(v, i);
        std::string value = param_value(v, i);
        if (!name.empty()) ct.params.emplace_back(name, value);
    }
    return ct;
}

ContentType parse_content_type(string_view v) { return read_content_type(v).value_or(ContentType{}); }

std::string decode_body(string_view body, const MimeHeader& h) {
    std::string cte = lower(trim(h.value("content-transfer-encoding")));
    if (cte == "base64") return base64_decode_lenient(body);
    if (cte == "quoted-printable") return qp_decode(body);
    return std::string(body);
}

Delimiter delimiter_of(string_view line, string_view boundary) {
    if (line.size() < boundary.size() + 2 || line[0] != '-' || line[1] != '-' ||
        line.substr(2, boundary.size()) != boundary)
        return Delimiter::none;
    string_view tail = line.substr(2 + boundary.size());
    bool close = tail.size() >= 2 && tail[0] == '-' && tail[1] == '-';
    if (close) tail.remove_prefix(2);
    if (!trim(tail).empty()) return Delimiter::none;
    return close ? Delimiter::close : Delimiter::part;
}

std::vector<string_view> split_multipart(string_view body, string_view boundary, std::size_t max_parts) {
    std::vector<string_view> parts;
    std::size_t pos = 0, start = npos;
    while (pos < body.size()) {
        std::size_t eol = body.find('\n', pos);
        std::size_t next = eol == npos ? body.size() : eol + 1;
        Delimiter d = delimiter_of(body.substr(pos, (eol == npos ? body.size() : eol) - pos), boundary);
        if (d != Delimiter::none) {
            if (start != npos) {
                // The line end before a delimiter belongs to the delimiter.
                std::size_t end = pos;
                if (end > start && body[end - 1] == '\n') --end;
                if (end > start && body[end - 1] == '\r') --end;
                parts.push_back(body.substr(start, end - start));
                if (parts.size() >= max_parts) return parts;
            }
            if (d == Delimiter::close) return parts;
            start = next;
        }
        pos = next;
    }
    if (start != npos && start < body.size()) parts.push_back(body.substr(start));
    return parts;
}

void walk_mime(const MimeHeader& top, const std::function<void(const MimePart&)>& visit, const MimeBounds& bounds) {
    std::size_t count = 0;
    walk(top, 0, visit, bounds, count);
}

} // namespace mail
