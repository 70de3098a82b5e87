// Spend check server and client: see spend.hpp.
#include "libmail/policy/spend.hpp"

#include "libmail/base/clock.hpp"
#include "libmail/io/net.hpp"
#include "libmail/policy/postage.hpp"
#include "libmail/base/text.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <ostream>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace mail {

namespace {

// A spend record is worth keeping at most this long; a stamp claiming more is trimmed.
constexpr std::int64_t max_record_life = 400 * 86400;
constexpr std::size_t min_nonce = 32, max_nonce = 128;
constexpr std::size_t nonce_octets = 16;

std::string sha256(std::string_view s) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(s.data(), s.size(), d, &n, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<char*>(d), n);
}

void lp(std::string& out, std::string_view s) {
    std::uint32_t n = static_cast<std::uint32_t>(s.size());
    for (int sh = 24; sh >= 0; sh -= 8) out += static_cast<char>((n >> sh) & 0xff);
    out += s;
}

bool nonce_ok(std::string_view n) {
    if (n.size() < min_nonce || n.size() > max_nonce) return false;
    for (char c : n)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

// What makes the stamped message itself for the authority: the recipient and what the owner signed of it.
std::string message_identity(const PostageStamp& s) {
    std::string id;
    lp(id, s.recipient);
    lp(id, s.message_id);
    id += s.body_hash;
    id += s.header_hash;
    return hex_encode(sha256(id));
}

// A peer's text for a log line or a diagnostic: short, no controls.
std::string shown(std::string_view t) { return scrub(t, 80); }

} // namespace

std::string spend_answer_signed_bytes(std::string_view nonce, std::string_view stamp_text, std::string_view code) {
    std::string s = "mailstamp-spend-1";
    s += '\0';
    lp(s, nonce);
    s += sha256(stamp_text);
    s += code;
    return s;
}

std::string spend_answer(Store& store, const std::vector<KeyPair>& keys, std::string_view request, std::int64_t now) {
    constexpr std::string_view verb = "SPEND ";
    if (request.substr(0, verb.size()) != verb) return "500 want SPEND <nonce> <stamp>";
    request.remove_prefix(verb.size());
    std::size_t sp = request.find(' ');
    std::string_view nonce = request.substr(0, sp);
    if (nonce.substr(0, 5) == "book:") return "530 a spend request must carry the stamp: SPEND <nonce> <stamp>";
    if (!nonce_ok(nonce)) return "500 bad nonce";
    if (sp == std::string_view::npos) return "500 want SPEND <nonce> <stamp>";
    std::string_view text = request.substr(sp + 1);
    auto s = parse_postage(text);
    if (!s) return "500 malformed stamp";
    const KeyPair* key = nullptr;
    for (const auto& k : keys)
        if (k.pub == s->book.authority) key = &k;
    if (!key) return "554 not a book of this authority";
    // Only what the owner signed can be spent: a stamp key alone is not enough.
    if (PostageCheck c = check_stamp_signatures(*s, {key->pub}); c != PostageCheck::ok)
        return "554 " + std::string(to_string(c));
    std::int64_t expires = std::min(s->date + postage_validity + postage_grace, now + max_record_life);
    if (expires < now) return "554 expired";
    auto r = store.spend(SpendRecord{s->spend_key(), message_identity(*s), now, expires});
    if (!r) return "451 store unavailable";
    std::string answer;
    switch (*r) {
    case SpendState::fresh: answer = "250 fresh"; break;
    case SpendState::same_message: answer = "251 same"; break;
    case SpendState::other_message: answer = "550 spent"; break;
    }
    auto sig = ed25519_sign(key->priv, spend_answer_signed_bytes(nonce, text, answer.substr(0, 3)));
    if (!sig) return "451 cannot sign";
    return answer + " " + base64_encode(*sig);
}

Result<SpendState> parse_spend_answer(std::string_view answer, std::string_view nonce, std::string_view stamp_text,
                                      std::string_view authority_pub) {
    std::string_view code = answer.substr(0, 3);
    SpendState state;
    if (code == "250") {
        state = SpendState::fresh;
    } else if (code == "251") {
        state = SpendState::same_message;
    } else if (code == "550") {
        state = SpendState::other_message;
    } else {
        return Error{ErrorKind::data, "unexpected answer: " + shown(answer)};
    }
    std::size_t sp = answer.rfind(' ');
    auto sig = sp == std::string_view::npos || sp < 3 ? std::nullopt : base64_decode(answer.substr(sp + 1));
    if (!sig || sig->size() != 64) return Error{ErrorKind::data, "unsigned answer: " + shown(answer)};
    if (!ed25519_verify(authority_pub, spend_answer_signed_bytes(nonce, stamp_text, code), *sig))
        return Error{ErrorKind::data, "answer not signed by the book's authority"};
    return state;
}

Result<SpendState> remote_spend(std::string_view authority, const PostageStamp& stamp, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    std::string who = "authority " + std::string(authority);
    auto hp = parse_host_port(authority);
    if (!hp) return Error{ErrorKind::tempfail, who + ": " + hp.error().text};
    unsigned char r[nonce_octets];
    if (RAND_bytes(r, sizeof r) != 1) return Error{ErrorKind::tempfail, "random source failed"};
    std::string nonce = hex_encode(std::string_view(reinterpret_cast<char*>(r), sizeof r));
    std::string text = format_postage(stamp);
    auto fd = connect_tcp(*hp, deadline);
    if (!fd) return Error{ErrorKind::tempfail, who + ": " + fd.error().text};
    std::string buf;
    auto w = write_all(*fd, "SPEND " + nonce + " " + text + "\r\nQUIT\r\n", deadline);
    Result<std::string> answer = w ? read_line(*fd, buf, spend_max_line, deadline) : Result<std::string>(w.error());
    ::close(*fd);
    if (!answer) return Error{ErrorKind::tempfail, who + ": " + answer.error().text};
    auto state = parse_spend_answer(*answer, nonce, text, stamp.book.authority);
    if (!state) return Error{state.error().kind, who + ": " + state.error().text};
    return *state;
}

Result<void> serve_spend(Store& store, const std::vector<KeyPair>& keys, const SpendServerOptions& opt,
                         std::ostream& log) {
    if (opt.listen.empty()) return Error{ErrorKind::usage, "serve: give --listen HOST:PORT"};
    std::vector<int> fds;
    auto close_all = [&] {
        for (int f : fds) ::close(f);
    };
    for (const auto& l : opt.listen) {
        auto hp = parse_host_port(l);
        if (!hp) {
            close_all();
            return hp.error();
        }
        auto fd = listen_tcp(*hp);
        if (!fd) {
            close_all();
            return fd.error();
        }
        fds.push_back(*fd);
        if (opt.on_listen) opt.on_listen(local_address(*fd));
    }

    std::mutex store_mu, log_mu;
    std::mutex live_mu;
    std::condition_variable live_cv;
    int live = 0;
    std::atomic<std::int64_t> requests{0};
    auto done = [&] { return opt.max_requests > 0 && requests.load() >= opt.max_requests; };

    auto session = [&](int fd, std::string peer) {
        std::string buf;
        for (;;) {
            auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opt.idle_timeout_ms);
            auto line = read_line(fd, buf, spend_max_line, deadline);
            std::string answer;
            bool quit = false;
            if (!line) {
                if (line.error().kind != ErrorKind::data) break;
                answer = "500 line too long";
                quit = true;
            } else if (*line == "QUIT") {
                answer = "221 bye";
                quit = true;
            } else {
                {
                    std::lock_guard<std::mutex> g(store_mu);
                    answer = spend_answer(store, keys, *line, now());
                }
                ++requests;
                std::lock_guard<std::mutex> g(log_mu);
                log << "event=spend peer=" << peer << " result=" << answer.substr(0, 3) << '\n' << std::flush;
            }
            if (!write_all(fd, answer + "\r\n", deadline) || quit) break;
        }
        ::close(fd);
        std::lock_guard<std::mutex> g(live_mu);
        --live;
        live_cv.notify_all();
    };

    while (!done()) {
        std::vector<pollfd> p;
        for (int f : fds) p.push_back(pollfd{f, POLLIN, 0});
        int r = ::poll(p.data(), p.size(), 200);
        if (r <= 0) continue;
        for (const auto& q : p) {
            if (!(q.revents & POLLIN)) continue;
            int c = ::accept4(q.fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (c < 0) continue;
            std::unique_lock<std::mutex> g(live_mu);
            if (live >= opt.max_sessions) {
                g.unlock();
                (void)write_all(c, "421 too many sessions\r\n",
                                std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
                ::close(c);
                continue;
            }
            ++live;
            g.unlock();
            std::thread(session, c, peer_address(c)).detach();
        }
    }
    close_all();
    std::unique_lock<std::mutex> g(live_mu);
    live_cv.wait(g, [&] { return live == 0; });
    return {};
}

} // namespace mail
