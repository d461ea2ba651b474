// RedisExactStore: the exact cache's entries in Redis, shared by every process and machine
// that uses the same server and prefix.
//
// Key layout (one Redis string per entry):
//   <prefix>:{<ns tag>}:x:<key>
// The namespace is the Redis Cluster hash tag, so one tenant's entries live in one slot (multi-
// key commands and SCANs per namespace work on a cluster). The tag is the namespace itself when
// it is 1-64 characters of [A-Za-z0-9_.-], "~" for the default (empty) namespace, and otherwise
// "#" + the hex XXH3-128 of the namespace (never a character that ends a hash tag early).
// Value: a little-endian record (EncodeValue): u8 version (1), u8 kind, f64 cost_usd,
// i64 created_at (unix us), i64 expires_at (unix us, 0 = never), u32 model length, u32 usage
// length, model bytes, usage JSON bytes, value bytes. One SET (with PX when the entry has a TTL)
// writes a whole record atomically, so a reader never sees a partial entry; a record that does
// not decode is a miss (counted as `corrupt`).
//
// Limits: Redis's own (maxmemory, maxmemory-policy such as allkeys-lru); this store keeps no
// max_entries / max_bytes. TTLs become Redis expiries (PX), so Redis drops expired entries.
//
// Failure: fails open. A Get that cannot reach Redis (down, slow past the timeout, breaker
// open) is a miss; a Put or Delete that cannot is dropped. Both are counted (failed_gets,
// dropped_writes) next to the client's counters; no error reaches the caller. An OOM reply
// (Redis full, noeviction policy) drops the write the same way.
//
// Thread-safety: thread-safe (the client is).
#ifndef THRIFTY_CACHE_REDIS_EXACT_STORE_H_
#define THRIFTY_CACHE_REDIS_EXACT_STORE_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "thrifty/cache/exact_cache.h"
#include "thrifty/cache/exact_store.h"
#include "thrifty/cache/redis_client.h"

namespace thrifty::cache {

struct RedisExactStoreOptions {
  std::optional<absl::Duration> default_ttl;  // > 0; nullopt: never expires
  const Clock* clock = nullptr;               // null: real
};

// Counters of the fail-open paths, beside RedisClientStats.
struct RedisFailOpenStats {
  uint64_t failed_gets = 0;     // gets answered as misses because Redis could not be reached
  uint64_t dropped_writes = 0;  // puts/deletes dropped (unreachable, or an error reply)
  uint64_t corrupt = 0;         // values that did not decode (treated as misses)
};

class RedisExactStore final : public ExactStore {
 public:
  static absl::StatusOr<std::unique_ptr<RedisExactStore>> Create(
      std::shared_ptr<RedisClient> client, RedisExactStoreOptions options = {});

  std::shared_ptr<const CachedValue> Get(std::string_view ns, std::string_view key) override;
  // One MGET (one round trip, one slot thanks to the namespace hash tag).
  std::vector<std::shared_ptr<const CachedValue>> GetMany(
      std::string_view ns, std::span<const std::string_view> keys) override;
  absl::Status Put(std::string_view ns, std::string_view key, std::string value, ValueKind kind,
                   EntryMetadata metadata, std::optional<absl::Duration> ttl) override;
  absl::Status PutMany(std::string_view ns, std::span<ExactPutItem> items,
                       std::optional<absl::Duration> ttl) override;
  bool Delete(std::string_view ns, std::string_view key) override;
  bool Contains(std::string_view ns, std::string_view key) const override;
  // Deletes every entry under this store's prefix (SCAN + UNLINK).
  void Clear() override;
  // hits, misses, saved_usd and expirations are this process's; entries, bytes and evictions
  // are not tracked (0): Redis owns them (size() counts the keys with a SCAN).
  ExactCacheStats Stats() const override;
  int64_t size() const override;
  RedisClient* redis() const override { return client_.get(); }

  RedisFailOpenStats fail_open_stats() const;
  const RedisExactStoreOptions& options() const { return options_; }

  // Key layout and value codec (public for tests and for peers that share the layout).
  static std::string NamespaceTag(std::string_view ns);
  static std::string EntryKey(std::string_view prefix, std::string_view ns, std::string_view key);
  static std::string EncodeValue(const CachedValue& value);
  static absl::StatusOr<std::shared_ptr<CachedValue>> DecodeValue(std::string_view record);

 private:
  RedisExactStore(std::shared_ptr<RedisClient> client, RedisExactStoreOptions options);
  struct GetCounts {
    uint64_t hits = 0, misses = 0, failed = 0, corrupt = 0, expired = 0;
    double saved_usd = 0.0;
  };
  // The entry for one GET reply (null on a miss), counted into `counts`.
  std::shared_ptr<const CachedValue> FromReply(const RedisReply& reply, GetCounts& counts) const;
  void Count(const GetCounts& counts) const;
  absl::StatusOr<std::shared_ptr<CachedValue>> Prepare(std::string value, ValueKind kind,
                                                       EntryMetadata metadata,
                                                       std::optional<absl::Duration> ttl) const;
  int64_t ScanCount(bool unlink) const;

  const std::shared_ptr<RedisClient> client_;
  const RedisExactStoreOptions options_;
  const Clock* const clock_;
  mutable std::atomic<uint64_t> hits_{0};
  mutable std::atomic<uint64_t> misses_{0};
  mutable std::atomic<uint64_t> expirations_{0};
  mutable std::atomic<double> saved_usd_{0.0};
  mutable std::atomic<uint64_t> failed_gets_{0};
  mutable std::atomic<uint64_t> dropped_writes_{0};
  mutable std::atomic<uint64_t> corrupt_{0};
};

}  // namespace thrifty::cache

#endif  // THRIFTY_CACHE_REDIS_EXACT_STORE_H_
