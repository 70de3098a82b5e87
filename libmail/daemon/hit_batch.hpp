// Whitelist hit counts of a long-running daemon, written to the store in batches (msmtp-proxy(8)).
#pragma once
#include "libmail/base/limits.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace mail {

class Store;
class StorePool;

/// Whitelist hit counts kept in memory and written in one transaction now and then: a write per message
/// would make every session queue for the store's write lock. Shared by the sessions of one process.
class HitBatch {
public:
    /// Counts one hit on entry id at time now.
    void add(std::int64_t id, std::int64_t now);
    /// Writes the counted hits when due (256 of them, or 2 seconds since the last write), or now when force;
    /// hits that cannot be written stay counted for the next try.
    void flush(Store& store, std::int64_t now, bool force = false);
    /// True when no hits wait to be written.
    bool empty();

private:
    std::mutex m_;
    std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> pending_;  ///< id -> (hits, last)
    std::size_t count_ = 0;
    std::int64_t last_write_ = 0;
};

/// Writes a HitBatch from a thread of its own every interval, whether or not more hits come, and once more
/// when it stops: hits reach the store within the interval, and only a killed process loses the hits of
/// its last interval.
class HitFlusher {
public:
    /// Starts the thread; its store connections come from pool.
    HitFlusher(std::shared_ptr<HitBatch> hits, StorePool& pool,
               std::chrono::milliseconds interval = std::chrono::seconds(limits::hit_flush_interval));
    /// Stops as stop() does.
    ~HitFlusher();
    HitFlusher(const HitFlusher&) = delete;
    HitFlusher& operator=(const HitFlusher&) = delete;
    /// Ends the thread after a last write of everything counted (idempotent).
    void stop();

private:
    void run();
    void write_now();

    std::shared_ptr<HitBatch> hits_;
    StorePool& pool_;
    std::chrono::milliseconds interval_;
    std::mutex m_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace mail
