// Whitelist hit counts written in batches: see hit_batch.hpp.
#include "libmail/daemon/hit_batch.hpp"

#include "libmail/app/context.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/store/store.hpp"

namespace mail {

void HitBatch::add(std::int64_t id, std::int64_t now) {
    std::lock_guard<std::mutex> g(m_);
    auto& e = pending_[id];
    ++e.first;
    e.second = std::max(e.second, now);
    ++count_;
}

void HitBatch::flush(Store& store, std::int64_t now, bool force) {
    std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> take;
    {
        std::lock_guard<std::mutex> g(m_);
        if (pending_.empty()) return;
        if (!force && count_ < 256 && now - last_write_ < 2) return;
        take.swap(pending_);
        count_ = 0;
        last_write_ = now;
    }
    auto w = store.transaction([&]() -> Result<void> {
        for (const auto& [id, e] : take)
            if (auto r = store.wl_hit(id, e.second, e.first); !r) return r;
        return {};
    });
    if (!w) {
        std::lock_guard<std::mutex> g(m_);
        for (const auto& [id, e] : take) {
            auto& p = pending_[id];
            p.first += e.first;
            p.second = std::max(p.second, e.second);
            count_ += static_cast<std::size_t>(e.first);
        }
    }
}

HitFlusher::HitFlusher(std::shared_ptr<HitBatch> hits, StorePool& pool, std::chrono::milliseconds interval)
    : hits_(std::move(hits)), pool_(pool), interval_(interval) {
    thread_ = std::thread([this] { run(); });
}

HitFlusher::~HitFlusher() { stop(); }

void HitFlusher::stop() {
    {
        std::lock_guard<std::mutex> g(m_);
        if (stopping_ && !thread_.joinable()) return;
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    write_now();  // whatever came in while the thread was stopping
}

void HitFlusher::write_now() {
    if (hits_->empty()) return;
    auto st = pool_.take();
    if (!st) return;  // the store is unavailable: the hits stay counted for the next try
    hits_->flush(**st, now(), true);
    pool_.give(std::move(*st));
}

void HitFlusher::run() {
    std::unique_lock<std::mutex> lk(m_);
    while (!stopping_) {
        cv_.wait_for(lk, interval_, [&] { return stopping_; });
        lk.unlock();
        write_now();
        lk.lock();
    }
}

bool HitBatch::empty() {
    std::lock_guard<std::mutex> g(m_);
    return pending_.empty();
}

} // namespace mail
