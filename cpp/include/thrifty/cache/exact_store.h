// ExactStore: what the exact response cache needs from where its entries live. Two stores:
// ExactCache (in process memory; the default) and RedisExactStore (shared by every process
// that points at the same Redis, see redis_exact_store.h). The Python class thrifty.ExactCache
// wraps either one, chosen by its backend= argument.
//
// Thread-safety: implementations must be thread-safe.
#ifndef THRIFTY_CACHE_EXACT_STORE_H_
#define THRIFTY_CACHE_EXACT_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace thrifty::cache {

struct CachedValue;
struct EntryMetadata;
struct ExactCacheStats;
enum class ValueKind : uint8_t;
class RedisClient;

// One entry of a batch put.
struct ExactPutItem {
  std::string_view key;
  std::string value;
  ValueKind kind;
  std::string model;
  std::string usage_json;
  double cost_usd = 0.0;
};

class ExactStore {
 public:
  virtual ~ExactStore() = default;

  // The live value for (ns, key), or null on a miss (a store that cannot be reached misses).
  virtual std::shared_ptr<const CachedValue> Get(std::string_view ns, std::string_view key) = 0;
  // One result per key, in order; a remote store answers them in one round trip.
  virtual std::vector<std::shared_ptr<const CachedValue>> GetMany(
      std::string_view ns, std::span<const std::string_view> keys);

  // InvalidArgument for bad input (ttl <= 0, bad cost, too large); a remote store that cannot
  // be reached drops the write and returns OK (fail open; counted in its stats).
  virtual absl::Status Put(std::string_view ns, std::string_view key, std::string value,
                           ValueKind kind, EntryMetadata metadata,
                           std::optional<absl::Duration> ttl) = 0;
  virtual absl::Status PutMany(std::string_view ns, std::span<ExactPutItem> items,
                               std::optional<absl::Duration> ttl);

  virtual bool Delete(std::string_view ns, std::string_view key) = 0;
  virtual bool Contains(std::string_view ns, std::string_view key) const = 0;
  virtual void Clear() = 0;
  virtual ExactCacheStats Stats() const = 0;
  // Entries stored (a remote store counts its keys, which may take a scan).
  virtual int64_t size() const = 0;

  // The Redis client behind a shared store, null for memory.
  virtual RedisClient* redis() const { return nullptr; }
};

}  // namespace thrifty::cache

#endif  // THRIFTY_CACHE_EXACT_STORE_H_
