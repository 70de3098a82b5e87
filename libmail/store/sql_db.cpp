// The engine-independent parts of the store's SQL layer (sql_db.hpp).
#include "libmail/store/sql_db.hpp"

namespace mail {

SqlReader& SqlReader::operator>>(std::vector<std::string>& v) {
    v = SqlOps::split_lines(r_.text(i_++));
    return *this;
}

std::string SqlOps::join_lines(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& x : v) {
        if (!out.empty()) out += '\n';
        out += x;
    }
    return out;
}

std::vector<std::string> SqlOps::split_lines(const std::string& t) {
    std::vector<std::string> out;
    for (std::size_t b = 0; b < t.size();) {
        std::size_t e = t.find('\n', b);
        if (e == std::string::npos) e = t.size();
        if (e > b) out.push_back(t.substr(b, e - b));
        b = e + 1;
    }
    return out;
}

} // namespace mail
