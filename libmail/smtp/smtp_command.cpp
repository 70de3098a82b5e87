// SMTP command parsing: see smtp_command.hpp.
#include "libmail/smtp/smtp_command.hpp"

#include "libmail/base/text.hpp"

namespace mail {

namespace {

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    return out;
}

SmtpVerb verb_of(const std::string& w) {
    static const std::pair<const char*, SmtpVerb> verbs[] = {
        {"HELO", SmtpVerb::helo}, {"EHLO", SmtpVerb::ehlo}, {"MAIL", SmtpVerb::mail},
        {"RCPT", SmtpVerb::rcpt}, {"DATA", SmtpVerb::data}, {"RSET", SmtpVerb::rset},
        {"NOOP", SmtpVerb::noop}, {"QUIT", SmtpVerb::quit}, {"VRFY", SmtpVerb::vrfy},
        {"HELP", SmtpVerb::help}, {"STARTTLS", SmtpVerb::starttls}, {"AUTH", SmtpVerb::auth},
    };
    for (const auto& [name, v] : verbs)
        if (w == name) return v;
    return SmtpVerb::unknown;
}

Error syntax(std::string_view what) { return Error{ErrorKind::data, "501 5.5.4 " + std::string(what)}; }

// "FROM:<path> params" or "TO:<path> params" after MAIL or RCPT.
Result<void> parse_path_and_params(std::string_view rest, std::string_view key, SmtpCommand& cmd) {
    if (rest.size() < key.size() || upper(rest.substr(0, key.size())) != key)
        return syntax("Syntax: " + std::string(cmd.word) + " " + std::string(key) + "<address>");
    rest.remove_prefix(key.size());
    // RFC 5321 allows no space here; many clients send one anyway.
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty() || rest.front() != '<') return syntax("the address must be in angle brackets");
    // The path ends at the first '>' outside a quoted local part.
    std::size_t i = 1;
    bool quoted = false;
    for (; i < rest.size(); ++i) {
        char c = rest[i];
        if (quoted && c == '\\' && i + 1 < rest.size()) {
            ++i;
        } else if (c == '"') {
            quoted = !quoted;
        } else if (c == '>' && !quoted) {
            break;
        }
    }
    if (i >= rest.size()) return syntax("unterminated address");
    cmd.path = std::string(rest.substr(1, i - 1));
    rest.remove_prefix(i + 1);
    while (!rest.empty()) {
        if (rest.front() != ' ') return syntax("junk after the address");
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        if (rest.empty()) break;
        std::size_t end = rest.find(' ');
        std::string_view p = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
        std::size_t eq = p.find('=');
        std::string k = upper(p.substr(0, eq));
        if (k.empty()) return syntax("empty parameter name");
        for (char c : k)
            if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return syntax("bad parameter name");
        if (cmd.params.size() >= 16) return syntax("too many parameters");
        cmd.params.emplace_back(k, eq == std::string_view::npos ? std::string() : std::string(p.substr(eq + 1)));
    }
    return {};
}

} // namespace

Result<SmtpCommand> parse_smtp_command(std::string_view line) {
    for (char c : line)
        if (is_control(c) && c != '\t')
            return Error{ErrorKind::data, "500 5.5.2 control characters in the command"};
    SmtpCommand cmd;
    std::size_t sp = line.find(' ');
    cmd.word = upper(line.substr(0, sp));
    cmd.verb = verb_of(cmd.word);
    if (sp != std::string_view::npos) cmd.arg = std::string(line.substr(sp + 1));
    if (cmd.verb == SmtpVerb::mail) {
        if (auto r = parse_path_and_params(cmd.arg, "FROM:", cmd); !r) return r.error();
    } else if (cmd.verb == SmtpVerb::rcpt) {
        if (auto r = parse_path_and_params(cmd.arg, "TO:", cmd); !r) return r.error();
        if (cmd.path.empty()) return syntax("a recipient cannot be <>");
    }
    return cmd;
}

const std::string* smtp_param(const SmtpCommand& cmd, std::string_view key) {
    for (const auto& [k, v] : cmd.params)
        if (k == key) return &v;
    return nullptr;
}

} // namespace mail
