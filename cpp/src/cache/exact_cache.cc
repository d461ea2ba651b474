#include "thrifty/cache/exact_cache.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "cached_value.h"
#include "exact_snapshot.h"
#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"
#include "xxhash.h"

namespace thrifty::cache {
namespace {

constexpr uint64_t kNoStamp = std::numeric_limits<uint64_t>::max();

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

int64_t Charge(std::string_view ns, std::string_view key, const CachedValue& value) {
  return static_cast<int64_t>(ns.size() + key.size() + value.value.size() +
                              value.metadata.model.size() + value.metadata.usage_json.size());
}

absl::Status CheckLimit(std::string_view what, const std::optional<int64_t>& limit) {
  if (limit && *limit <= 0) {
    return absl::InvalidArgumentError(
        StrCat(what, " must be positive, got ", *limit, " (leave it unset for no limit)"));
  }
  return absl::OkStatus();
}

}  // namespace

// An entry: owned by its shard's map, linked into its shard's LRU list.
struct ExactCache::Node {
  std::string ns;
  std::string key;
  uint64_t hash = 0;
  std::shared_ptr<const CachedValue> value;
  int64_t charge = 0;
  uint64_t stamp = 0;  // from next_stamp_ at the last Get or Put
  Node* prev = this;
  Node* next = this;

  void Unlink() {
    prev->next = next;
    next->prev = prev;
    prev = next = this;
  }
  void LinkAfter(Node* head) {
    prev = head;
    next = head->next;
    head->next->prev = this;
    head->next = this;
  }
};

const Clock* Clock::Real() {
  static const Clock* const clock = new RealClock();
  return clock;
}

ExactCache::Shard::Shard() : lru(std::make_unique<Node>()), oldest_stamp(kNoStamp) {}

ExactCache::ExactCache(ExactCacheOptions options)
    : options_(options), clock_(options_.clock != nullptr ? options_.clock : Clock::Real()) {}

ExactCache::~ExactCache() = default;

absl::StatusOr<std::unique_ptr<ExactCache>> ExactCache::Create(ExactCacheOptions options) {
  THRIFTY_RETURN_IF_ERROR(CheckLimit("max_entries", options.max_entries));
  THRIFTY_RETURN_IF_ERROR(CheckLimit("max_bytes", options.max_bytes));
  if (options.default_ttl) THRIFTY_RETURN_IF_ERROR(internal::CheckTtl("ttl", *options.default_ttl));
  return std::unique_ptr<ExactCache>(new ExactCache(options));
}

uint64_t ExactCache::HashKey(std::string_view ns, std::string_view key) {
  // Seeding with the namespace's hash keeps ("a", "bc") and ("ab", "c") apart.
  return XXH3_64bits_withSeed(key.data(), key.size(), XXH3_64bits(ns.data(), ns.size()));
}

std::shared_ptr<const CachedValue> ExactCache::Get(std::string_view ns, std::string_view key) {
  const uint64_t hash = HashKey(ns, key);
  Shard& shard = ShardFor(hash);
  std::unique_ptr<Node> expired;  // freed after unlocking
  MutexLock lock(&shard.mu);
  auto it = shard.map.find(KeyRef{ns, key, hash});
  if (it == shard.map.end()) {
    ++shard.misses;
    return nullptr;
  }
  Node* node = it->second.get();
  const CachedValue& value = *node->value;
  if (value.expires_at != absl::InfiniteFuture() && value.ExpiredAt(clock_->Now())) {
    ++shard.misses;
    ++shard.expirations;
    expired = RemoveLocked(shard, it);
    return nullptr;
  }
  ++shard.hits;
  shard.saved_usd += value.metadata.cost_usd;
  TouchLocked(shard, node);
  return node->value;
}

absl::Status ExactCache::Put(std::string_view ns, std::string_view key, std::string value,
                             ValueKind kind, EntryMetadata metadata,
                             std::optional<absl::Duration> ttl) {
  THRIFTY_ASSIGN_OR_RETURN(std::shared_ptr<CachedValue> stored,
                           internal::NewCachedValue(std::move(value), kind, std::move(metadata),
                                                    ttl, options_.default_ttl, clock_->Now()));
  const int64_t charge = Charge(ns, key, *stored);
  if (options_.max_bytes && charge > *options_.max_bytes) {
    return absl::InvalidArgumentError(StrCat("entry of ", charge, " bytes (value ",
                                             stored->value.size(), ", key, namespace and metadata ",
                                             charge - static_cast<int64_t>(stored->value.size()),
                                             ") exceeds max_bytes ", *options_.max_bytes,
                                             "; raise max_bytes or do not cache this response"));
  }
  Insert(ns, key, std::move(stored));
  return absl::OkStatus();
}

void ExactCache::Insert(std::string_view ns, std::string_view key,
                        std::shared_ptr<const CachedValue> value) {
  const uint64_t hash = HashKey(ns, key);
  const int64_t charge = Charge(ns, key, *value);
  // Built before locking: most Puts follow a miss and insert a new key.
  auto fresh = std::make_unique<Node>();
  fresh->ns.assign(ns.data(), ns.size());
  fresh->key.assign(key.data(), key.size());
  fresh->hash = hash;
  fresh->charge = charge;
  std::shared_ptr<const CachedValue> replaced;  // freed after unlocking
  Shard& shard = ShardFor(hash);
  {
    MutexLock lock(&shard.mu);
    auto it = shard.map.find(KeyRef{ns, key, hash});
    if (it != shard.map.end()) {
      Node* node = it->second.get();
      replaced = std::exchange(node->value, std::move(value));
      const int64_t delta = charge - node->charge;
      node->charge = charge;
      shard.bytes += delta;
      bytes_.fetch_add(delta, std::memory_order_relaxed);
      TouchLocked(shard, node);
    } else {
      Node* node = fresh.get();
      node->value = std::move(value);
      shard.map.emplace(KeyRef{node->ns, node->key, hash}, std::move(fresh));
      ++shard.entries;
      shard.bytes += charge;
      entries_.fetch_add(1, std::memory_order_relaxed);
      bytes_.fetch_add(charge, std::memory_order_relaxed);
      TouchLocked(shard, node);
    }
  }
  EvictIfNeeded();
}

bool ExactCache::Delete(std::string_view ns, std::string_view key) {
  const uint64_t hash = HashKey(ns, key);
  Shard& shard = ShardFor(hash);
  std::unique_ptr<Node> removed;  // freed after unlocking
  MutexLock lock(&shard.mu);
  auto it = shard.map.find(KeyRef{ns, key, hash});
  if (it == shard.map.end()) return false;
  const CachedValue& value = *it->second->value;
  const bool live = value.expires_at == absl::InfiniteFuture() || !value.ExpiredAt(clock_->Now());
  if (!live) ++shard.expirations;
  removed = RemoveLocked(shard, it);
  return live;
}

bool ExactCache::Contains(std::string_view ns, std::string_view key) const {
  const uint64_t hash = HashKey(ns, key);
  const Shard& shard = ShardFor(hash);
  MutexLock lock(&shard.mu);
  auto it = shard.map.find(KeyRef{ns, key, hash});
  if (it == shard.map.end()) return false;
  const CachedValue& value = *it->second->value;
  return value.expires_at == absl::InfiniteFuture() || !value.ExpiredAt(clock_->Now());
}

void ExactCache::Clear() {
  for (Shard& shard : shards_) {
    Map dropped;  // freed after unlocking
    MutexLock lock(&shard.mu);
    dropped.swap(shard.map);
    shard.lru->prev = shard.lru->next = shard.lru.get();
    entries_.fetch_sub(shard.entries, std::memory_order_relaxed);
    bytes_.fetch_sub(shard.bytes, std::memory_order_relaxed);
    shard.entries = 0;
    shard.bytes = 0;
    UpdateOldestLocked(shard);
  }
}

ExactCacheStats ExactCache::Stats() const {
  ExactCacheStats stats;
  for (const Shard& shard : shards_) {
    MutexLock lock(&shard.mu);
    stats.hits += shard.hits;
    stats.misses += shard.misses;
    stats.evictions += shard.evictions;
    stats.expirations += shard.expirations;
    stats.entries += shard.entries;
    stats.bytes += shard.bytes;
    stats.saved_usd += shard.saved_usd;
  }
  return stats;
}

std::unique_ptr<ExactCache::Node> ExactCache::RemoveLocked(Shard& shard, Map::iterator it) {
  std::unique_ptr<Node> node = std::move(it->second);
  shard.map.erase(it);
  node->Unlink();
  --shard.entries;
  shard.bytes -= node->charge;
  entries_.fetch_sub(1, std::memory_order_relaxed);
  bytes_.fetch_sub(node->charge, std::memory_order_relaxed);
  UpdateOldestLocked(shard);
  return node;
}

void ExactCache::TouchLocked(Shard& shard, Node* node) {
  // Stamps are taken under the shard lock, so each shard's list stays sorted by stamp.
  node->stamp = next_stamp_.fetch_add(1, std::memory_order_relaxed);
  if (shard.lru->next != node) {
    node->Unlink();
    node->LinkAfter(shard.lru.get());
  }
  UpdateOldestLocked(shard);
}

void ExactCache::UpdateOldestLocked(Shard& shard) {
  const Node* tail = shard.lru->prev;
  shard.oldest_stamp.store(tail == shard.lru.get() ? kNoStamp : tail->stamp,
                           std::memory_order_relaxed);
}

bool ExactCache::OverLimit() const {
  return (options_.max_entries &&
          entries_.load(std::memory_order_relaxed) > *options_.max_entries) ||
         (options_.max_bytes && bytes_.load(std::memory_order_relaxed) > *options_.max_bytes);
}

void ExactCache::EvictIfNeeded() {
  if (!OverLimit()) return;
  MutexLock evict_lock(&evict_mu_);
  std::optional<absl::Time> now;
  while (OverLimit()) {
    // The shard whose least recently used entry is the oldest overall.
    Shard* victim = nullptr;
    uint64_t oldest = kNoStamp;
    for (Shard& shard : shards_) {
      const uint64_t stamp = shard.oldest_stamp.load(std::memory_order_relaxed);
      if (stamp < oldest) {
        oldest = stamp;
        victim = &shard;
      }
    }
    if (victim == nullptr) return;  // everything was removed meanwhile
    std::unique_ptr<Node> evicted;  // freed after unlocking
    MutexLock lock(&victim->mu);
    Node* tail = victim->lru->prev;
    if (tail == victim->lru.get()) continue;
    const absl::Time expires_at = tail->value->expires_at;
    if (expires_at != absl::InfiniteFuture()) {
      if (!now) now = clock_->Now();
      if (*now >= expires_at) {
        ++victim->expirations;
      } else {
        ++victim->evictions;
      }
    } else {
      ++victim->evictions;
    }
    evicted = RemoveLocked(*victim, victim->map.find(KeyRef{tail->ns, tail->key, tail->hash}));
  }
}

absl::Status ExactCache::Save(const std::string& path) const {
  const absl::Time now = clock_->Now();
  std::vector<std::pair<uint64_t, SnapshotRecord>> stamped;
  for (const Shard& shard : shards_) {
    MutexLock lock(&shard.mu);
    for (const Node* node = shard.lru->prev; node != shard.lru.get(); node = node->prev) {
      if (node->value->ExpiredAt(now)) continue;
      stamped.emplace_back(node->stamp, SnapshotRecord{node->ns, node->key, node->value});
    }
  }
  std::sort(stamped.begin(), stamped.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<SnapshotRecord> records;
  records.reserve(stamped.size());
  for (auto& [stamp, record] : stamped) records.push_back(std::move(record));
  return WriteSnapshot(path, records);
}

absl::StatusOr<int64_t> ExactCache::Load(const std::string& path) {
  THRIFTY_ASSIGN_OR_RETURN(std::vector<SnapshotRecord> records, ReadSnapshot(path));
  const absl::Time now = clock_->Now();
  // Newest first, the live entries that fit: what LRU eviction would leave after inserting
  // them all oldest first. An entry that alone exceeds max_bytes is skipped.
  std::vector<SnapshotRecord*> keep;
  int64_t bytes = 0;
  for (size_t i = records.size(); i-- > 0;) {
    SnapshotRecord& record = records[i];
    if (record.value->ExpiredAt(now)) continue;
    if (options_.max_entries && static_cast<int64_t>(keep.size()) >= *options_.max_entries) break;
    const int64_t charge = Charge(record.ns, record.key, *record.value);
    if (options_.max_bytes && charge > *options_.max_bytes) continue;
    if (options_.max_bytes && bytes + charge > *options_.max_bytes) break;
    bytes += charge;
    keep.push_back(&record);
  }
  Clear();
  for (size_t i = keep.size(); i-- > 0;) {
    Insert(keep[i]->ns, keep[i]->key, std::move(keep[i]->value));
  }
  return static_cast<int64_t>(keep.size());
}

}  // namespace thrifty::cache
