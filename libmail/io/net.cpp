// Socket helpers: see net.hpp.
#include "libmail/io/net.hpp"

#include <arpa/inet.h>
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace mail {

namespace {

Error sys_error(const std::string& what) { return Error{ErrorKind::tempfail, what + ": " + std::strerror(errno)}; }

int ms_left(Deadline d) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(d - std::chrono::steady_clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

std::string text_of(const HostPort& hp) {
    return (hp.host.find(':') != std::string::npos ? "[" + hp.host + "]" : hp.host) + ":" + hp.port;
}

bool wait_for(int fd, short events, Deadline d) {
    for (;;) {
        pollfd p{fd, events, 0};
        int r = ::poll(&p, 1, ms_left(d));
        if (r > 0) return true;
        if (r == 0) return false;
        if (errno != EINTR) return false;
    }
}

} // namespace

Result<HostPort> parse_host_port(std::string_view text) {
    HostPort hp;
    std::size_t colon;
    if (!text.empty() && text[0] == '[') {
        std::size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return Error{ErrorKind::usage, "'" + std::string(text) + "': want [IPv6]:PORT"};
        hp.host = std::string(text.substr(1, close - 1));
        colon = close + 1;
    } else {
        colon = text.rfind(':');
        if (colon == std::string_view::npos || text.substr(0, colon).find(':') != std::string_view::npos)
            return Error{ErrorKind::usage, "'" + std::string(text) + "': want HOST:PORT or [IPv6]:PORT"};
        hp.host = std::string(text.substr(0, colon));
    }
    hp.port = std::string(text.substr(colon + 1));
    bool digits = !hp.port.empty() && hp.port.size() <= 5;
    for (char c : hp.port) digits = digits && c >= '0' && c <= '9';
    if (hp.host.empty() || !digits || std::stoi(hp.port) > 65535)
        return Error{ErrorKind::usage, "'" + std::string(text) + "': want HOST:PORT or [IPv6]:PORT"};
    return hp;
}

Result<int> connect_tcp(const HostPort& hp, Deadline deadline) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(hp.host.c_str(), hp.port.c_str(), &hints, &res); rc != 0)
        return Error{ErrorKind::tempfail, text_of(hp) + ": " + ::gai_strerror(rc)};
    Error last{ErrorKind::tempfail, text_of(hp) + ": no address"};
    for (addrinfo* a = res; a; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            last = sys_error(text_of(hp) + ": socket");
            continue;
        }
        int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            if (!wait_for(fd, POLLOUT, deadline)) {
                ::close(fd);
                last = Error{ErrorKind::tempfail, text_of(hp) + ": connection timed out"};
                continue;
            }
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            rc = err == 0 ? 0 : -1;
            errno = err;
        }
        if (rc != 0) {
            last = sys_error(text_of(hp) + ": connect");
            ::close(fd);
            continue;
        }
        ::freeaddrinfo(res);
        return fd;  // left non-blocking: reads and writes poll under their deadline
    }
    ::freeaddrinfo(res);
    return last;
}

Result<int> connect_unix(const std::string& path, Deadline deadline) {
    sockaddr_un sa{};
    if (path.empty() || path.size() >= sizeof sa.sun_path)
        return Error{ErrorKind::usage, "unix:" + path + ": want a socket path of 1 to " +
                                           std::to_string(sizeof sa.sun_path - 1) + " octets"};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.data(), path.size());
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return sys_error("unix:" + path + ": socket");
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    if (rc != 0 && (errno == EINPROGRESS || errno == EAGAIN)) {
        if (!wait_for(fd, POLLOUT, deadline)) {
            ::close(fd);
            return Error{ErrorKind::tempfail, "unix:" + path + ": connection timed out"};
        }
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
        errno = err;
    }
    if (rc != 0) {
        Error e = sys_error("unix:" + path + ": connect");
        ::close(fd);
        return e;
    }
    return fd;
}

Result<int> listen_tcp(const HostPort& hp, int backlog) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(hp.host.c_str(), hp.port.c_str(), &hints, &res); rc != 0)
        return Error{ErrorKind::tempfail, text_of(hp) + ": " + ::gai_strerror(rc)};
    int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    if (fd < 0) {
        ::freeaddrinfo(res);
        return sys_error(text_of(hp) + ": socket");
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (res->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, backlog) != 0) {
        Error e = sys_error(text_of(hp) + ": bind");
        ::close(fd);
        ::freeaddrinfo(res);
        return e;
    }
    ::freeaddrinfo(res);
    return fd;
}

Result<int> listen_unix(const std::string& path, int backlog) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof sa.sun_path)
        return Error{ErrorKind::usage, "unix:" + path + ": want a socket path of 1 to " +
                                           std::to_string(sizeof sa.sun_path - 1) + " octets"};
    path.copy(sa.sun_path, path.size());
    // A socket left by an earlier run is replaced; anything else at the path is not touched.
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) return Error{ErrorKind::config, "unix:" + path + ": exists and is no socket"};
        ::unlink(path.c_str());
    }
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return sys_error("unix:" + path + ": socket");
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, backlog) != 0) {
        Error e = sys_error("unix:" + path + ": bind");
        ::close(fd);
        return e;
    }
    return fd;
}

namespace {
std::string address_of(int fd, bool peer) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                  : ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    if (rc != 0) return "?";
    if (ss.ss_family == AF_UNIX) {
        auto* su = reinterpret_cast<sockaddr_un*>(&ss);
        std::size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
        std::string path(su->sun_path, ::strnlen(su->sun_path, std::min(n, sizeof su->sun_path)));
        return peer || path.empty() ? "local" : "unix:" + path;
    }
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET6) {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
        port = ntohs(s6->sin6_port);
        return "[" + std::string(host) + "]:" + std::to_string(port);
    }
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
    port = ntohs(s4->sin_port);
    return std::string(host) + ":" + std::to_string(port);
}
} // namespace

std::string local_address(int fd) { return address_of(fd, false); }
std::string peer_address(int fd) { return address_of(fd, true); }

Result<void> write_all(int fd, std::string_view data, Deadline deadline) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_for(fd, POLLOUT, deadline)) return Error{ErrorKind::tempfail, "write timed out"};
            continue;
        }
        return sys_error("write");
    }
    return {};
}

Result<std::string> read_line(int fd, std::string& buf, std::size_t max, Deadline deadline) {
    for (;;) {
        std::size_t nl = buf.find('\n');
        if (nl != std::string::npos) {
            if (nl > max) return Error{ErrorKind::data, "line too long"};
            std::string line = buf.substr(0, nl);
            buf.erase(0, nl + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            return line;
        }
        if (buf.size() > max) return Error{ErrorKind::data, "line too long"};
        char tmp[4096];
        ssize_t n = ::recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n > 0) {
            buf.append(tmp, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0) return Error{ErrorKind::tempfail, "connection closed"};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait_for(fd, POLLIN, deadline)) return Error{ErrorKind::tempfail, "read timed out"};
            continue;
        }
        return sys_error("read");
    }
}

std::string client_ip(std::string_view peer) {
    std::string host;
    if (!peer.empty() && peer.front() == '[') {
        auto close = peer.find(']');
        if (close == std::string_view::npos) return "";
        host = std::string(peer.substr(1, close - 1));
    } else {
        auto colon = peer.rfind(':');
        host = std::string(peer.substr(0, colon));
        if (host.find(':') != std::string::npos) host = std::string(peer);  // a bare IPv6 address, no port
    }
    in_addr a4{};
    if (::inet_pton(AF_INET, host.c_str(), &a4) == 1) return host;
    in6_addr a6{};
    if (::inet_pton(AF_INET6, host.c_str(), &a6) != 1) return "";
    char text[INET6_ADDRSTRLEN] = "";
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        std::memcpy(&a4, &a6.s6_addr[12], 4);
        ::inet_ntop(AF_INET, &a4, text, sizeof text);
    } else {
        ::inet_ntop(AF_INET6, &a6, text, sizeof text);
    }
    return text;
}

std::string client_net(std::string_view peer, int v4_prefix) {
    std::string ip = client_ip(peer);
    char text[INET6_ADDRSTRLEN] = "";
    in_addr a4{};
    if (::inet_pton(AF_INET, ip.c_str(), &a4) == 1) {
        if (v4_prefix >= 32) return ip;
        std::uint32_t mask = v4_prefix <= 0 ? 0 : ~std::uint32_t{0} << (32 - v4_prefix);
        a4.s_addr = htonl(ntohl(a4.s_addr) & mask);
        ::inet_ntop(AF_INET, &a4, text, sizeof text);
        return std::string(text) + "/" + std::to_string(v4_prefix);
    }
    in6_addr a6{};
    if (::inet_pton(AF_INET6, ip.c_str(), &a6) != 1) return "";
    std::memset(&a6.s6_addr[8], 0, 8);
    ::inet_ntop(AF_INET6, &a6, text, sizeof text);
    return std::string(text) + "/64";
}

std::string client_key(std::string_view peer) { return client_net(peer, 32); }

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "localhost";
    return buf;
}

} // namespace mail
