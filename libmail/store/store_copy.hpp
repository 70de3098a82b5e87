// Copying a whole store from one engine to another (SQLite <-> PostgreSQL, or the same engine), and counting
// what a store holds: mailstamp-store(8) copy and info. Both work on every table of the schema through the
// stores' SQL connections, a batch of rows at a time.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/store/store.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mail {

/// The rows of one table in a store.
struct TableRows {
    std::string table;
    std::int64_t rows = 0;
};

/// What `mailstamp-store info` shows: the engine, the schema version and the rows of each table.
struct StoreSummary {
    std::string engine;  ///< "sqlite" or "postgresql"
    int schema = 0;
    std::vector<TableRows> tables;
};

/// The rows of one table in the store copied from and in the store copied to, after the copy.
struct TableCopy {
    std::string table;
    std::int64_t from = 0, to = 0;
};

/// The tables of the schema, in the order copy and info take them.
std::vector<std::string> store_tables();

/// The engine, schema version and row counts of s.
Result<StoreSummary> store_summary(Store& s);

/// Copies every row of every table of from into to: a batch (up to batch rows) per write transaction of to,
/// rows to already holds (by their key) kept as they are, so that a copy cut short completes when run again.
/// The keyless table sent is replaced whole, in one transaction. A PostgreSQL to's whitelist identity is set
/// past the largest id copied. Returns the row counts of both stores afterwards, table by table; whether they
/// agree is the caller's to judge. progress (if set) is told of each table before it is copied.
Result<std::vector<TableCopy>> store_copy(Store& from, Store& to, std::int64_t batch = 1000,
                                          const std::function<void(const std::string&)>& progress = {});

} // namespace mail
