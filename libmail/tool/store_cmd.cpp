// mailstamp-store's commands: see mailstamp-store(8).
#include "libmail/tool/store_cmd.hpp"

#include "libmail/store/store_copy.hpp"
#include "libmail/store/store_pg.hpp"

#include <ostream>
#include <sys/stat.h>

namespace mail {

namespace {

constexpr const char* program = "mailstamp-store";

// Whether two store names are one store: the same text, or the same SQLite file under two paths.
bool same_store(const std::string& a, const std::string& b) {
    if (a == b) return true;
    if (is_pg_uri(a) || is_pg_uri(b)) return false;
    struct stat sa, sb;
    return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

int cmd_info(Context& ctx, std::ostream& out) {
    StoreOptions o;
    o.read_only = true;
    auto store = open_store(ctx.db_path(), o);
    if (!store) return report(program, store.error());
    auto s = store_summary(**store);
    if (!s) return report(program, s.error());
    out << "engine " << s->engine << "\nschema " << s->schema << '\n';
    for (const auto& t : s->tables) out << t.table << ' ' << t.rows << '\n';
    return ex_ok;
}

int cmd_copy(Context& ctx, const StoreCmdOptions& opt, std::ostream& out) {
    if (same_store(opt.from, opt.to))
        return report(program, Error{ErrorKind::usage, "FROM and TO are the same store: " + opt.to});
    if (opt.batch < 1) return report(program, Error{ErrorKind::usage, "--batch must be at least 1"});
    StoreOptions ro;
    ro.read_only = true;
    auto from = open_store(opt.from, ro);
    if (!from) return report(program, from.error());
    StoreOptions rw;
    rw.create = StoreCreate::file;
    auto to = open_store(opt.to, rw);
    if (!to) return report(program, to.error());
    auto copied = store_copy(**from, **to, opt.batch);
    if (!copied) return report(program, copied.error());
    std::string differ;
    std::int64_t rows = 0;
    for (const auto& t : *copied) {
        out << t.table << ' ' << t.from << ' ' << t.to << '\n';
        rows += t.to;
        if (t.from != t.to) differ += (differ.empty() ? "" : ", ") + t.table;
    }
    out.flush();
    if (!differ.empty())
        return report(program, Error{ErrorKind::data, "the copy differs from its source in table " + differ +
                                                          " (rows the source lacks in " + opt.to + "?)"});
    ctx.log_event("copy", {{"from", opt.from}, {"to", opt.to}, {"rows", rows}});
    return ex_ok;
}

} // namespace

int run_store_cmd(Context& ctx, const StoreCmdOptions& opt, std::ostream& out, std::ostream&) {
    if (opt.command == "copy") return cmd_copy(ctx, opt, out);
    return cmd_info(ctx, out);
}

} // namespace mail
