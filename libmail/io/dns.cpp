// STUB (issue 14 groundwork): replaced by the real resolver. Links, resolves nothing.
#include "libmail/io/dns.hpp"

namespace mail::dns {

std::string_view type_name(Type t) {
    switch (t) {
    case Type::a: return "A";
    case Type::ns: return "NS";
    case Type::cname: return "CNAME";
    case Type::soa: return "SOA";
    case Type::ptr: return "PTR";
    case Type::mx: return "MX";
    case Type::txt: return "TXT";
    case Type::aaaa: return "AAAA";
    }
    return "?";
}

Result<std::unique_ptr<Resolver>> make_resolver(const ResolverOptions&) {
    return Error{ErrorKind::config, "DNS resolver not built yet"};
}
Result<std::vector<HostPort>> parse_servers(std::string_view) { return Error{ErrorKind::usage, "not built yet"}; }
Result<std::string> reverse_name(std::string_view) { return Error{ErrorKind::data, "not built yet"}; }
Result<std::string> build_query(std::uint16_t, std::string_view, Type) { return Error{ErrorKind::data, "not built yet"}; }
Result<Response> parse_response(std::string_view) { return Error{ErrorKind::data, "not built yet"}; }
Answer answer_from(const Response&, std::string_view, Type) { return Answer{Status::error, {}, 0, "not built yet"}; }

} // namespace mail::dns
