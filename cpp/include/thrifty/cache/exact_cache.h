// ExactCache: an in-memory response cache keyed by (namespace, key), with LRU eviction, TTLs,
// hit/miss/savings counters and crash-safe snapshots.
//
// Keys are opaque strings (usually thrifty::request::RequestKey hex digests); the namespace
// partitions the key space, so the same key in two namespaces names two entries. A value is a
// byte string tagged as bytes or UTF-8 text (so Python gets back the type it stored), plus the
// metadata of the response that produced it: model, usage (opaque JSON text) and cost_usd.
//
// Limits: max_entries and max_bytes (each optional). An entry's size ("charge") is
// ns.size() + key.size() + value.size() + model.size() + usage_json.size(); fixed-size fields
// and bookkeeping are not counted. A Put whose charge alone exceeds max_bytes fails with
// InvalidArgument rather than being dropped silently. After every Put the least recently used
// entries (by Get or Put) are evicted until both limits hold.
//
// TTL: each entry may carry a TTL; without one it gets options.default_ttl, and without that it
// never expires. Expiry is lazy: an expired entry is removed when a Get (or Delete) finds it,
// counted as an expiration and a miss, or when eviction reaches it (counted as an expiration,
// not an eviction). Until then it still counts in size() and Stats().entries/bytes; Contains()
// and Save() ignore it. Time comes from options.clock (default: the real clock).
//
// Invariants: every entry is in exactly one shard's map and LRU list; per shard the list is
// ordered by access stamp (most recent first), stamps are unique and increase over the cache's
// life; entries_/bytes_ equal the sums of the per-shard counts whenever no call is in flight.
//
// Thread-safety: thread-safe. The key space is split into kNumShards shards by XXH3 of
// (namespace, key); each shard has its own mutex, hash map and LRU list, so Get and Put lock one
// shard. (The mutex is thrifty::Mutex rather than absl::Mutex so that TSAN sees it; see
// base/mutex.h.) Eviction picks the shard whose LRU entry is globally oldest: exact LRU when
// calls don't overlap, approximate under concurrent writers, and the limits may be exceeded
// momentarily by the number of Puts in flight. Stats(), Clear() and Save() visit the shards one
// at a time, so they are consistent per shard, not across shards. Load() replaces the contents
// but is not atomic with respect to concurrent callers. The clock must be thread-safe.
#ifndef THRIFTY_CACHE_EXACT_CACHE_H_
#define THRIFTY_CACHE_EXACT_CACHE_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "thrifty/base/mutex.h"
#include "thrifty/cache/exact_store.h"

namespace thrifty::cache {

// A source of the current time, injectable so TTL tests are deterministic. Implementations
// must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  // absl::Now(); a process-wide singleton.
  static const Clock* Real();
};

// How a value was stored: Python gets bytes back for kBytes and str for kText (UTF-8).
enum class ValueKind : uint8_t { kBytes = 0, kText = 1 };  // declared in exact_store.h

// What a caller stores alongside a value.
struct EntryMetadata {
  std::string model;
  std::string usage_json;  // opaque JSON text; empty when there is none
  double cost_usd = 0.0;   // what the response cost; summed into saved_usd on every hit
};

// One stored value. Immutable once stored and shared: Get hands out a reference-counted
// pointer, so a hit copies neither the value nor the metadata under the shard lock.
struct CachedValue {
  std::string value;
  ValueKind kind = ValueKind::kBytes;
  EntryMetadata metadata;
  absl::Time created_at;
  absl::Time expires_at = absl::InfiniteFuture();  // InfiniteFuture: never expires

  bool ExpiredAt(absl::Time now) const { return now >= expires_at; }
};

struct ExactCacheOptions {
  std::optional<int64_t> max_entries;         // > 0; nullopt: unlimited
  std::optional<int64_t> max_bytes;           // > 0; nullopt: unlimited
  std::optional<absl::Duration> default_ttl;  // > 0 (may be infinite); nullopt: never expires
  const Clock* clock = nullptr;               // not owned, must outlive the cache; null: real
};

// Counters are cumulative over the cache's life (Clear and Load keep them); entries and bytes
// describe the current contents, including expired entries not yet removed.
struct ExactCacheStats {
  int64_t hits = 0;
  int64_t misses = 0;       // includes gets that found an expired entry
  int64_t evictions = 0;    // removed to honour max_entries / max_bytes
  int64_t expirations = 0;  // removed because their TTL had passed
  int64_t entries = 0;
  int64_t bytes = 0;       // sum of entry charges (see the header comment)
  double saved_usd = 0.0;  // sum of cost_usd over hits
};

// The in-memory ExactStore.
class ExactCache final : public ExactStore {
 public:
  static constexpr int kShardBits = 4;
  static constexpr size_t kNumShards = size_t{1} << kShardBits;

  // InvalidArgument when a limit or the default TTL is not positive.
  static absl::StatusOr<std::unique_ptr<ExactCache>> Create(ExactCacheOptions options = {});

  ExactCache(const ExactCache&) = delete;
  ExactCache& operator=(const ExactCache&) = delete;
  ~ExactCache() override;

  // The live value for (ns, key), or null on a miss. Counts a hit or a miss, and marks the entry
  // most recently used.
  std::shared_ptr<const CachedValue> Get(std::string_view ns, std::string_view key) override;

  // Stores `value`, replacing any entry for (ns, key), then evicts LRU entries down to the
  // limits. `ttl`: nullopt uses the default TTL; absl::InfiniteDuration() never expires.
  // InvalidArgument when ttl <= 0, cost_usd is negative or not finite, or the entry's charge
  // exceeds max_bytes.
  absl::Status Put(std::string_view ns, std::string_view key, std::string value, ValueKind kind,
                   EntryMetadata metadata = {},
                   std::optional<absl::Duration> ttl = std::nullopt) override;

  // Removes (ns, key); true when a live entry was removed.
  bool Delete(std::string_view ns, std::string_view key) override;

  // Whether a live entry exists. Counts nothing and does not change LRU order.
  bool Contains(std::string_view ns, std::string_view key) const override;

  // Removes every entry (not counted as evictions); counters are kept.
  void Clear() override;

  ExactCacheStats Stats() const override;

  // Number of entries, including expired ones not yet removed.
  int64_t size() const override { return entries_.load(std::memory_order_relaxed); }

  const ExactCacheOptions& options() const { return options_; }

  // Writes the live entries to `path` (format in src/cache/exact_snapshot.h), oldest first, via
  // a temporary file in the same directory that is fsync'ed and renamed over `path`: a failure
  // or crash mid-save leaves any previous snapshot at `path` intact.
  absl::Status Save(const std::string& path) const;

  // Replaces the contents with the snapshot at `path`, keeping this cache's options. Expired
  // entries are skipped; when the snapshot holds more than the limits allow, the most recently
  // used entries that fit are kept. Returns the number of entries loaded. The file is read and
  // fully validated first, so on any error the contents are unchanged: NotFound or
  // PermissionDenied when it cannot be read, InvalidArgument when it is not an exact-cache
  // snapshot of a supported version, DataLoss when it is truncated or fails its checksum.
  absl::StatusOr<int64_t> Load(const std::string& path);

 private:
  struct Node;
  struct KeyRef {
    std::string_view ns;
    std::string_view key;
    uint64_t hash;
  };
  struct KeyRefHash {
    size_t operator()(const KeyRef& ref) const { return static_cast<size_t>(ref.hash); }
  };
  struct KeyRefEq {
    bool operator()(const KeyRef& a, const KeyRef& b) const {
      return a.hash == b.hash && a.key == b.key && a.ns == b.ns;
    }
  };
  // The map's keys view into the Node they map to, which is heap-allocated and never moves.
  using Map = absl::flat_hash_map<KeyRef, std::unique_ptr<Node>, KeyRefHash, KeyRefEq>;

  // Padded to a cache line so shards' locks and counters don't share one.
  struct alignas(64) Shard {
    Shard();

    mutable Mutex mu;
    Map map ABSL_GUARDED_BY(mu);
    // Sentinel of the circular LRU list: lru->next is the most recently used entry.
    std::unique_ptr<Node> lru ABSL_GUARDED_BY(mu);
    int64_t entries ABSL_GUARDED_BY(mu) = 0;
    int64_t bytes ABSL_GUARDED_BY(mu) = 0;
    int64_t hits ABSL_GUARDED_BY(mu) = 0;
    int64_t misses ABSL_GUARDED_BY(mu) = 0;
    int64_t evictions ABSL_GUARDED_BY(mu) = 0;
    int64_t expirations ABSL_GUARDED_BY(mu) = 0;
    double saved_usd ABSL_GUARDED_BY(mu) = 0.0;
    // The LRU entry's stamp (kNoStamp when empty); written under mu, read without it by
    // eviction to choose a shard.
    std::atomic<uint64_t> oldest_stamp;
  };

  explicit ExactCache(ExactCacheOptions options);

  static uint64_t HashKey(std::string_view ns, std::string_view key);
  Shard& ShardFor(uint64_t hash) { return shards_[hash >> (64 - kShardBits)]; }
  const Shard& ShardFor(uint64_t hash) const { return shards_[hash >> (64 - kShardBits)]; }

  // Inserts or replaces; the caller has checked the charge against max_bytes.
  void Insert(std::string_view ns, std::string_view key, std::shared_ptr<const CachedValue> value);
  // Unlinks `it` from shard's list and map; returns the node so it is freed after unlocking.
  std::unique_ptr<Node> RemoveLocked(Shard& shard, Map::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  void TouchLocked(Shard& shard, Node* node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  void UpdateOldestLocked(Shard& shard) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  bool OverLimit() const;
  void EvictIfNeeded() ABSL_LOCKS_EXCLUDED(evict_mu_);

  const ExactCacheOptions options_;
  const Clock* const clock_;
  std::array<Shard, kNumShards> shards_;
  // Mirrors of the per-shard counts, for the lock-free limit check after a Put.
  std::atomic<int64_t> entries_{0};
  std::atomic<int64_t> bytes_{0};
  std::atomic<uint64_t> next_stamp_{1};
  // Serializes evictors, so two Puts over a limit by one entry don't both evict one.
  Mutex evict_mu_;
};

}  // namespace thrifty::cache

#endif  // THRIFTY_CACHE_EXACT_CACHE_H_
