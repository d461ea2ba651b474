// RedisSemanticSync: shares a SemanticCache's entries with every other process that uses the
// same Redis, prefix and embedding space, through one Redis Stream.
//
// Each process keeps its own FAISS/HNSW index (lookups stay local and fast). A local put, delete
// or clear is XADDed to the stream; a background reader thread follows the stream (XREAD BLOCK)
// and applies the other processes' entries to the local index, skipping its own. A new process
// bootstraps by replaying the stream from its start (the reader starts at id 0), so it serves
// everything the stream still holds; WaitForSync() waits for that catch-up.
//
// Stream key: <prefix>:{<prefix>:sem}:s:<space>, where space names the embedding space (the
// embedder's name and dim, or "dim<d>" for vector-only caches), so caches with different
// embedders never mix vectors. The hash tag keeps the stream in one Redis Cluster slot. The
// stream is trimmed to about `stream_maxlen` entries (URL option; XADD MAXLEN ~).
// Stream entry fields: "op" (p = put, d = delete, c = clear), "o" (origin: this instance's
// random id), "r" (the record, EncodeRecord: little-endian, ends with an XXH3-64 checksum).
// XADD is atomic, and a record that fails its checksum or size checks is skipped (counted as
// decode_errors), so a partial entry is never applied, let alone served.
//
// TTL: a record carries its absolute expiry; every process drops it at the same time, and a
// process bootstrapping later skips it. Deletes and clears propagate; local LRU evictions do
// not (each process has its own memory budget).
//
// Failure: fails open. A publish that cannot reach Redis is dropped (the entry stays local;
// publish_dropped counts it). The reader backs off while Redis is down and resumes from the
// last id it applied once Redis answers again.
//
// Thread-safety: thread-safe. One reader thread per instance; the destructor stops and joins it
// (within about one XREAD block interval, 100 ms, plus the command timeout).
#ifndef THRIFTY_CACHE_REDIS_SEMANTIC_SYNC_H_
#define THRIFTY_CACHE_REDIS_SEMANTIC_SYNC_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "thrifty/cache/redis_client.h"
#include "thrifty/cache/semantic_cache.h"

namespace thrifty::cache {

struct RedisSemanticSyncStats {
  uint64_t published = 0;        // stream entries written
  uint64_t publish_dropped = 0;  // local changes not shared (Redis unreachable or refused)
  uint64_t applied = 0;          // other processes' puts applied here
  uint64_t applied_deletes = 0;
  uint64_t applied_clears = 0;
  uint64_t skipped_expired = 0;  // remote puts already expired on arrival
  uint64_t decode_errors = 0;    // stream entries that failed their checks
  uint64_t read_failures = 0;    // reader calls that failed (Redis down)
  std::string last_id;           // last stream id applied ("0-0" before any)
};

class RedisSemanticSync final : public SemanticReplicator {
 public:
  // `cache` must outlive this object (it owns it through SetReplicator). `space` names the
  // embedding space (see the header comment). Starts the reader thread.
  static absl::StatusOr<std::unique_ptr<RedisSemanticSync>> Start(
      std::shared_ptr<RedisClient> client, SemanticCache* cache, std::string_view space);
  ~RedisSemanticSync() override;

  void OnPut(std::span<const SemanticRecord> records) override;
  void OnDelete(std::string_view query, std::string_view context, std::string_view ns) override;
  void OnClear() override;

  // Waits until every stream entry that existed at the call has been applied here. False when
  // Redis could not be asked or `timeout` passed first.
  bool WaitForSync(absl::Duration timeout);

  RedisSemanticSyncStats stats() const;
  RedisClient* client() const { return client_.get(); }
  const std::string& stream_key() const { return stream_key_; }

  static std::string StreamKey(std::string_view prefix, std::string_view space);
  static std::string EncodeRecord(const SemanticRecord& record);
  static absl::StatusOr<SemanticRecord> DecodeRecord(std::string_view data);
  // "ms-seq" stream ids as comparable pairs; nullopt when malformed.
  static std::optional<std::pair<uint64_t, uint64_t>> ParseStreamId(std::string_view id);

 private:
  RedisSemanticSync(std::shared_ptr<RedisClient> client, SemanticCache* cache,
                    std::string stream_key);
  void Run();
  void Publish(std::span<const std::pair<std::string_view, std::string>> entries);
  void ApplyEntry(const RedisReply& entry);

  const std::shared_ptr<RedisClient> client_;
  SemanticCache* const cache_;
  const std::string stream_key_;
  const std::string origin_;
  const std::string maxlen_;

  mutable std::mutex mu_;  // guards last_id_, stop_; with cv_ for WaitForSync and shutdown
  std::condition_variable cv_;
  std::string last_id_ = "0-0";
  std::pair<uint64_t, uint64_t> last_pos_{0, 0};
  bool stop_ = false;
  std::thread reader_;

  std::atomic<uint64_t> published_{0};
  std::atomic<uint64_t> publish_dropped_{0};
  std::atomic<uint64_t> applied_{0};
  std::atomic<uint64_t> applied_deletes_{0};
  std::atomic<uint64_t> applied_clears_{0};
  std::atomic<uint64_t> skipped_expired_{0};
  std::atomic<uint64_t> decode_errors_{0};
  std::atomic<uint64_t> read_failures_{0};
};

}  // namespace thrifty::cache

#endif  // THRIFTY_CACHE_REDIS_SEMANTIC_SYNC_H_
