#include "thrifty/cache/semantic_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>

#include "raw_bytes.h"
#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"
#include "vector_partition.h"
#include "xxhash.h"

namespace thrifty::cache {

struct SemanticCache::Entry {
  uint64_t id = 0;
  request::Key128 scope;
  request::Key128 query_key;
  std::string ns;
  std::string context;
  std::string query;
  SemanticValue value;
  absl::Time created_at;
  std::optional<absl::Time> expires_at;
  size_t bytes = 0;
  size_t dense_index = 0;
  mutable std::atomic<uint64_t> last_access{0};
};

namespace {

using internal::AppendRaw;
using internal::ReadRaw;

constexpr size_t kEntryOverheadBytes = 160;  // bookkeeping per entry, measured roughly
constexpr size_t kEvictionSample = 8;
constexpr size_t kCandidates = 4;

// Length-prefixed parts, so ("a", "bc") and ("ab", "c") never share a key.
request::Key128 HashParts(std::initializer_list<std::string_view> parts) {
  std::string buffer;
  for (std::string_view part : parts) {
    StrAppend(&buffer, part.size(), ":", part, "|");
  }
  return request::HashBytes(buffer);
}

request::Key128 ScopeKey(std::string_view ns, std::string_view context) {
  return HashParts({"scope", ns, context});
}

request::Key128 QueryKey(const request::Key128& scope, std::string_view query) {
  const std::string scope_hex = scope.ToHex();
  return HashParts({"query", scope_hex, query});
}

}  // namespace

absl::StatusOr<std::unique_ptr<SemanticCache>> SemanticCache::Create(
    size_t dim, SemanticCacheOptions options, std::shared_ptr<const embed::Embedder> embedder) {
  if (dim == 0 || dim > 65536) {
    return absl::InvalidArgumentError(
        StrCat("SemanticCache: dim must be in [1, 65536], got ", dim));
  }
  if (embedder && embedder->dim() != dim) {
    return absl::InvalidArgumentError(StrCat("SemanticCache: embedder '", embedder->name(),
                                             "' makes ", embedder->dim(),
                                             "-d vectors but the cache dim is ", dim));
  }
  if (!(options.threshold > 0.0 && options.threshold <= 1.0)) {
    return absl::InvalidArgumentError(StrCat(
        "SemanticCache: threshold must be a cosine similarity in (0, 1], got ", options.threshold));
  }
  if (options.max_entries && *options.max_entries == 0) {
    return absl::InvalidArgumentError("SemanticCache: max_entries must be >= 1 (or None)");
  }
  if (options.max_bytes && *options.max_bytes == 0) {
    return absl::InvalidArgumentError("SemanticCache: max_bytes must be >= 1 (or None)");
  }
  if (options.default_ttl && *options.default_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("SemanticCache: ttl_seconds must be > 0 (or None)");
  }
  if (options.hnsw_m < 4 || options.hnsw_ef_search < 1 || options.hnsw_ef_construction < 1) {
    return absl::InvalidArgumentError(
        "SemanticCache: hnsw_m must be >= 4 and ef_search/ef_construction >= 1");
  }
  return std::unique_ptr<SemanticCache>(
      new SemanticCache(dim, std::move(options), std::move(embedder)));
}

SemanticCache::SemanticCache(size_t dim, SemanticCacheOptions options,
                             std::shared_ptr<const embed::Embedder> embedder)
    : dim_(dim), options_(std::move(options)), embedder_(std::move(embedder)) {}

SemanticCache::~SemanticCache() {
  // Stop the replicator (and its threads, which call into this cache) before the members go.
  replicator_.reset();
}

void SemanticCache::SetReplicator(std::unique_ptr<SemanticReplicator> replicator) {
  replicator_ = std::move(replicator);
}

std::optional<absl::Time> SemanticCache::ExpiryFor(absl::Time created_at,
                                                   std::optional<absl::Duration> ttl) const {
  if (ttl) return created_at + *ttl;
  if (options_.default_ttl) return created_at + *options_.default_ttl;
  return std::nullopt;
}

bool SemanticCache::ApplyReplicated(SemanticRecord record) {
  if (record.vector.size() != dim_) return false;
  const absl::Time now = Now();
  if (record.expires_at && *record.expires_at <= now) return false;
  MutexLock lock(&mu_);
  return PutNormalized(std::move(record.vector), record.query, std::move(record.value),
                       record.context, record.ns, std::nullopt, record.created_at,
                       record.expires_at)
      .ok();
}

size_t SemanticCache::ApplyReplicatedDelete(std::string_view query, std::string_view context,
                                            std::string_view ns) {
  MutexLock lock(&mu_);
  auto it = by_query_.find(QueryKey(ScopeKey(ns, context), query));
  if (it == by_query_.end()) return 0;
  RemoveEntry(it->second);
  return 1;
}

void SemanticCache::ApplyReplicatedClear() {
  MutexLock lock(&mu_);
  ClearLocked();
}

absl::StatusOr<std::vector<float>> SemanticCache::Normalized(std::span<const float> vector) const {
  if (vector.size() != dim_) {
    return absl::InvalidArgumentError(StrCat("SemanticCache: vector has ", vector.size(),
                                             " values, the cache expects dim=", dim_));
  }
  double norm = 0.0;
  for (size_t i = 0; i < vector.size(); ++i) {
    if (!std::isfinite(vector[i])) {
      return absl::InvalidArgumentError(
          StrCat("SemanticCache: vector[", i, "] is not finite (", vector[i], ")"));
    }
    norm += static_cast<double>(vector[i]) * vector[i];
  }
  std::vector<float> out(vector.begin(), vector.end());
  if (norm > 0.0) {
    const auto scale = static_cast<float>(1.0 / std::sqrt(norm));
    for (float& v : out) v *= scale;
  }
  return out;
}

absl::StatusOr<std::vector<float>> SemanticCache::EmbedQuery(std::string_view query) const {
  if (embedder_ == nullptr) {
    return absl::FailedPreconditionError(
        "SemanticCache: this cache has no embedder; use the vector calls or pass an embedder");
  }
  if (query.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return absl::InvalidArgumentError("SemanticCache: query is empty or only whitespace");
  }
  std::vector<float> vector(dim_);
  THRIFTY_RETURN_IF_ERROR(embedder_->Embed(query, vector));
  return Normalized(vector);
}

absl::Status SemanticCache::PutVector(std::span<const float> vector, std::string_view query,
                                      SemanticValue value, std::string_view context,
                                      std::string_view ns, std::optional<absl::Duration> ttl) {
  THRIFTY_ASSIGN_OR_RETURN(std::vector<float> normalized, Normalized(vector));
  if (ttl && *ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("SemanticCache.put: ttl_seconds must be > 0 (or None)");
  }
  const absl::Time now = Now();
  std::optional<SemanticRecord> record;
  if (replicator_) {
    record.emplace(SemanticRecord{normalized, std::string(query), std::string(context),
                                  std::string(ns), value, now, ExpiryFor(now, ttl)});
  }
  {
    MutexLock lock(&mu_);
    THRIFTY_RETURN_IF_ERROR(PutNormalized(std::move(normalized), query, std::move(value), context,
                                          ns, ttl, now, std::nullopt));
  }
  if (record) replicator_->OnPut(std::span<const SemanticRecord>(&*record, 1));
  return absl::OkStatus();
}

absl::Status SemanticCache::Put(std::string_view query, SemanticValue value,
                                std::string_view context, std::string_view ns,
                                std::optional<absl::Duration> ttl) {
  THRIFTY_ASSIGN_OR_RETURN(std::vector<float> vector, EmbedQuery(query));
  return PutVector(vector, query, std::move(value), context, ns, ttl);
}

absl::StatusOr<uint64_t> SemanticCache::InsertEntry(std::string_view query, SemanticValue value,
                                                    std::string_view context, std::string_view ns,
                                                    std::optional<absl::Duration> ttl,
                                                    absl::Time created_at,
                                                    std::optional<absl::Time> expires_at,
                                                    internal::VectorPartition** partition_out) {
  auto entry = std::make_unique<Entry>();
  entry->bytes = kEntryOverheadBytes + dim_ * sizeof(float) + query.size() + value.data.size() +
                 value.model.size() + ns.size() + context.size();
  if (options_.max_bytes && entry->bytes > *options_.max_bytes) {
    return absl::InvalidArgumentError(StrCat(
        "SemanticCache.put: the entry needs ", entry->bytes,
        " bytes (response, query, context and vector), more than max_bytes=", *options_.max_bytes));
  }
  entry->id = next_id_++;
  entry->scope = ScopeKey(ns, context);
  entry->query_key = QueryKey(entry->scope, query);
  entry->ns = std::string(ns);
  entry->context = std::string(context);
  entry->query = std::string(query);
  entry->value = std::move(value);
  entry->created_at = created_at;
  if (expires_at) {
    entry->expires_at = expires_at;
  } else if (ttl) {
    entry->expires_at = created_at + *ttl;
  } else if (options_.default_ttl) {
    entry->expires_at = created_at + *options_.default_ttl;
  }
  entry->last_access.store(access_clock_.fetch_add(1) + 1, std::memory_order_relaxed);

  if (auto it = by_query_.find(entry->query_key); it != by_query_.end()) {
    RemoveEntry(it->second);
    ++replaced_;
  }
  auto& partition = partitions_[entry->scope];
  if (!partition) {
    internal::PartitionConfig config;
    config.dim = dim_;
    config.ann_always = options_.index == IndexKind::kHnsw;
    config.ann_min_entries = options_.index == IndexKind::kAuto ? options_.ann_min_entries : 0;
    config.hnsw_m = options_.hnsw_m;
    config.hnsw_ef_construction = options_.hnsw_ef_construction;
    config.hnsw_ef_search = options_.hnsw_ef_search;
    partition = std::make_unique<internal::VectorPartition>(config);
  }
  *partition_out = partition.get();
  const uint64_t id = entry->id;
  by_query_[entry->query_key] = id;
  if (entry->expires_at) expiry_.emplace(*entry->expires_at, id);
  entry->dense_index = dense_ids_.size();
  dense_ids_.push_back(id);
  bytes_ += entry->bytes;
  ++puts_;
  entries_.emplace(id, std::move(entry));
  return id;
}

absl::Status SemanticCache::PutNormalized(std::vector<float> vector, std::string_view query,
                                          SemanticValue value, std::string_view context,
                                          std::string_view ns, std::optional<absl::Duration> ttl,
                                          absl::Time created_at,
                                          std::optional<absl::Time> expires_at) {
  DrainExpired(created_at);
  internal::VectorPartition* partition = nullptr;
  THRIFTY_ASSIGN_OR_RETURN(const uint64_t id, InsertEntry(query, std::move(value), context, ns, ttl,
                                                          created_at, expires_at, &partition));
  partition->Add(vector.data(), id);
  EvictToBudget();
  return absl::OkStatus();
}

absl::Status SemanticCache::PutVectors(std::span<const float> vectors,
                                       std::span<const std::string> queries,
                                       std::vector<SemanticValue> values, std::string_view context,
                                       std::string_view ns, std::optional<absl::Duration> ttl) {
  const size_t n = queries.size();
  if (values.size() != n || vectors.size() != n * dim_) {
    return absl::InvalidArgumentError(StrCat("SemanticCache.put_vectors: ", n, " queries, ",
                                             values.size(), " responses and ",
                                             vectors.size() / std::max<size_t>(dim_, 1),
                                             " vectors; all three must have the same length"));
  }
  if (ttl && *ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("SemanticCache.put: ttl_seconds must be > 0 (or None)");
  }
  // Validate and normalize everything before touching the cache: all or nothing.
  std::vector<float> normalized(vectors.size());
  for (size_t i = 0; i < n; ++i) {
    THRIFTY_ASSIGN_OR_RETURN(std::vector<float> row, Normalized(vectors.subspan(i * dim_, dim_)));
    std::copy(row.begin(), row.end(), normalized.begin() + static_cast<ptrdiff_t>(i * dim_));
  }
  const absl::Time now = Now();
  std::vector<SemanticRecord> records;
  if (replicator_) {
    records.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      records.push_back(SemanticRecord{
          std::vector<float>(normalized.begin() + static_cast<ptrdiff_t>(i * dim_),
                             normalized.begin() + static_cast<ptrdiff_t>((i + 1) * dim_)),
          queries[i], std::string(context), std::string(ns), values[i], now, ExpiryFor(now, ttl)});
    }
  }
  THRIFTY_RETURN_IF_ERROR(
      InsertVectors(normalized, queries, std::move(values), context, ns, ttl, now));
  if (!records.empty()) replicator_->OnPut(records);
  return absl::OkStatus();
}

absl::Status SemanticCache::InsertVectors(const std::vector<float>& normalized,
                                          std::span<const std::string> queries,
                                          std::vector<SemanticValue> values,
                                          std::string_view context, std::string_view ns,
                                          std::optional<absl::Duration> ttl, absl::Time now) {
  const size_t n = queries.size();
  MutexLock lock(&mu_);
  DrainExpired(now);
  internal::VectorPartition* partition = nullptr;
  std::vector<uint64_t> ids;
  ids.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    THRIFTY_ASSIGN_OR_RETURN(const uint64_t id,
                             InsertEntry(queries[i], std::move(values[i]), context, ns, ttl, now,
                                         std::nullopt, &partition));
    ids.push_back(id);
  }
  if (n > 0) {
    // A replaced entry may have emptied and dropped the partition; look it up again.
    auto it = partitions_.find(ScopeKey(ns, context));
    partition = it->second.get();
    // Entries replaced within this batch have already been removed from `entries_`.
    std::vector<float> live_vectors;
    std::vector<uint64_t> live_ids;
    live_vectors.reserve(normalized.size());
    for (size_t i = 0; i < n; ++i) {
      if (!entries_.contains(ids[i])) continue;
      live_ids.push_back(ids[i]);
      live_vectors.insert(live_vectors.end(), normalized.begin() + static_cast<ptrdiff_t>(i * dim_),
                          normalized.begin() + static_cast<ptrdiff_t>((i + 1) * dim_));
    }
    partition->AddBatch(live_vectors.data(), live_ids.data(), live_ids.size());
  }
  EvictToBudget();
  return absl::OkStatus();
}

void SemanticCache::RemoveEntry(uint64_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Entry& entry = *it->second;
  if (auto p = partitions_.find(entry.scope); p != partitions_.end()) {
    p->second->Remove(id);
    if (p->second->size() == 0) partitions_.erase(p);
  }
  if (auto q = by_query_.find(entry.query_key); q != by_query_.end() && q->second == id) {
    by_query_.erase(q);
  }
  if (entry.expires_at) {
    auto [begin, end] = expiry_.equal_range(*entry.expires_at);
    for (auto e = begin; e != end; ++e) {
      if (e->second == id) {
        expiry_.erase(e);
        break;
      }
    }
  }
  // Swap-remove from the dense id list.
  const size_t index = entry.dense_index;
  const uint64_t last = dense_ids_.back();
  dense_ids_[index] = last;
  entries_.at(last)->dense_index = index;
  dense_ids_.pop_back();
  bytes_ -= entry.bytes;
  entries_.erase(it);
}

size_t SemanticCache::DrainExpired(absl::Time now) {
  size_t removed = 0;
  while (!expiry_.empty() && expiry_.begin()->first <= now) {
    RemoveEntry(expiry_.begin()->second);
    ++removed;
  }
  expirations_ += removed;
  return removed;
}

void SemanticCache::EvictToBudget() {
  auto over = [&] {
    return (options_.max_entries && entries_.size() > *options_.max_entries) ||
           (options_.max_bytes && bytes_ > *options_.max_bytes);
  };
  while (over() && !entries_.empty()) {
    uint64_t victim = 0;
    uint64_t oldest = std::numeric_limits<uint64_t>::max();
    const size_t samples = std::min(kEvictionSample, dense_ids_.size());
    for (size_t i = 0; i < samples; ++i) {
      rng_state_ ^= rng_state_ << 13;  // xorshift64
      rng_state_ ^= rng_state_ >> 7;
      rng_state_ ^= rng_state_ << 17;
      const uint64_t id = dense_ids_[rng_state_ % dense_ids_.size()];
      const uint64_t access = entries_.at(id)->last_access.load(std::memory_order_relaxed);
      if (access < oldest) {
        oldest = access;
        victim = id;
      }
    }
    RemoveEntry(victim);
    ++evictions_;
  }
}

absl::StatusOr<std::optional<SemanticHit>> SemanticCache::GetVector(
    std::span<const float> vector, std::string_view context, std::string_view ns,
    std::optional<double> threshold) {
  THRIFTY_ASSIGN_OR_RETURN(std::optional<SemanticHit> hit,
                           PeekVector(vector, context, ns, threshold));
  RecordLookup(hit ? std::optional<uint64_t>(hit->entry_id) : std::nullopt);
  return hit;
}

absl::StatusOr<std::optional<SemanticHit>> SemanticCache::PeekVector(
    std::span<const float> vector, std::string_view context, std::string_view ns,
    std::optional<double> threshold) const {
  THRIFTY_ASSIGN_OR_RETURN(std::vector<float> query, Normalized(vector));
  const double min_similarity = threshold.value_or(options_.threshold);
  if (!(min_similarity > 0.0 && min_similarity <= 1.0)) {
    return absl::InvalidArgumentError(
        StrCat("SemanticCache.get: threshold must be in (0, 1], got ", min_similarity));
  }
  const request::Key128 scope = ScopeKey(ns, context);
  const absl::Time now = Now();
  thread_local std::vector<std::pair<float, uint64_t>> candidates;
  ReaderMutexLock lock(&mu_);
  auto partition = partitions_.find(scope);
  if (partition == partitions_.end()) return std::nullopt;
  partition->second->Search(query.data(), kCandidates, candidates);
  for (const auto& [similarity, id] : candidates) {
    if (similarity < min_similarity) break;
    const Entry& entry = *entries_.at(id);
    if (entry.ns != ns || entry.context != context) continue;    // belt and braces
    if (entry.expires_at && *entry.expires_at <= now) continue;  // drained on next write
    return SemanticHit{entry.value, std::min(similarity, 1.0f), entry.query, entry.created_at, id};
  }
  return std::nullopt;
}

void SemanticCache::RecordLookup(std::optional<uint64_t> entry_id) {
  if (!entry_id) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  ReaderMutexLock lock(&mu_);
  auto it = entries_.find(*entry_id);
  if (it == entries_.end()) return;
  const Entry& entry = *it->second;
  entry.last_access.store(access_clock_.fetch_add(1) + 1, std::memory_order_relaxed);
  saved_usd_.fetch_add(entry.value.cost_usd, std::memory_order_relaxed);
}

std::optional<uint64_t> SemanticCache::EntryId(std::string_view query, std::string_view context,
                                               std::string_view ns) const {
  ReaderMutexLock lock(&mu_);
  auto it = by_query_.find(QueryKey(ScopeKey(ns, context), query));
  if (it == by_query_.end()) return std::nullopt;
  return it->second;
}

uint64_t SemanticCache::evictions() const {
  ReaderMutexLock lock(&mu_);
  return evictions_;
}

bool SemanticCache::Contains(uint64_t entry_id) const {
  ReaderMutexLock lock(&mu_);
  return entries_.contains(entry_id);
}

absl::StatusOr<std::optional<SemanticHit>> SemanticCache::Get(std::string_view query,
                                                              std::string_view context,
                                                              std::string_view ns,
                                                              std::optional<double> threshold) {
  THRIFTY_ASSIGN_OR_RETURN(std::vector<float> vector, EmbedQuery(query));
  return GetVector(vector, context, ns, threshold);
}

absl::StatusOr<std::vector<std::pair<float, std::string>>> SemanticCache::Search(
    std::span<const float> vector, std::string_view context, std::string_view ns, size_t k) {
  THRIFTY_ASSIGN_OR_RETURN(std::vector<float> query, Normalized(vector));
  std::vector<std::pair<float, std::string>> out;
  std::vector<std::pair<float, uint64_t>> candidates;
  const absl::Time now = Now();
  ReaderMutexLock lock(&mu_);
  auto partition = partitions_.find(ScopeKey(ns, context));
  if (partition == partitions_.end()) return out;
  partition->second->Search(query.data(), k, candidates);
  for (const auto& [similarity, id] : candidates) {
    const Entry& entry = *entries_.at(id);
    if (entry.ns != ns || entry.context != context) continue;
    if (entry.expires_at && *entry.expires_at <= now) continue;
    out.emplace_back(similarity, entry.query);
  }
  return out;
}

size_t SemanticCache::Delete(std::string_view query, std::string_view context,
                             std::string_view ns) {
  const size_t removed = ApplyReplicatedDelete(query, context, ns);
  // Published even when absent here: other processes may hold it.
  if (replicator_) replicator_->OnDelete(query, context, ns);
  return removed;
}

void SemanticCache::Clear() {
  {
    MutexLock lock(&mu_);
    ClearLocked();
  }
  if (replicator_) replicator_->OnClear();
}

void SemanticCache::ClearLocked() {
  partitions_.clear();
  entries_.clear();
  by_query_.clear();
  dense_ids_.clear();
  expiry_.clear();
  bytes_ = 0;
}

size_t SemanticCache::PurgeExpired() {
  const absl::Time now = Now();
  MutexLock lock(&mu_);
  return DrainExpired(now);
}

SemanticCacheStats SemanticCache::stats() const {
  SemanticCacheStats s;
  s.hits = hits_.load();
  s.misses = misses_.load();
  s.saved_usd = saved_usd_.load();
  ReaderMutexLock lock(&mu_);
  s.puts = puts_;
  s.replaced = replaced_;
  s.evictions = evictions_;
  s.expirations = expirations_;
  s.entries = entries_.size();
  s.bytes = bytes_;
  s.scopes = partitions_.size();
  for (const auto& [scope, partition] : partitions_) s.ann_scopes += partition->uses_ann();
  return s;
}

// --- Snapshots -----------------------------------------------------------------------------
//
// Layout (little-endian): "THRSEMC1", u32 version, u64 dim, u64 count, entries, u64 XXH3-64 of
// everything before it. Entry: ns, context, query, data, model (u64 length + bytes each),
// u8 is_text, f64 cost_usd, i64 created_at (unix us), i64 expires_at (unix us, or INT64_MIN),
// dim floats.

namespace {

constexpr char kMagic[8] = {'T', 'H', 'R', 'S', 'E', 'M', 'C', '1'};
constexpr uint32_t kVersion = 1;
constexpr int64_t kNoExpiry = std::numeric_limits<int64_t>::min();

void AppendString(std::string& out, std::string_view s) {
  AppendRaw<uint64_t>(out, s.size());
  out.append(s);
}

class Reader {
 public:
  Reader(std::string_view data, const std::string& path) : data_(data), path_(path) {}
  template <typename T>
  absl::StatusOr<T> Get() {
    if (data_.size() - pos_ < sizeof(T)) return Truncated();
    T value;
    std::memcpy(&value, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  absl::StatusOr<std::string> GetString() {
    THRIFTY_ASSIGN_OR_RETURN(const uint64_t size, Get<uint64_t>());
    if (data_.size() - pos_ < size) return Truncated();
    std::string out(data_.substr(pos_, size));
    pos_ += size;
    return out;
  }
  absl::Status GetFloats(std::span<float> out) {
    const size_t bytes = out.size() * sizeof(float);
    if (data_.size() - pos_ < bytes) return Truncated();
    std::memcpy(out.data(), data_.data() + pos_, bytes);
    pos_ += bytes;
    return absl::OkStatus();
  }

 private:
  absl::Status Truncated() const {
    return absl::DataLossError(
        StrCat(path_, ": semantic cache snapshot is truncated at byte ", pos_));
  }
  std::string_view data_;
  const std::string& path_;
  size_t pos_ = 0;
};

absl::Status WriteAtomically(const std::string& path, const std::string& bytes) {
  std::random_device random;
  const std::string temp = StrCat(path, ".tmp.", getpid(), ".", random());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        StrCat(path, ": cannot write snapshot (", std::strerror(errno), ")"));
  }
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      return absl::InternalError(StrCat(path, ": writing snapshot failed (", std::strerror(error),
                                        "); the previous snapshot is intact"));
    }
    written += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || std::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    return absl::InternalError(StrCat(path, ": replacing snapshot failed (", std::strerror(error),
                                      "); the previous snapshot is intact"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SemanticCache::Save(const std::string& path) const {
  std::string out;
  out.append(kMagic, sizeof(kMagic));
  AppendRaw<uint32_t>(out, kVersion);
  AppendRaw<uint64_t>(out, dim_);
  {
    ReaderMutexLock lock(&mu_);
    AppendRaw<uint64_t>(out, entries_.size());
    for (const auto& [id, entry] : entries_) {
      AppendString(out, entry->ns);
      AppendString(out, entry->context);
      AppendString(out, entry->query);
      AppendString(out, entry->value.data);
      AppendString(out, entry->value.model);
      AppendRaw<uint8_t>(out, entry->value.is_text ? 1 : 0);
      AppendRaw<double>(out, entry->value.cost_usd);
      AppendRaw<int64_t>(out, absl::ToUnixMicros(entry->created_at));
      AppendRaw<int64_t>(out,
                         entry->expires_at ? absl::ToUnixMicros(*entry->expires_at) : kNoExpiry);
      const float* vector = partitions_.at(entry->scope)->VectorOf(id);
      out.append(reinterpret_cast<const char*>(vector), dim_ * sizeof(float));
    }
  }
  AppendRaw<uint64_t>(out, XXH3_64bits(out.data(), out.size()));
  return WriteAtomically(path, out);
}

absl::Status SemanticCache::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(StrCat(path, ": no semantic cache snapshot there"));
  }
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.size() < sizeof(kMagic) + 4 + 8 + 8 + 8 ||
      std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::InvalidArgumentError(
        StrCat(path, ": not a thrifty semantic cache snapshot (bad magic)"));
  }
  uint64_t stored_checksum;
  std::memcpy(&stored_checksum, data.data() + data.size() - 8, 8);
  if (XXH3_64bits(data.data(), data.size() - 8) != stored_checksum) {
    return absl::DataLossError(StrCat(path, ": snapshot checksum mismatch (corrupted file)"));
  }
  Reader reader(std::string_view(data).substr(sizeof(kMagic), data.size() - 8 - sizeof(kMagic)),
                path);
  THRIFTY_ASSIGN_OR_RETURN(const uint32_t version, reader.Get<uint32_t>());
  if (version != kVersion) {
    return absl::InvalidArgumentError(StrCat(path, ": snapshot version ", version,
                                             " is not supported (expected ", kVersion, ")"));
  }
  THRIFTY_ASSIGN_OR_RETURN(const uint64_t dim, reader.Get<uint64_t>());
  if (dim != dim_) {
    return absl::InvalidArgumentError(
        StrCat(path, ": snapshot has dim=", dim, " but this cache has dim=", dim_));
  }
  THRIFTY_ASSIGN_OR_RETURN(const uint64_t count, reader.Get<uint64_t>());
  struct Loaded {
    std::string ns, context, query;
    SemanticValue value;
    absl::Time created_at;
    std::optional<absl::Time> expires_at;
    std::vector<float> vector;
  };
  std::vector<Loaded> loaded;
  for (uint64_t i = 0; i < count; ++i) {
    Loaded e;
    THRIFTY_ASSIGN_OR_RETURN(e.ns, reader.GetString());
    THRIFTY_ASSIGN_OR_RETURN(e.context, reader.GetString());
    THRIFTY_ASSIGN_OR_RETURN(e.query, reader.GetString());
    THRIFTY_ASSIGN_OR_RETURN(e.value.data, reader.GetString());
    THRIFTY_ASSIGN_OR_RETURN(e.value.model, reader.GetString());
    THRIFTY_ASSIGN_OR_RETURN(const uint8_t is_text, reader.Get<uint8_t>());
    e.value.is_text = is_text != 0;
    THRIFTY_ASSIGN_OR_RETURN(e.value.cost_usd, reader.Get<double>());
    THRIFTY_ASSIGN_OR_RETURN(const int64_t created, reader.Get<int64_t>());
    THRIFTY_ASSIGN_OR_RETURN(const int64_t expires, reader.Get<int64_t>());
    e.created_at = absl::FromUnixMicros(created);
    if (expires != kNoExpiry) e.expires_at = absl::FromUnixMicros(expires);
    e.vector.resize(dim_);
    THRIFTY_RETURN_IF_ERROR(reader.GetFloats(e.vector));
    loaded.push_back(std::move(e));
  }
  const absl::Time now = Now();
  MutexLock lock(&mu_);
  ClearLocked();
  for (Loaded& e : loaded) {
    if (e.expires_at && *e.expires_at <= now) continue;
    THRIFTY_RETURN_IF_ERROR(PutNormalized(std::move(e.vector), e.query, std::move(e.value),
                                          e.context, e.ns, std::nullopt, e.created_at,
                                          e.expires_at));
  }
  return absl::OkStatus();
}

}  // namespace thrifty::cache
