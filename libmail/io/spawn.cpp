// Running another program: see spawn.hpp.
#include "libmail/io/spawn.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace mail {

Result<int> run_program(const std::vector<std::string>& argv,
                        const std::function<Result<void>(const std::function<Result<void>(std::string_view)>&)>& source,
                        std::chrono::seconds timeout) {
    if (argv.empty() || argv[0].empty() || argv[0][0] != '/')
        return Error{ErrorKind::config, "a program to run must be given by its full path"};
    int in[2];
    if (::pipe2(in, O_CLOEXEC) != 0) return Error{ErrorKind::tempfail, std::string("pipe: ") + std::strerror(errno)};
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    static char path_env[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    char* envp[] = {path_env, nullptr};
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(in[0]);
        ::close(in[1]);
        return Error{ErrorKind::tempfail, std::string("fork: ") + std::strerror(errno)};
    }
    if (pid == 0) {
        // Only async-signal-safe calls from here on.
        int devnull = ::open("/dev/null", O_RDWR);
        ::dup2(in[0], 0);
        if (devnull >= 0) {
            ::dup2(devnull, 1);
            ::dup2(devnull, 2);
        }
        ::execve(args[0], args.data(), envp);
        ::_exit(127);
    }
    ::close(in[0]);
    ::signal(SIGPIPE, SIG_IGN);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto write = [&](std::string_view d) -> Result<void> {
        while (!d.empty()) {
            ssize_t n = ::write(in[1], d.data(), d.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return Error{ErrorKind::tempfail, argv[0] + ": write: " + std::strerror(errno)};
            d.remove_prefix(static_cast<std::size_t>(n));
            if (std::chrono::steady_clock::now() > deadline) return Error{ErrorKind::tempfail, argv[0] + ": timed out"};
        }
        return {};
    };
    Result<void> fed = source(write);
    ::close(in[1]);
    int status = 0;
    for (;;) {
        pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) return Error{ErrorKind::tempfail, argv[0] + ": wait: " + std::strerror(errno)};
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return Error{ErrorKind::tempfail, argv[0] + ": timed out"};
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!fed) return fed.error();
    if (WIFSIGNALED(status)) return Error{ErrorKind::tempfail, argv[0] + ": killed by signal " + std::to_string(WTERMSIG(status))};
    int rc = WEXITSTATUS(status);
    if (rc == 127) return Error{ErrorKind::config, argv[0] + ": cannot be run"};
    return rc;
}

} // namespace mail
