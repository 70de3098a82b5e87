// Delivery targets: see deliver.hpp.
#include "libmail/io/deliver.hpp"

#include "libmail/io/net.hpp"
#include "libmail/io/spawn.hpp"
#include "libmail/mail/spool.hpp"
#include "libmail/base/text.hpp"

#include <atomic>
#include <optional>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace mail {

namespace {

Error io_error(const std::string& what) { return Error{ErrorKind::tempfail, what + ": " + std::strerror(errno)}; }

Result<void> write_fd(int fd, std::string_view data, const std::string& path) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return io_error(path + ": write");
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

Result<void> fsync_dir(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return io_error(dir + ": open");
    int rc = ::fsync(fd);
    int e = errno;
    ::close(fd);
    errno = e;
    if (rc != 0) return io_error(dir + ": fsync");
    return {};
}

Result<void> ensure_dir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return io_error(dir + ": mkdir");
    return {};
}

// Line ends converted on the way to a file: to LF (Maildir) or to CRLF (pickup).
class LineEnds {
public:
    LineEnds(bool crlf, bool raw) : crlf_(crlf), raw_(raw) {}
    std::string convert(std::string_view in) {
        if (raw_) return std::string(in);
        std::string out;
        out.reserve(in.size() + 64);
        for (char c : in) {
            if (cr_) {
                cr_ = false;
                out += crlf_ ? "\r\n" : "\n";
                if (c == '\n') continue;
            }
            if (c == '\r') {
                cr_ = true;
                continue;
            }
            if (c == '\n') {
                out += crlf_ ? "\r\n" : "\n";
                continue;
            }
            out += c;
        }
        return out;
    }
    std::string finish() {
        if (raw_ || !cr_) return "";
        cr_ = false;
        return crlf_ ? "\r\n" : "\n";
    }

private:
    bool crlf_;
    bool raw_;
    bool cr_ = false;
};

// Writes top + m into tmp_path with line ends converted, fsyncs, renames to final_path, fsyncs the directory.
Result<void> write_file(const std::string& tmp_path, const std::string& final_path, const std::string& final_dir,
                        const std::string& top, const OutMessage& m, bool crlf, bool raw = false) {
    LineEnds le(crlf, raw);
    return write_atomically(tmp_path, final_path, final_dir, [&](const std::function<Result<void>(std::string_view)>& w) {
        // Two statements: le keeps state between calls, and the operands of + are unsequenced.
        std::string head = le.convert(top);
        head += le.convert(m.header);
        if (auto r = w(head); !r) return r;
        if (m.body) {
            auto r = m.body->each([&](std::string_view piece) { return w(le.convert(piece)); }, m.body_offset);
            if (!r) return r;
        }
        return w(le.finish());
    });
}


class RelayDelivery : public Delivery {
public:
    RelayDelivery(HostPort hp, std::string helo, std::chrono::milliseconds timeout,
                  std::shared_ptr<SmtpClientPool> pool, HandoffPolicy handoff, Dialect dialect = Dialect::smtp,
                  std::string unix_path = "")
        : hp_(std::move(hp)), helo_(std::move(helo)), timeout_(timeout), handoff_(handoff), dialect_(dialect),
          unix_path_(std::move(unix_path)) {
        // A connection that began with a PROXY header speaks for its client only: never shared.
        if (handoff_.proxy == ProxyProtocol::none) pool_ = std::move(pool);
    }
    ~RelayDelivery() override { close(); }

    Result<DeliveryResult> deliver(const OutMessage& m) override {
        std::string where = !unix_path_.empty()                      ? "unix:" + unix_path_
                            : hp_.host.find(':') != std::string::npos ? "[" + hp_.host + "]:" + hp_.port
                                                                      : hp_.host + ":" + hp_.port;
        bool proxied = handoff_.proxy == ProxyProtocol::v2 && m.client;
        // A connection opened for another client's PROXY header cannot carry this one.
        if (client_ && proxied && proxied_for_ != m.client->peer + "\n" + m.client->local) close();
        // A kept connection may have been closed by the server meanwhile: one fresh try then.
        for (int attempt = 0; attempt < 2; ++attempt) {
            if (!client_ && pool_ && attempt == 0) client_ = pool_->take();
            bool reused = client_ != nullptr;
            if (!client_) {
                std::string header = proxied ? proxy_v2_header(m.client->peer, m.client->local) : std::string();
                auto c = unix_path_.empty() ? SmtpClient::open(hp_, helo_, timeout_, header, dialect_)
                                            : SmtpClient::open_unix(unix_path_, helo_, timeout_, dialect_);
                if (!c) return Error{ErrorKind::tempfail, c.error().text.rfind(where, 0) == 0 ? c.error().text : where + ": " + c.error().text};
                client_ = std::move(*c);
                proxied_for_ = proxied ? m.client->peer + "\n" + m.client->local : std::string();
            }
            if (m.client) {
                if (auto h = hand_off(*client_, handoff_.xclient, *m.client, helo_); !h) {
                    client_.reset();
                    if (reused && attempt == 0) continue;
                    return Error{ErrorKind::tempfail, where + ": " + h.error().text};
                }
            }
            auto r = client_->send(m.sender, m.rcpts, [&](const std::function<Result<void>(std::string_view)>& w) {
                if (auto h = w(m.header); !h) return h;
                return m.body ? m.body->each(w, m.body_offset) : Result<void>();
            });
            if (!r) {
                client_.reset();
                if (reused && attempt == 0) continue;
                return Error{ErrorKind::tempfail, where + ": " + r.error().text};
            }
            if (client_->dead()) client_.reset();
            DeliveryResult d;
            d.accepted = r->accepted;
            d.reply = r->reply;
            d.where = where;
            return d;
        }
        return Error{ErrorKind::tempfail, where + ": unreachable"};
    }

    void close() override {
        if (client_ && pool_) pool_->give(std::move(client_));
        if (client_) client_->quit();
        client_.reset();
        proxied_for_.clear();
    }

private:
    HostPort hp_;
    std::string helo_;
    std::chrono::milliseconds timeout_;
    HandoffPolicy handoff_;
    std::shared_ptr<SmtpClientPool> pool_;
    Dialect dialect_;
    std::string unix_path_;
    std::unique_ptr<SmtpClient> client_;
    std::string proxied_for_;  ///< the client the connection's PROXY header named
};

// A file in a directory: a Maildir (tmp/ then new/, LF, Return-Path and X-Original-To) or a pickup
// directory (.NAME.tmp then NAME.eml, CRLF, X-Sender and X-Receiver).
class FileDelivery : public Delivery {
public:
    FileDelivery(std::string dir, bool maildir, bool raw = false) : dir_(std::move(dir)), maildir_(maildir), raw_(raw) {}
    Result<DeliveryResult> deliver(const OutMessage& m) override {
        const char* eol = maildir_ ? "\n" : "\r\n";
        for (const char* sub : {"", "/tmp", "/new", "/cur"}) {
            if (auto r = ensure_dir(dir_ + sub); !r) return r.error();
            if (!maildir_) break;
        }
        std::string top = maildir_ ? "Return-Path: <" + scrub(m.sender) + ">" + eol
                                   : "X-Sender: " + scrub(m.sender) + eol;
        for (const auto& r : m.rcpts) top += (maildir_ ? "X-Original-To: " : "X-Receiver: ") + scrub(r) + eol;
        if (raw_) top.clear();
        std::string name = unique_name();
        // A pickup file's temporary name starts with a dot and has no .eml suffix: a pickup service ignores it.
        std::string tmp = maildir_ ? dir_ + "/tmp/" + name : dir_ + "/." + name + ".tmp";
        std::string fin = maildir_ ? dir_ + "/new/" + name : dir_ + "/" + name + ".eml";
        if (auto w = write_file(tmp, fin, maildir_ ? dir_ + "/new" : dir_, top, m, !maildir_, raw_); !w) return w.error();
        DeliveryResult d;
        d.accepted = true;
        d.reply = SmtpReply(250, maildir_ ? "2.0.0 delivered to Maildir" : "2.0.0 queued in the pickup directory");
        d.where = fin;
        return d;
    }

private:
    std::string dir_;
    bool maildir_;
    bool raw_;
};

// Hands the message to a sendmail-compatible program: PATH -i -f SENDER -- RCPT...
class SendmailDelivery : public Delivery {
public:
    explicit SendmailDelivery(std::string path) : path_(std::move(path)) {}
    Result<DeliveryResult> deliver(const OutMessage& m) override {
        std::vector<std::string> argv{path_, "-i", "-f", m.sender.empty() ? "<>" : m.sender, "--"};
        for (const auto& r : m.rcpts) argv.push_back(r);
        auto rc = run_program(argv, [&](const std::function<Result<void>(std::string_view)>& w) -> Result<void> {
            if (auto h = w(m.header); !h) return h;
            return m.body ? m.body->each(w, m.body_offset) : Result<void>();
        }, std::chrono::seconds(120));
        if (!rc) return rc.error();
        DeliveryResult d;
        d.where = path_;
        d.accepted = *rc == 0;
        d.reply = *rc == 0 ? SmtpReply(250, "2.0.0 handed to " + path_)
                           : SmtpReply(*rc == 75 ? 451 : 554, "sendmail exit " + std::to_string(*rc));
        return d;
    }

private:
    std::string path_;
};

// Runs a program once per recipient with the message on its standard input (pipe:).
class PipeDelivery : public Delivery {
public:
    explicit PipeDelivery(std::vector<std::string> argv) : argv_(std::move(argv)) {}
    Result<DeliveryResult> deliver(const OutMessage& m) override {
        DeliveryResult d;
        d.where = argv_.empty() ? std::string() : argv_.front();
        std::optional<SmtpReply> temp, perm;
        for (const auto& rcpt : m.rcpts) {
            std::vector<std::string> argv;
            for (const auto& a : argv_) argv.push_back(substitute(a, m.sender, rcpt));
            auto rc = run_program(argv, [&](const std::function<Result<void>(std::string_view)>& w) -> Result<void> {
                if (auto h = w(m.header); !h) return h;
                return m.body ? m.body->each(w, m.body_offset) : Result<void>();
            }, std::chrono::seconds(120));
            // Not run, killed or timed out: nothing known to be delivered, so a temporary failure.
            SmtpReply r = rc ? exit_reply(*rc, d.where) : SmtpReply(451, "4.3.0 " + d.where + ": " + rc.error().text);
            if (r.code >= 400 && r.code < 500 && !temp) temp = r;
            if (r.code >= 500 && !perm) perm = r;
        }
        // Every recipient's run must succeed; a temporary failure anywhere defers the whole message (a retry may
        // repeat a delivery, never lose one).
        d.accepted = !temp && !perm;
        d.reply = temp ? *temp : perm ? *perm : SmtpReply(250, "2.0.0 handed to " + d.where);
        return d;
    }

private:
    static std::string substitute(const std::string& arg, const std::string& sender, const std::string& rcpt) {
        std::string out;
        for (std::size_t i = 0; i < arg.size();) {
            if (arg.compare(i, 9, "${sender}") == 0) {
                out += sender;
                i += 9;
            } else if (arg.compare(i, 12, "${recipient}") == 0) {
                out += rcpt;
                i += 12;
            } else {
                out += arg[i++];
            }
        }
        return out;
    }
    std::vector<std::string> argv_;
};

} // namespace

Result<void> write_atomically(const std::string& tmp_path, const std::string& final_path, const std::string& final_dir,
                              const std::function<Result<void>(const std::function<Result<void>(std::string_view)>&)>& source) {
    int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return io_error(tmp_path + ": create");
    auto fail = [&](Error e) {
        ::close(fd);
        ::unlink(tmp_path.c_str());
        return e;
    };
    if (auto r = source([&](std::string_view d) { return write_fd(fd, d, tmp_path); }); !r) return fail(r.error());
    if (::fsync(fd) != 0) return fail(io_error(tmp_path + ": fsync"));
    if (::close(fd) != 0) {
        ::unlink(tmp_path.c_str());
        return io_error(tmp_path + ": close");
    }
    if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
        Error e = io_error(final_path + ": rename");
        ::unlink(tmp_path.c_str());
        return e;
    }
    return fsync_dir(final_dir);
}

std::string unique_name() {
    static std::atomic<unsigned long> counter{0};
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    std::string host;
    for (char c : host_name()) host += (c == '/' || c == ':') ? '_' : c;
    return std::to_string(ts.tv_sec) + ".M" + std::to_string(ts.tv_nsec / 1000) + "P" + std::to_string(::getpid()) +
           "T" + std::to_string(static_cast<long>(::syscall(SYS_gettid))) + "Q" + std::to_string(++counter) + "." +
           host;
}

SmtpClientPool::~SmtpClientPool() {
    for (auto& [c, t] : idle_) c->quit();
}

std::unique_ptr<SmtpClient> SmtpClientPool::take() {
    std::lock_guard<std::mutex> g(m_);
    auto now = std::chrono::steady_clock::now();
    while (!idle_.empty()) {
        auto [c, t] = std::move(idle_.back());
        idle_.pop_back();
        if (now - t < max_idle_) return std::move(c);
    }
    return nullptr;
}

void SmtpClientPool::give(std::unique_ptr<SmtpClient> c) {
    if (!c || c->dead()) return;
    {
        std::lock_guard<std::mutex> g(m_);
        if (idle_.size() < max_kept_) {
            idle_.emplace_back(std::move(c), std::chrono::steady_clock::now());
            return;
        }
    }
    c->quit();
}

std::unique_ptr<Delivery> relay_delivery(HostPort hp, std::string helo, std::chrono::milliseconds timeout,
                                         std::shared_ptr<SmtpClientPool> pool, HandoffPolicy handoff) {
    return std::make_unique<RelayDelivery>(std::move(hp), std::move(helo), timeout, std::move(pool), handoff);
}
std::unique_ptr<Delivery> maildir_delivery(std::string dir) { return std::make_unique<FileDelivery>(std::move(dir), true); }
std::unique_ptr<Delivery> raw_maildir_delivery(std::string dir) {
    return std::make_unique<FileDelivery>(std::move(dir), true, true);
}
std::unique_ptr<Delivery> sendmail_delivery(std::string path) { return std::make_unique<SendmailDelivery>(std::move(path)); }
std::unique_ptr<Delivery> pickup_delivery(std::string dir) { return std::make_unique<FileDelivery>(std::move(dir), false); }

Result<void> read_file(const std::string& path, const std::function<Result<void>(std::string_view)>& fn) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Error{ErrorKind::tempfail, path + ": " + std::strerror(errno)};
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            Error e{ErrorKind::tempfail, path + ": read: " + std::strerror(errno)};
            ::close(fd);
            return e;
        }
        if (n == 0) break;
        if (auto w = fn(std::string_view(buf, static_cast<std::size_t>(n))); !w) {
            ::close(fd);
            return w;
        }
    }
    ::close(fd);
    return {};
}

SmtpReply exit_reply(int status, const std::string& program) {
    // sysexits(3), classified as Postfix's sys_exits table does: EX_OSERR and EX_TEMPFAIL are temporary.
    struct Exit {
        int status;
        int code;
        const char* text;
    };
    static const Exit table[] = {
        {64, 554, "5.3.0 command line usage error"}, {65, 554, "5.6.0 data format error"},
        {66, 554, "5.3.0 cannot open input"},        {67, 550, "5.1.1 user unknown"},
        {68, 550, "5.1.2 host name unknown"},        {69, 554, "5.3.0 service unavailable"},
        {70, 554, "5.3.0 internal software error"},  {71, 451, "4.3.0 system resource problem"},
        {72, 554, "5.3.0 critical OS file missing"}, {73, 550, "5.2.0 cannot create user output file"},
        {74, 554, "5.3.0 input/output error"},       {75, 451, "4.3.0 temporary failure"},
        {76, 554, "5.5.0 remote error in protocol"}, {77, 550, "5.7.0 permission denied"},
        {78, 554, "5.3.5 local configuration error"},
    };
    if (status == 0) return SmtpReply(250, "2.0.0 handed to " + program);
    for (const auto& e : table)
        if (e.status == status) return SmtpReply(e.code, std::string(e.text) + " (" + program + " exit " + std::to_string(status) + ")");
    // Not a sysexits status: nothing says the failure is final.
    return SmtpReply(451, "4.3.0 " + program + " exit " + std::to_string(status));
}

std::unique_ptr<Delivery> lmtp_delivery(HostPort hp, std::string unix_path, std::string helo,
                                        std::chrono::milliseconds timeout) {
    return std::make_unique<RelayDelivery>(std::move(hp), std::move(helo), timeout, nullptr,
                                           HandoffPolicy{XclientMode::no, ProxyProtocol::none}, Dialect::lmtp,
                                           std::move(unix_path));
}

std::unique_ptr<Delivery> pipe_delivery(std::vector<std::string> argv) {
    return std::make_unique<PipeDelivery>(std::move(argv));
}

Result<DeliveryTarget> parse_delivery_target(std::string_view text) {
    const std::string want =
        "want smtp:HOST:PORT, lmtp:HOST:PORT, lmtp:unix:/PATH, maildir:PATH, pickup:PATH, sendmail[:/PATH] or "
        "pipe:/PROGRAM ARGS";
    auto bad = [&](const std::string& why) {
        return Error{ErrorKind::usage, "'" + std::string(text) + "': " + (why.empty() ? want : why)};
    };
    if (text.size() > 4096 || text.find_first_of(std::string_view("\0\r\n", 3)) != std::string_view::npos) return bad("");
    auto colon = text.find(':');
    std::string_view kind = text.substr(0, colon);
    std::string_view rest = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
    DeliveryTarget t;
    if (kind == "smtp" || kind == "lmtp") {
        t.kind = kind == "smtp" ? DeliveryTarget::Kind::relay : DeliveryTarget::Kind::lmtp;
        if (kind == "lmtp" && rest.rfind("unix:", 0) == 0) {
            t.dir = std::string(rest.substr(5));
            if (t.dir.empty() || t.dir.front() != '/') return bad("lmtp:unix: wants an absolute socket path");
            return t;
        }
        auto hp = parse_host_port(rest);
        if (!hp) return bad(kind == "lmtp" ? "want lmtp:HOST:PORT or lmtp:unix:/PATH" : "want smtp:HOST:PORT");
        t.relay = *hp;
        return t;
    }
    if (kind == "maildir" || kind == "pickup") {
        if (rest.empty()) return bad(std::string(kind) + ": wants a directory");
        t.kind = kind == "maildir" ? DeliveryTarget::Kind::maildir : DeliveryTarget::Kind::pickup;
        t.dir = std::string(rest);
        return t;
    }
    if (kind == "sendmail") {
        t.kind = DeliveryTarget::Kind::sendmail;
        if (colon != std::string_view::npos && (rest.empty() || rest.front() != '/'))
            return bad("sendmail: wants an absolute path");
        t.dir = std::string(rest);
        return t;
    }
    if (kind == "pipe") {
        t.kind = DeliveryTarget::Kind::pipe;
        for (std::size_t i = 0; i < rest.size();) {
            auto e = rest.find(' ', i);
            if (e == std::string_view::npos) e = rest.size();
            if (e > i) t.argv.emplace_back(rest.substr(i, e - i));
            i = e + 1;
        }
        if (t.argv.empty() || t.argv.front().front() != '/') return bad("pipe: wants an absolute program path");
        if (t.argv.size() > 64) return bad("pipe: more than 64 arguments");
        return t;
    }
    return bad("");
}

std::string target_text(const DeliveryTarget& t) {
    auto hp = [](const HostPort& h) { return h.host.find(':') != std::string::npos ? "[" + h.host + "]:" + h.port : h.host + ":" + h.port; };
    switch (t.kind) {
    case DeliveryTarget::Kind::relay: return "smtp:" + hp(t.relay);
    case DeliveryTarget::Kind::maildir: return "maildir:" + t.dir;
    case DeliveryTarget::Kind::pickup: return "pickup:" + t.dir;
    case DeliveryTarget::Kind::sendmail: return t.dir.empty() ? "sendmail" : "sendmail:" + t.dir;
    case DeliveryTarget::Kind::lmtp: return t.dir.empty() ? "lmtp:" + hp(t.relay) : "lmtp:unix:" + t.dir;
    case DeliveryTarget::Kind::pipe: {
        std::string s = "pipe:";
        for (std::size_t i = 0; i < t.argv.size(); ++i) s += (i ? " " : "") + t.argv[i];
        return s;
    }
    }
    return "";
}

std::unique_ptr<Delivery> make_delivery(const DeliveryTarget& t, const std::string& helo,
                                        std::chrono::milliseconds timeout, std::shared_ptr<SmtpClientPool> pool,
                                        HandoffPolicy handoff, const std::string& sendmail_path) {
    switch (t.kind) {
    case DeliveryTarget::Kind::maildir: return maildir_delivery(t.dir);
    case DeliveryTarget::Kind::pickup: return pickup_delivery(t.dir);
    case DeliveryTarget::Kind::sendmail: return sendmail_delivery(t.dir.empty() ? sendmail_path : t.dir);
    case DeliveryTarget::Kind::lmtp: return lmtp_delivery(t.relay, t.dir, helo, timeout);
    case DeliveryTarget::Kind::pipe: return pipe_delivery(t.argv);
    case DeliveryTarget::Kind::relay: break;
    }
    return relay_delivery(t.relay, helo, timeout, std::move(pool), handoff);
}

} // namespace mail
