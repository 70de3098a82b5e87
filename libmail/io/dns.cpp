// The resolver that talks to servers, and its cache (see dns.hpp). The packets are built and parsed by
// dns_packet.cpp; this file only moves them: UDP with retries inside one deadline, TCP when truncated.
#include "libmail/io/dns.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <list>
#include <mutex>
#include <unordered_map>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mail::dns {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The largest UDP answer we read (we offer 1232 in EDNS; some servers send more anyway), and the largest
// over TCP (its 16-bit length prefix).
constexpr std::size_t udp_buffer = 4096;
constexpr std::size_t tcp_max = 65535;
// glibc reads at most this many nameserver lines (MAXNS).
constexpr std::size_t resolv_conf_max = 3;

milliseconds left(Clock::time_point until) {
    return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(until - Clock::now()));
}

std::uint16_t random_id() {
    std::uint16_t id = 0;
    if (::getrandom(&id, sizeof id, 0) != static_cast<ssize_t>(sizeof id)) {
        // Never in practice (getrandom on a booted system); still something that changes.
        id = static_cast<std::uint16_t>(Clock::now().time_since_epoch().count());
    }
    return id;
}

// A closed-on-scope socket.
struct Fd {
    int fd = -1;
    Fd() = default;
    explicit Fd(int f) : fd(f) {}
    Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd = o.fd;
            o.fd = -1;
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    void reset() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

struct Server {
    HostPort hp;
    sockaddr_storage addr{};
    socklen_t len = 0;
    std::string shown;  // HOST:PORT for messages
};

Result<Server> numeric_server(const HostPort& hp) {
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(hp.host.c_str(), hp.port.c_str(), &hints, &res) != 0 || !res)
        return Error{ErrorKind::config, "DNS server '" + hp.host + "' is not a numeric address"};
    Server s;
    s.hp = hp;
    std::memcpy(&s.addr, res->ai_addr, res->ai_addrlen);
    s.len = res->ai_addrlen;
    ::freeaddrinfo(res);
    s.shown = (hp.host.find(':') != std::string::npos ? "[" + hp.host + "]" : hp.host) + ":" + hp.port;
    return s;
}

// The nameserver lines of a resolv.conf (glibc's reading: the first word "nameserver", a numeric address).
std::vector<HostPort> resolv_conf_servers(const std::string& path) {
    std::vector<HostPort> out;
    std::ifstream in(path);
    std::string line;
    while (out.size() < resolv_conf_max && std::getline(in, line)) {
        if (line.size() > 1024) continue;
        std::size_t i = 0;
        auto word = [&]() {
            while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
            std::size_t b = i;
            while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
            return line.substr(b, i - b);
        };
        if (word() != "nameserver") continue;
        std::string addr = word();
        if (addr.empty()) continue;
        HostPort hp{addr, "53"};
        if (numeric_server(hp)) out.push_back(std::move(hp));
    }
    return out;
}

bool wait_readable(int fd, Clock::time_point until) {
    for (;;) {
        auto ms = left(until);
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(ms.count(), 1 << 30)));
        if (r > 0) return true;
        if (r == 0) return false;
        if (errno != EINTR) return false;
    }
}

// Reads exactly n octets from a TCP socket before until.
bool read_exact(int fd, char* buf, std::size_t n, Clock::time_point until) {
    std::size_t got = 0;
    while (got < n) {
        if (!wait_readable(fd, until)) return false;
        ssize_t r = ::recv(fd, buf + got, n - got, 0);
        if (r > 0) got += static_cast<std::size_t>(r);
        else if (r == 0) return false;
        else if (errno != EINTR && errno != EAGAIN) return false;
    }
    return true;
}

class RealResolver final : public Resolver {
public:
    RealResolver(std::vector<Server> servers, const ResolverOptions& o)
        : servers_(std::move(servers)), timeout_(o.timeout), attempts_(std::max(1, o.attempts)) {}

    Answer query(std::string_view name, Type type) override {
        try {
            return ask(name, type);
        } catch (const std::exception& e) {
            return Answer{Status::error, {}, 0, std::string("DNS query failed: ") + e.what()};
        }
    }

private:
    std::vector<Server> servers_;
    milliseconds timeout_;
    int attempts_;

    // Whether packet answers our query (same id, same question); the parsed response if so.
    static std::optional<Response> matching(std::string_view packet, std::uint16_t id, const std::string& qname,
                                            Type type, std::string& why) {
        auto r = parse_response(packet);
        if (!r) {
            why = r.error().text;
            return std::nullopt;
        }
        if (r->id != id) return std::nullopt;  // an old or forged answer: not ours, keep waiting
        if (r->question != qname || r->question_type != static_cast<std::uint16_t>(type)) {
            why = "response for another question";
            return std::nullopt;
        }
        return std::move(*r);
    }

    // The query over TCP to s (RFC 7766), for an answer that came back truncated.
    std::optional<Response> over_tcp(const Server& s, const std::string& packet, std::uint16_t id,
                                     const std::string& qname, Type type, Clock::time_point until, std::string& why) {
        auto fd = connect_tcp(s.hp, until);
        if (!fd) {
            why = "TCP to " + s.shown + ": " + fd.error().text;
            return std::nullopt;
        }
        Fd sock(*fd);
        std::string out;
        out += static_cast<char>(packet.size() >> 8);
        out += static_cast<char>(packet.size() & 0xff);
        out += packet;
        if (auto w = write_all(sock.fd, out, until); !w) {
            why = "TCP to " + s.shown + ": " + w.error().text;
            return std::nullopt;
        }
        char lenbuf[2];
        if (!read_exact(sock.fd, lenbuf, 2, until)) {
            why = "TCP to " + s.shown + ": no answer";
            return std::nullopt;
        }
        std::size_t n = (static_cast<unsigned char>(lenbuf[0]) << 8) | static_cast<unsigned char>(lenbuf[1]);
        std::string body(std::min(n, tcp_max), '\0');
        if (!read_exact(sock.fd, body.data(), body.size(), until)) {
            why = "TCP to " + s.shown + ": answer cut short";
            return std::nullopt;
        }
        auto r = matching(body, id, qname, type, why);
        if (!r && why.empty()) why = "TCP answer from " + s.shown + " with another id";
        return r;
    }

    Answer ask(std::string_view name, Type type) {
        const auto until = Clock::now() + timeout_;
        const std::uint16_t id = random_id();
        auto packet = build_query(id, name, type);
        if (!packet) return Answer{Status::error, {}, 0, packet.error().text};
        const std::string qname = canonical_name(name);

        // One socket per server, kept for the whole query: a late answer to an earlier try still counts.
        std::vector<Fd> socks(servers_.size());
        std::vector<bool> done(servers_.size(), false);  // the server answered SERVFAIL/REFUSED: ask it no more
        std::optional<Answer> failure;                   // the last such answer
        std::string why;
        const int tries = attempts_ * static_cast<int>(servers_.size());
        int tried = 0;
        for (int attempt = 0; attempt < attempts_; ++attempt) {
            for (std::size_t i = 0; i < servers_.size(); ++i, ++tried) {
                if (done[i]) continue;
                if (left(until).count() <= 0) break;
                const Server& s = servers_[i];
                if (socks[i].fd < 0) {
                    int fd = ::socket(s.addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&s.addr), s.len) != 0) {
                        if (fd >= 0) ::close(fd);
                        why = s.shown + ": " + std::strerror(errno);
                        done[i] = true;
                        continue;
                    }
                    socks[i] = Fd(fd);
                }
                if (::send(socks[i].fd, packet->data(), packet->size(), 0) < 0) {
                    why = s.shown + ": " + std::strerror(errno);
                    continue;
                }
                // This try's share of what is left: the remaining tries split the time evenly.
                const int remaining = std::max(1, tries - tried);
                const auto slice_end = Clock::now() + left(until) / remaining;
                for (;;) {
                    std::vector<pollfd> pfds;
                    std::vector<std::size_t> which;
                    for (std::size_t k = 0; k < socks.size(); ++k)
                        if (socks[k].fd >= 0 && !done[k]) {
                            pfds.push_back(pollfd{socks[k].fd, POLLIN, 0});
                            which.push_back(k);
                        }
                    if (pfds.empty()) break;
                    auto ms = left(slice_end);
                    if (ms.count() <= 0) break;
                    int pr = ::poll(pfds.data(), pfds.size(), static_cast<int>(ms.count()));
                    if (pr < 0 && errno == EINTR) continue;
                    if (pr <= 0) break;
                    for (std::size_t k = 0; k < pfds.size(); ++k) {
                        if (!(pfds[k].revents & (POLLIN | POLLERR))) continue;
                        const std::size_t si = which[k];
                        char buf[udp_buffer];
                        ssize_t n = ::recv(socks[si].fd, buf, sizeof buf, 0);
                        if (n < 0) {
                            // ICMP port unreachable on a connected socket: nobody listens there.
                            if (errno != EAGAIN && errno != EINTR) {
                                why = servers_[si].shown + ": " + std::strerror(errno);
                                socks[si].reset();
                            }
                            continue;
                        }
                        auto r = matching(std::string_view(buf, static_cast<std::size_t>(n)), id, qname, type, why);
                        if (!r) continue;
                        if (r->truncated) {
                            auto t = over_tcp(servers_[si], *packet, id, qname, type, until, why);
                            if (!t) {
                                done[si] = true;
                                continue;
                            }
                            r = std::move(t);
                        }
                        Answer a = answer_from(*r, name, type);
                        if (a.status == Status::servfail) {
                            // Like glibc: another server may do better; this one is asked no more.
                            a.detail += " from " + servers_[si].shown;
                            failure = std::move(a);
                            done[si] = true;
                            continue;
                        }
                        return a;
                    }
                }
            }
        }
        if (failure) return *failure;
        Answer a;
        a.status = Status::timeout;
        a.detail = "timeout after " + std::to_string(timeout_.count()) + " ms";
        if (!why.empty()) a.detail += " (" + why + ")";
        return a;
    }
};

class FailingResolver final : public Resolver {
public:
    explicit FailingResolver(std::string detail) : detail_(std::move(detail)) {}
    Answer query(std::string_view, Type) override { return Answer{Status::error, {}, 0, detail_}; }

private:
    std::string detail_;
};

class CachingResolver final : public Resolver {
public:
    CachingResolver(std::unique_ptr<Resolver> inner, std::size_t entries, std::chrono::seconds max_ttl,
                    std::function<Clock::time_point()> now)
        : inner_(std::move(inner)), entries_(std::max<std::size_t>(1, entries)), max_ttl_(max_ttl),
          now_(now ? std::move(now) : [] { return Clock::now(); }) {}

    Answer query(std::string_view name, Type type) override {
        std::string key = canonical_name(name);
        key += '/';
        key += std::to_string(static_cast<unsigned>(type));
        {
            std::lock_guard<std::mutex> g(m_);
            auto it = index_.find(key);
            if (it != index_.end()) {
                auto now = now_();
                if (it->second->expires > now) {
                    lru_.splice(lru_.begin(), lru_, it->second);
                    Answer a = it->second->answer;
                    auto rest = std::chrono::duration_cast<std::chrono::seconds>(it->second->expires - now).count();
                    a.ttl = static_cast<std::uint32_t>(std::max<long long>(0, rest));
                    for (auto& r : a.records) r.ttl = std::min(r.ttl, a.ttl);
                    return a;
                }
                lru_.erase(it->second);
                index_.erase(it);
            }
        }
        Answer a = inner_->query(name, type);
        if (a.temporary()) return a;
        const auto ttl = std::min<std::int64_t>(a.ttl, max_ttl_.count());
        if (ttl <= 0) return a;
        std::lock_guard<std::mutex> g(m_);
        if (auto it = index_.find(key); it != index_.end()) {
            lru_.erase(it->second);
            index_.erase(it);
        }
        lru_.push_front(Entry{key, a, now_() + std::chrono::seconds(ttl)});
        index_[key] = lru_.begin();
        while (lru_.size() > entries_) {
            index_.erase(lru_.back().key);
            lru_.pop_back();
        }
        return a;
    }

private:
    struct Entry {
        std::string key;
        Answer answer;
        Clock::time_point expires;
    };
    std::unique_ptr<Resolver> inner_;
    std::size_t entries_;
    std::chrono::seconds max_ttl_;
    std::function<Clock::time_point()> now_;
    std::mutex m_;
    std::list<Entry> lru_;
    std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

} // namespace

std::unique_ptr<Resolver> make_cache(std::unique_ptr<Resolver> inner, std::size_t entries,
                                     std::chrono::seconds max_ttl, std::function<Clock::time_point()> now) {
    return std::make_unique<CachingResolver>(std::move(inner), entries, max_ttl, std::move(now));
}

std::unique_ptr<Resolver> make_failing_resolver(std::string detail) {
    return std::make_unique<FailingResolver>(std::move(detail));
}

Result<std::unique_ptr<Resolver>> make_resolver(const ResolverOptions& options) {
    std::vector<HostPort> list = options.servers;
    // glibc's behaviour when resolv.conf names no server (or is missing): the local host.
    if (list.empty()) list = resolv_conf_servers(options.resolv_conf);
    if (list.empty()) list.push_back(HostPort{"127.0.0.1", "53"});
    std::vector<Server> servers;
    for (const auto& hp : list) {
        auto s = numeric_server(hp);
        if (!s) return s.error();
        servers.push_back(std::move(*s));
    }
    if (options.timeout.count() <= 0) return Error{ErrorKind::config, "DNS timeout must be positive"};
    std::unique_ptr<Resolver> r = std::make_unique<RealResolver>(std::move(servers), options);
    if (options.cache_entries > 0) r = make_cache(std::move(r), options.cache_entries, options.max_ttl);
    return r;
}

} // namespace mail::dns
