// SemanticCache: answers a request from a stored one whose final query means the same thing.
//
// Entries live in partitions, one per scope = (namespace, context). A lookup searches only its
// own scope's partition, and a hit re-checks the stored namespace and context strings, so an
// answer never crosses tenants or conversations, even for identical queries. Within a scope,
// queries match by inner product of L2-normalized embeddings (cosine similarity) against a
// threshold. Small partitions are searched exhaustively (SIMD); a partition that grows past
// `ann_min_entries` gets an HNSW index (graph built by FAISS, walked over 8-bit codes), with
// tombstones for deletions and a rebuild when they pass a quarter of the index. Candidate
// similarities are always recomputed exactly from the stored vector, so ANN only affects
// recall, never the similarity reported.
//
// Eviction: TTL (per entry, or the default) is exact, drained on every write and checked on
// every read; max_entries / max_bytes evict approximately least-recently-used entries (the
// oldest of a random sample of 8, as Redis does), so a hit never takes a write lock.
//
// Thread-safety: thread-safe. Lookups share a reader lock (they run in parallel); puts,
// deletions and evictions take the writer lock. Embedding happens outside the lock.
#ifndef THRIFTY_CACHE_SEMANTIC_CACHE_H_
#define THRIFTY_CACHE_SEMANTIC_CACHE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "thrifty/base/mutex.h"
#include "thrifty/embed/embedder.h"
#include "thrifty/request/request_key.h"

namespace thrifty::cache {

namespace internal {
class VectorPartition;
}  // namespace internal

enum class IndexKind {
  kAuto,  // flat while small, HNSW from ann_min_entries entries in one scope
  kFlat,  // always exhaustive (exact)
  kHnsw,  // HNSW from the first entry
};

struct SemanticCacheOptions {
  double threshold = 0.90;            // default minimum cosine similarity for a hit, in (0, 1]
  std::optional<size_t> max_entries;  // none: unbounded
  std::optional<size_t> max_bytes;    // none: unbounded
  std::optional<absl::Duration> default_ttl;
  IndexKind index = IndexKind::kAuto;
  size_t ann_min_entries = 2048;  // flat and HNSW p50 cross at ~1.5-2k entries (256-d, measured)
  int hnsw_m = 32;
  // 160/64: recall@1 0.967 at 1M entries (WordLlama 256-d) in ~100 us, 1M build ~4 min on 2
  // cores; 40/96 gave 0.957 in ~130 us (benchmarks/bench_semantic_cache.py).
  int hnsw_ef_construction = 160;
  int hnsw_ef_search = 64;
  std::function<absl::Time()> clock;  // default absl::Now; tests inject a fake clock
};

// What a hit returns. `data` is the stored response; `is_text` tells str from bytes.
struct SemanticValue {
  std::string data;
  bool is_text = true;
  std::string model;
  double cost_usd = 0.0;
};

struct SemanticHit {
  SemanticValue value;
  float similarity = 0.0f;
  std::string matched_query;
  absl::Time created_at;
  uint64_t entry_id = 0;  // the matched entry (see Contains); unique within this cache
};

// One entry as shared with other processes: what a replicator publishes and applies.
struct SemanticRecord {
  std::vector<float> vector;  // L2-normalized, dim() values
  std::string query;
  std::string context;
  std::string ns;
  SemanticValue value;
  absl::Time created_at;
  std::optional<absl::Time> expires_at;  // nullopt: the receiving cache's default TTL applies
};

// Receives a cache's local changes so other processes can replay them (RedisSemanticSync).
// Called on the caller's thread after the change is applied locally, without the cache's lock.
// Must never fail the caller: a replicator that cannot publish drops and counts.
// Local evictions (max_entries / max_bytes) are not published: each process has its own budget.
class SemanticReplicator {
 public:
  virtual ~SemanticReplicator() = default;
  virtual void OnPut(std::span<const SemanticRecord> records) = 0;
  virtual void OnDelete(std::string_view query, std::string_view context, std::string_view ns) = 0;
  virtual void OnClear() = 0;
};

struct SemanticCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t puts = 0;
  uint64_t replaced = 0;  // puts that replaced an entry with the same query in the scope
  uint64_t evictions = 0;
  uint64_t expirations = 0;
  uint64_t entries = 0;
  uint64_t bytes = 0;
  uint64_t scopes = 0;
  uint64_t ann_scopes = 0;  // scopes searched through HNSW
  double saved_usd = 0.0;   // cost_usd of the entries served on hits
};

class SemanticCache {
 public:
  // `embedder` may be null: then only the vector calls are available.
  static absl::StatusOr<std::unique_ptr<SemanticCache>> Create(
      size_t dim, SemanticCacheOptions options, std::shared_ptr<const embed::Embedder> embedder);
  ~SemanticCache();

  // Vector calls: `vector` must have dim() finite values; it is normalized on the way in.
  absl::Status PutVector(std::span<const float> vector, std::string_view query, SemanticValue value,
                         std::string_view context, std::string_view ns,
                         std::optional<absl::Duration> ttl = std::nullopt);
  // Bulk insert into one scope: n = queries.size() rows of `vectors` (n * dim), one value each.
  // Much faster than n PutVector calls for warming a cache (one lock, parallel HNSW build).
  absl::Status PutVectors(std::span<const float> vectors, std::span<const std::string> queries,
                          std::vector<SemanticValue> values, std::string_view context,
                          std::string_view ns, std::optional<absl::Duration> ttl = std::nullopt);
  absl::StatusOr<std::optional<SemanticHit>> GetVector(
      std::span<const float> vector, std::string_view context, std::string_view ns,
      std::optional<double> threshold = std::nullopt);

  // Text calls: embed with the cache's embedder, then as above. Empty queries are rejected.
  absl::Status Put(std::string_view query, SemanticValue value, std::string_view context,
                   std::string_view ns, std::optional<absl::Duration> ttl = std::nullopt);
  absl::StatusOr<std::optional<SemanticHit>> Get(std::string_view query, std::string_view context,
                                                 std::string_view ns,
                                                 std::optional<double> threshold = std::nullopt);

  // The best `k` matches in the scope regardless of threshold, best first (for calibration
  // and audits): (similarity, matched query).
  absl::StatusOr<std::vector<std::pair<float, std::string>>> Search(std::span<const float> vector,
                                                                    std::string_view context,
                                                                    std::string_view ns, size_t k);

  // Removes every entry whose query is `query` in the scope; returns how many.
  size_t Delete(std::string_view query, std::string_view context, std::string_view ns);
  void Clear();
  // Drops expired entries now (writes do this on their own).
  size_t PurgeExpired();

  SemanticCacheStats stats() const;
  // True while the entry a hit returned (SemanticHit::entry_id) is still held: not deleted,
  // replaced, evicted or drained after expiring (an entry past its expiry that no write has
  // drained yet still counts; compare created_at with the TTL for that).
  bool Contains(uint64_t entry_id) const;
  // Entries evicted so far for max_entries / max_bytes (stats().evictions without the rest).
  uint64_t evictions() const;
  // The entry held for exactly this query in this scope, if any (its SemanticHit::entry_id).
  std::optional<uint64_t> EntryId(std::string_view query, std::string_view context,
                                  std::string_view ns) const;
  // For callers that search ahead of time and settle the outcome later (the replay's
  // lookahead): PeekVector searches as GetVector does but changes nothing (no recency update,
  // no hit or miss counted); RecordLookup then counts the outcome settled on -- a hit on
  // `entry_id`, which marks the entry used as GetVector does, or a miss (nullopt) -- so
  // eviction order and stats() are what GetVector at that moment would have left.
  absl::StatusOr<std::optional<SemanticHit>> PeekVector(
      std::span<const float> vector, std::string_view context, std::string_view ns,
      std::optional<double> threshold = std::nullopt) const;
  void RecordLookup(std::optional<uint64_t> entry_id);
  size_t dim() const { return dim_; }
  double threshold() const { return options_.threshold; }
  const embed::Embedder* embedder() const { return embedder_.get(); }

  // Sharing. SetReplicator attaches the sink of local changes (call once, before the cache is
  // shared between threads); the cache owns it and destroys it first on destruction, so a
  // replicator's threads may call the Apply* methods until then. Apply* change the cache like
  // the local calls but publish nothing (they are how other processes' changes arrive).
  void SetReplicator(std::unique_ptr<SemanticReplicator> replicator);
  SemanticReplicator* replicator() const { return replicator_.get(); }
  // Skips (returns false) an expired record or one whose vector has the wrong size.
  bool ApplyReplicated(SemanticRecord record);
  size_t ApplyReplicatedDelete(std::string_view query, std::string_view context,
                               std::string_view ns);
  void ApplyReplicatedClear();

  // Snapshot: every live entry (vector, query, value, scope, times) in a checksummed file,
  // written atomically (temp file + rename). Load rebuilds the indexes.
  absl::Status Save(const std::string& path) const;
  absl::Status Load(const std::string& path);

 private:
  struct Entry;

  SemanticCache(size_t dim, SemanticCacheOptions options,
                std::shared_ptr<const embed::Embedder> embedder);

  absl::Time Now() const { return options_.clock ? options_.clock() : absl::Now(); }
  absl::StatusOr<std::vector<float>> Normalized(std::span<const float> vector) const;
  absl::StatusOr<std::vector<float>> EmbedQuery(std::string_view query) const;
  absl::Status PutNormalized(std::vector<float> vector, std::string_view query, SemanticValue value,
                             std::string_view context, std::string_view ns,
                             std::optional<absl::Duration> ttl, absl::Time created_at,
                             std::optional<absl::Time> expires_at)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status InsertVectors(const std::vector<float>& normalized,
                             std::span<const std::string> queries,
                             std::vector<SemanticValue> values, std::string_view context,
                             std::string_view ns, std::optional<absl::Duration> ttl, absl::Time now)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Registers an entry whose vector the caller adds to `partition`; returns its id.
  absl::StatusOr<uint64_t> InsertEntry(std::string_view query, SemanticValue value,
                                       std::string_view context, std::string_view ns,
                                       std::optional<absl::Duration> ttl, absl::Time created_at,
                                       std::optional<absl::Time> expires_at,
                                       internal::VectorPartition** partition)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveEntry(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ClearLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t DrainExpired(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvictToBudget() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::optional<absl::Time> ExpiryFor(absl::Time created_at,
                                      std::optional<absl::Duration> ttl) const;

  const size_t dim_;
  const SemanticCacheOptions options_;
  std::unique_ptr<SemanticReplicator> replicator_;
  const std::shared_ptr<const embed::Embedder> embedder_;

  mutable Mutex mu_;
  absl::flat_hash_map<request::Key128, std::unique_ptr<internal::VectorPartition>,
                      request::Key128Hash>
      partitions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  // (scope, query) -> entry, so re-putting a query replaces it.
  absl::flat_hash_map<request::Key128, uint64_t, request::Key128Hash> by_query_
      ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> dense_ids_ ABSL_GUARDED_BY(mu_);  // for random eviction samples
  std::multimap<absl::Time, uint64_t> expiry_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t rng_state_ ABSL_GUARDED_BY(mu_) = 0x9E3779B97F4A7C15ULL;

  // Lookups bump these without the writer lock.
  mutable std::atomic<uint64_t> access_clock_{0};
  mutable std::atomic<uint64_t> hits_{0};
  mutable std::atomic<uint64_t> misses_{0};
  mutable std::atomic<double> saved_usd_{0.0};
  uint64_t puts_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t replaced_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evictions_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t expirations_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace thrifty::cache

#endif  // THRIFTY_CACHE_SEMANTIC_CACHE_H_
