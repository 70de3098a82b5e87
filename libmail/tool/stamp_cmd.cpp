// mstamp: see mstamp(1).
#include "libmail/tool/stamp_cmd.hpp"

namespace mail {

int run_stamp(Context& ctx, const StampOptions& opt, std::istream& in, std::ostream& out, std::ostream& err) {
    return run_filter(ctx.program, [&] { return stamp_message(ctx, opt, in, out, err); });
}

} // namespace mail
