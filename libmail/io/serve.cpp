// Running network sessions: see serve.hpp.
#include "libmail/io/serve.hpp"

#include "libmail/io/net.hpp"

#include <arpa/inet.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <sys/stat.h>
#include <unistd.h>

namespace mail {

namespace {

std::atomic<std::size_t> g_active{0};
std::atomic<bool>* g_stop = nullptr;
std::atomic<bool>* g_hup = nullptr;

void on_stop(int) {
    if (g_stop) g_stop->store(true);
}
void on_hup(int) {
    if (g_hup) g_hup->store(true);
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::size_t b = 0;
    for (;;) {
        std::size_t e = s.find(sep, b);
        out.push_back(s.substr(b, e == std::string::npos ? std::string::npos : e - b));
        if (e == std::string::npos) break;
        b = e + 1;
    }
    return out;
}

} // namespace

std::vector<ServeSocket> activated_sockets() {
    std::vector<ServeSocket> out;
    const char* pid = std::getenv("LISTEN_PID");
    const char* fds = std::getenv("LISTEN_FDS");
    if (!pid || !fds) return out;
    char* end = nullptr;
    long p = std::strtol(pid, &end, 10);
    if (*end || p != static_cast<long>(::getpid())) return out;
    long n = std::strtol(fds, &end, 10);
    if (*end || n <= 0 || n > 64) return out;
    std::vector<std::string> names;
    if (const char* nm = std::getenv("LISTEN_FDNAMES")) names = split(nm, ':');
    for (int i = 0; i < n; ++i) {
        ServeSocket s;
        s.fd = 3 + i;
        ::fcntl(s.fd, F_SETFD, FD_CLOEXEC);
        int acc = 0;
        socklen_t len = sizeof acc;
        s.listening = ::getsockopt(s.fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc != 0;
        s.name = i < static_cast<int>(names.size()) ? names[i] : "";
        out.push_back(s);
    }
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    return out;
}

std::size_t active_sessions() { return g_active.load(); }

void serve(const std::vector<ServeSocket>& sockets, const ServeLimits& limits, const SessionFn& session,
           const BusyFn& busy, const std::atomic<bool>& stop, int grace_seconds) {
    // Threads are kept for the next connection (a thread per connection cost a fifth of a short session):
    // an accepted connection goes to an idle worker, or to a new one.
    struct Job {
        int fd;
        std::string peer;
        ServeSocket via;
        std::string key;  ///< client_key(peer): what the session counts under in per_client
    };
    std::mutex m;
    std::condition_variable cv;
    std::deque<Job> jobs;
    std::size_t idle = 0, live = 0;
    bool done = false;
    std::condition_variable gone;
    // Sessions running per client key (under m): one address must not take every slot.
    std::map<std::string, std::size_t> per_client;
    auto release = [&](const std::string& key) {  // under m
        if (key.empty()) return;
        auto it = per_client.find(key);
        if (it != per_client.end() && --it->second == 0) per_client.erase(it);
    };
    // A worker left idle for a while ends, unless only a few are left: a burst of a thousand sessions does
    // not keep a thousand stacks for ever.
    auto worker = [&]() {
        std::unique_lock<std::mutex> lk(m);
        for (;;) {
            ++idle;
            bool woke = cv.wait_for(lk, std::chrono::seconds(30), [&] { return done || !jobs.empty(); });
            --idle;
            if (jobs.empty() && (done || (!woke && idle >= 8))) break;
            if (jobs.empty()) continue;
            Job j = std::move(jobs.front());
            jobs.pop_front();
            lk.unlock();
            try {
                session(j.fd, j.fd, j.peer, j.via);
            } catch (...) {
                // A session's failure ends that session only; its client retries.
            }
            lk.lock();
            release(j.key);
            --g_active;
        }
        --live;
        gone.notify_all();
    };
    auto refuse = [&](int fd, const ServeSocket& via, Busy why, const std::string& peer) {
        std::string msg = busy(via, why, peer);
        (void)::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
    };
    auto spawn = [&](int fd, const ServeSocket& via) {
        std::string peer = peer_address(fd);
        if (g_active.load() >= limits.sessions) return refuse(fd, via, Busy::total, peer);
        std::string key = client_key(peer);
        std::unique_lock<std::mutex> g(m);
        if (!key.empty() && limits.per_client > 0) {
            std::size_t& n = per_client[key];
            if (n >= limits.per_client) {
                g.unlock();
                return refuse(fd, via, Busy::per_client, peer);
            }
            ++n;
        }
        ++g_active;
        jobs.push_back(Job{fd, peer, via, key});
        if (idle < jobs.size()) {
            try {
                std::thread(worker).detach();
                ++live;
            } catch (const std::system_error&) {
                if (idle == 0) {  // no thread to be had: refuse like a full server
                    jobs.pop_back();
                    release(key);
                    --g_active;
                    g.unlock();
                    return refuse(fd, via, Busy::total, peer);
                }
            }
        }
        cv.notify_one();
    };
    std::vector<pollfd> polls;
    std::vector<const ServeSocket*> which;
    for (const auto& s : sockets) {
        if (!s.listening) {
            spawn(s.fd, s);
            continue;
        }
        int fl = ::fcntl(s.fd, F_GETFL);
        ::fcntl(s.fd, F_SETFL, fl | O_NONBLOCK);
        polls.push_back(pollfd{s.fd, POLLIN, 0});
        which.push_back(&s);
    }
    while (!stop.load() && (!polls.empty() || g_active.load() > 0)) {
        if (polls.empty()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        int r = ::poll(polls.data(), polls.size(), 500);
        if (r <= 0) continue;
        for (std::size_t i = 0; i < polls.size(); ++i) {
            if (!(polls[i].revents & POLLIN)) continue;
            for (int k = 0; k < 64; ++k) {
                int fd = ::accept4(polls[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
                if (fd < 0) break;
                spawn(fd, *which[i]);
            }
        }
    }
    for (auto& p : polls) ::close(p.fd);
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(grace_seconds);
    while (g_active.load() > 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::unique_lock<std::mutex> lk(m);
    done = true;
    cv.notify_all();
    // The workers use this frame: wait for them (they are idle by now, or past the grace period).
    gone.wait_for(lk, std::chrono::seconds(5), [&] { return live == 0; });
}

std::vector<std::string> unix_socket_paths(const std::vector<std::string>& listen) {
    std::vector<std::string> out;
    for (const auto& l : listen)
        if (l.rfind("unix:", 0) == 0) out.push_back(l.substr(5));
    return out;
}

Result<void> drop_privileges(const std::string& user, const std::vector<std::string>& socket_paths) {
    if (user.empty()) return {};
    errno = 0;
    passwd* pw = ::getpwnam(user.c_str());
    if (!pw) return Error{ErrorKind::config, "--user " + user + ": no such user"};
    if (::geteuid() != 0) {
        if (::geteuid() == pw->pw_uid) return {};
        return Error{ErrorKind::noperm, "--user " + user + ": only root can switch users"};
    }
    for (const auto& path : socket_paths)
        if (::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0 || ::chmod(path.c_str(), 0660) != 0)
            return Error{ErrorKind::noperm, path + ": cannot give the socket to " + user + ": " + std::strerror(errno)};
    if (::initgroups(pw->pw_name, pw->pw_gid) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0)
        return Error{ErrorKind::noperm, "--user " + user + ": " + std::strerror(errno)};
    if (::setuid(0) == 0) return Error{ErrorKind::noperm, "--user " + user + ": root privileges could be regained"};
    return {};
}

void install_stop_signals(std::atomic<bool>& stop, std::atomic<bool>& hup) {
    g_stop = &stop;
    g_hup = &hup;
    struct sigaction sa{};
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    sa.sa_handler = on_hup;
    ::sigaction(SIGHUP, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
}

bool sockets_passed() {
    const char* fds = std::getenv("LISTEN_FDS");
    const char* pid = std::getenv("LISTEN_PID");
    return fds && pid && std::atol(pid) == static_cast<long>(::getpid());
}

} // namespace mail
