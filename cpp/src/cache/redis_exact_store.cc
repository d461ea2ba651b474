#include "thrifty/cache/redis_exact_store.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "cached_value.h"
#include "raw_bytes.h"
#include "thrifty/base/strings.h"
#include "thrifty/request/request_key.h"

namespace thrifty::cache {
namespace {

using internal::AppendRaw;
using internal::ReadRaw;

constexpr uint8_t kRecordVersion = 1;
constexpr size_t kHeaderBytes = 1 + 1 + 8 + 8 + 8 + 4 + 4;

bool SafeTagChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

}  // namespace

RedisExactStore::RedisExactStore(std::shared_ptr<RedisClient> client,
                                 RedisExactStoreOptions options)
    : client_(std::move(client)),
      options_(options),
      clock_(options.clock != nullptr ? options.clock : Clock::Real()) {}

absl::StatusOr<std::unique_ptr<RedisExactStore>> RedisExactStore::Create(
    std::shared_ptr<RedisClient> client, RedisExactStoreOptions options) {
  if (client == nullptr) return absl::InvalidArgumentError("RedisExactStore: client is null");
  if (options.default_ttl) {
    if (absl::Status status = internal::CheckTtl("ttl", *options.default_ttl); !status.ok()) {
      return status;
    }
  }
  return std::unique_ptr<RedisExactStore>(new RedisExactStore(std::move(client), options));
}

std::string RedisExactStore::NamespaceTag(std::string_view ns) {
  if (ns.empty()) return "~";
  if (ns.size() <= 64 && std::all_of(ns.begin(), ns.end(), SafeTagChar)) return std::string(ns);
  return StrCat("#", request::HashBytes(ns).ToHex());
}

std::string RedisExactStore::EntryKey(std::string_view prefix, std::string_view ns,
                                      std::string_view key) {
  return StrCat(prefix, ":{", NamespaceTag(ns), "}:x:", key);
}

std::string RedisExactStore::EncodeValue(const CachedValue& value) {
  std::string out;
  out.reserve(kHeaderBytes + value.metadata.model.size() + value.metadata.usage_json.size() +
              value.value.size());
  AppendRaw<uint8_t>(out, kRecordVersion);
  AppendRaw<uint8_t>(out, static_cast<uint8_t>(value.kind));
  AppendRaw<double>(out, value.metadata.cost_usd);
  AppendRaw<int64_t>(out, absl::ToUnixMicros(value.created_at));
  AppendRaw<int64_t>(out, value.expires_at == absl::InfiniteFuture()
                              ? int64_t{0}
                              : absl::ToUnixMicros(value.expires_at));
  AppendRaw<uint32_t>(out, static_cast<uint32_t>(value.metadata.model.size()));
  AppendRaw<uint32_t>(out, static_cast<uint32_t>(value.metadata.usage_json.size()));
  out.append(value.metadata.model);
  out.append(value.metadata.usage_json);
  out.append(value.value);
  return out;
}

absl::StatusOr<std::shared_ptr<CachedValue>> RedisExactStore::DecodeValue(std::string_view record) {
  if (record.size() < kHeaderBytes) {
    return absl::DataLossError(
        StrCat("exact-cache record of ", record.size(), " bytes is shorter than its header"));
  }
  const char* p = record.data();
  const auto version = ReadRaw<uint8_t>(p);
  if (version != kRecordVersion) {
    return absl::DataLossError(
        StrCat("exact-cache record version ", version, " (expected ", kRecordVersion, ")"));
  }
  const auto kind = ReadRaw<uint8_t>(p + 1);
  if (kind > 1) return absl::DataLossError(StrCat("exact-cache record kind ", kind));
  auto value = std::make_shared<CachedValue>();
  value->kind = static_cast<ValueKind>(kind);
  value->metadata.cost_usd = ReadRaw<double>(p + 2);
  value->created_at = absl::FromUnixMicros(ReadRaw<int64_t>(p + 10));
  const auto expires = ReadRaw<int64_t>(p + 18);
  value->expires_at = expires == 0 ? absl::InfiniteFuture() : absl::FromUnixMicros(expires);
  const auto model_size = ReadRaw<uint32_t>(p + 26);
  const auto usage_size = ReadRaw<uint32_t>(p + 30);
  if (uint64_t{model_size} + usage_size > record.size() - kHeaderBytes) {
    return absl::DataLossError("exact-cache record is truncated");
  }
  size_t at = kHeaderBytes;
  value->metadata.model.assign(p + at, model_size);
  at += model_size;
  value->metadata.usage_json.assign(p + at, usage_size);
  at += usage_size;
  value->value.assign(p + at, record.size() - at);
  return value;
}

std::shared_ptr<const CachedValue> RedisExactStore::FromReply(const RedisReply& reply,
                                                              GetCounts& counts) const {
  if (reply.type != RedisReply::Type::kString) {
    if (reply.is_error()) ++counts.failed;
    ++counts.misses;
    return nullptr;
  }
  absl::StatusOr<std::shared_ptr<CachedValue>> value = DecodeValue(reply.str);
  if (!value.ok()) {
    ++counts.corrupt;
    ++counts.misses;
    return nullptr;
  }
  if ((*value)->expires_at != absl::InfiniteFuture() && (*value)->ExpiredAt(clock_->Now())) {
    ++counts.expired;
    ++counts.misses;
    return nullptr;
  }
  ++counts.hits;
  counts.saved_usd += (*value)->metadata.cost_usd;
  return *std::move(value);
}

void RedisExactStore::Count(const GetCounts& counts) const {
  // One update per call, not per key: threads share these cache lines.
  if (counts.hits) hits_.fetch_add(counts.hits, std::memory_order_relaxed);
  if (counts.misses) misses_.fetch_add(counts.misses, std::memory_order_relaxed);
  if (counts.failed) failed_gets_.fetch_add(counts.failed, std::memory_order_relaxed);
  if (counts.corrupt) corrupt_.fetch_add(counts.corrupt, std::memory_order_relaxed);
  if (counts.expired) expirations_.fetch_add(counts.expired, std::memory_order_relaxed);
  if (counts.saved_usd != 0.0) saved_usd_.fetch_add(counts.saved_usd, std::memory_order_relaxed);
}

std::shared_ptr<const CachedValue> RedisExactStore::Get(std::string_view ns, std::string_view key) {
  const std::string redis_key = EntryKey(client_->url().prefix, ns, key);
  absl::StatusOr<RedisReply> reply = client_->Command({"GET", redis_key});
  GetCounts counts;
  std::shared_ptr<const CachedValue> value;
  if (reply.ok()) {
    value = FromReply(*reply, counts);
  } else {
    counts.failed = counts.misses = 1;
  }
  Count(counts);
  return value;
}

std::vector<std::shared_ptr<const CachedValue>> RedisExactStore::GetMany(
    std::string_view ns, std::span<const std::string_view> keys) {
  std::vector<std::shared_ptr<const CachedValue>> out(keys.size());
  if (keys.empty()) return out;
  // One MGET: the namespace hash tag puts every key of the batch in one cluster slot, and one
  // command costs the server far less than a pipeline of GETs.
  std::vector<std::string> redis_keys;
  redis_keys.reserve(keys.size());
  for (std::string_view key : keys) {
    redis_keys.push_back(EntryKey(client_->url().prefix, ns, key));
  }
  RedisArgs args;
  args.reserve(keys.size() + 1);
  args.push_back("MGET");
  for (const std::string& redis_key : redis_keys) args.push_back(redis_key);
  absl::StatusOr<RedisReply> reply = client_->Command(args);
  if (!reply.ok() || reply->type != RedisReply::Type::kArray ||
      reply->elements.size() != keys.size()) {
    failed_gets_.fetch_add(keys.size(), std::memory_order_relaxed);
    misses_.fetch_add(keys.size(), std::memory_order_relaxed);
    return out;
  }
  GetCounts counts;
  for (size_t i = 0; i < keys.size(); ++i) out[i] = FromReply(reply->elements[i], counts);
  Count(counts);
  return out;
}

absl::StatusOr<std::shared_ptr<CachedValue>> RedisExactStore::Prepare(
    std::string value, ValueKind kind, EntryMetadata metadata,
    std::optional<absl::Duration> ttl) const {
  return internal::NewCachedValue(std::move(value), kind, std::move(metadata), ttl,
                                  options_.default_ttl, clock_->Now());
}

namespace {
// SET key record [PX ms]: ms is at least 1 so a sub-millisecond TTL still expires.
struct SetCommand {
  std::string key;
  std::string record;
  std::string px;
  RedisArgs Args() const {
    if (px.empty()) return {"SET", key, record};
    return {"SET", key, record, "PX", px};
  }
};

std::string PxFor(const CachedValue& value) {
  if (value.expires_at == absl::InfiniteFuture()) return "";
  const int64_t ms =
      std::max<int64_t>(1, absl::ToInt64Milliseconds(value.expires_at - value.created_at));
  return std::to_string(ms);
}
}  // namespace

absl::Status RedisExactStore::Put(std::string_view ns, std::string_view key, std::string value,
                                  ValueKind kind, EntryMetadata metadata,
                                  std::optional<absl::Duration> ttl) {
  absl::StatusOr<std::shared_ptr<CachedValue>> stored =
      Prepare(std::move(value), kind, std::move(metadata), ttl);
  if (!stored.ok()) return stored.status();
  SetCommand set{EntryKey(client_->url().prefix, ns, key), EncodeValue(**stored), PxFor(**stored)};
  absl::StatusOr<RedisReply> reply = client_->Command(set.Args());
  if (!reply.ok() || reply->is_error()) dropped_writes_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status RedisExactStore::PutMany(std::string_view ns, std::span<ExactPutItem> items,
                                      std::optional<absl::Duration> ttl) {
  std::vector<SetCommand> sets;
  sets.reserve(items.size());
  for (ExactPutItem& item : items) {
    absl::StatusOr<std::shared_ptr<CachedValue>> stored = Prepare(
        std::move(item.value), item.kind,
        EntryMetadata{std::move(item.model), std::move(item.usage_json), item.cost_usd}, ttl);
    if (!stored.ok()) return stored.status();
    sets.push_back(SetCommand{EntryKey(client_->url().prefix, ns, item.key), EncodeValue(**stored),
                              PxFor(**stored)});
  }
  std::vector<RedisArgs> commands;
  commands.reserve(sets.size());
  for (const SetCommand& set : sets) commands.push_back(set.Args());
  absl::StatusOr<std::vector<RedisReply>> replies = client_->Pipeline(commands);
  if (!replies.ok()) {
    dropped_writes_.fetch_add(sets.size(), std::memory_order_relaxed);
  } else {
    for (const RedisReply& reply : *replies) {
      if (reply.is_error()) dropped_writes_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return absl::OkStatus();
}

bool RedisExactStore::Delete(std::string_view ns, std::string_view key) {
  const std::string redis_key = EntryKey(client_->url().prefix, ns, key);
  absl::StatusOr<RedisReply> reply = client_->Command({"DEL", redis_key});
  if (!reply.ok() || reply->is_error()) {
    dropped_writes_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return reply->integer > 0;
}

bool RedisExactStore::Contains(std::string_view ns, std::string_view key) const {
  const std::string redis_key = EntryKey(client_->url().prefix, ns, key);
  absl::StatusOr<RedisReply> reply = client_->Command({"EXISTS", redis_key});
  if (!reply.ok()) {
    failed_gets_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return reply->type == RedisReply::Type::kInteger && reply->integer > 0;
}

int64_t RedisExactStore::ScanCount(bool unlink) const {
  const std::string pattern = StrCat(client_->url().prefix, ":{*}:x:*");
  std::string cursor = "0";
  int64_t count = 0;
  do {
    absl::StatusOr<RedisReply> reply =
        client_->Command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    if (!reply.ok() || reply->type != RedisReply::Type::kArray || reply->elements.size() != 2) {
      if (unlink) dropped_writes_.fetch_add(1, std::memory_order_relaxed);
      return count;
    }
    cursor = reply->elements[0].str;
    const std::vector<RedisReply>& keys = reply->elements[1].elements;
    count += static_cast<int64_t>(keys.size());
    if (unlink && !keys.empty()) {
      RedisArgs args = {"UNLINK"};
      for (const RedisReply& key : keys) args.push_back(key.str);
      absl::StatusOr<RedisReply> unlinked = client_->Command(args);
      if (!unlinked.ok() || unlinked->is_error()) {
        dropped_writes_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  } while (cursor != "0");
  return count;
}

void RedisExactStore::Clear() { ScanCount(/*unlink=*/true); }

int64_t RedisExactStore::size() const { return ScanCount(/*unlink=*/false); }

ExactCacheStats RedisExactStore::Stats() const {
  ExactCacheStats stats;
  stats.hits = static_cast<int64_t>(hits_.load(std::memory_order_relaxed));
  stats.misses = static_cast<int64_t>(misses_.load(std::memory_order_relaxed));
  stats.expirations = static_cast<int64_t>(expirations_.load(std::memory_order_relaxed));
  stats.saved_usd = saved_usd_.load(std::memory_order_relaxed);
  return stats;
}

RedisFailOpenStats RedisExactStore::fail_open_stats() const {
  return RedisFailOpenStats{failed_gets_.load(std::memory_order_relaxed),
                            dropped_writes_.load(std::memory_order_relaxed),
                            corrupt_.load(std::memory_order_relaxed)};
}

}  // namespace thrifty::cache
