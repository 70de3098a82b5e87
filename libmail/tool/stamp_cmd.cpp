// mstamp: see mstamp(1).
#include "libmail/tool/stamp_cmd.hpp"

#include <stdexcept>

namespace mail {

int run_stamp(Context& ctx, const StampOptions& opt, std::istream& in, std::ostream& out, std::ostream& err) {
    Result<int> r = Error{ErrorKind::software, "internal error"};
    try {
        r = stamp_message(ctx, opt, in, out, err);
    } catch (const std::exception& e) {
        // A bug must still leave the message with the MTA: report it and say "try again later".
        r = Error{ErrorKind::tempfail, std::string("internal error: ") + e.what()};
    }
    if (!r) {
        // A filter that fails must not lose mail: anything but a usage, input or message error
        // is "try again later".
        Error e = r.error();
        if (e.kind != ErrorKind::usage && e.kind != ErrorKind::data && e.kind != ErrorKind::config &&
            e.kind != ErrorKind::noinput)
            e.kind = ErrorKind::tempfail;
        return report(ctx.program, e);
    }
    return *r;
}

} // namespace mail
