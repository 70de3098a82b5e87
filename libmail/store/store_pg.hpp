// The PostgreSQL backend of the store interface (DESIGN §4): a store named by a postgresql:// URI.
#pragma once
#include "libmail/store/store.hpp"

#include <string_view>

namespace mail {

/// Whether s names a PostgreSQL store (postgresql:// or postgres://) rather than an SQLite file.
bool is_pg_uri(std::string_view s);

/// Opens the PostgreSQL store at uri: a pooled connection (or a new one), the schema created or brought up to
/// this build's version unless opt says not to. A URI holding a password is refused (kind config): it would
/// show in ps and in logs; libpq's password file or service file hold it instead.
Result<std::unique_ptr<Store>> open_pg_store(const std::string& uri, const StoreOptions& opt);

} // namespace mail
