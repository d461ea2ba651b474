#include "thrifty/cache/redis_semantic_sync.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "raw_bytes.h"
#include "thrifty/base/strings.h"
#include "thrifty/cache/redis_exact_store.h"
#include "xxhash.h"

namespace thrifty::cache {
namespace {

using internal::AppendRaw;
using internal::ReadRaw;

constexpr uint8_t kRecordVersion = 1;
constexpr size_t kHeaderBytes = 1 + 1 + 8 + 8 + 8 + 6 * 4;
constexpr int kBlockMs = 100;
constexpr std::string_view kReadCount = "512";

std::string RandomOrigin() {
  std::random_device random;
  const uint64_t id = (uint64_t{random()} << 32) ^ random();
  char buffer[17];
  std::snprintf(buffer, sizeof(buffer), "%016llx", static_cast<unsigned long long>(id));
  return buffer;
}

}  // namespace

std::string RedisSemanticSync::StreamKey(std::string_view prefix, std::string_view space) {
  return StrCat(prefix, ":{", prefix, ":sem}:s:", RedisExactStore::NamespaceTag(space));
}

std::string RedisSemanticSync::EncodeRecord(const SemanticRecord& r) {
  std::string out;
  out.reserve(kHeaderBytes + r.vector.size() * sizeof(float) + r.ns.size() + r.context.size() +
              r.query.size() + r.value.model.size() + r.value.data.size() + 8);
  AppendRaw<uint8_t>(out, kRecordVersion);
  AppendRaw<uint8_t>(out, r.value.is_text ? 1 : 0);
  AppendRaw<double>(out, r.value.cost_usd);
  AppendRaw<int64_t>(out, absl::ToUnixMicros(r.created_at));
  AppendRaw<int64_t>(out, r.expires_at ? absl::ToUnixMicros(*r.expires_at) : int64_t{0});
  AppendRaw<uint32_t>(out, static_cast<uint32_t>(r.vector.size()));
  for (std::string_view s :
       {std::string_view(r.ns), std::string_view(r.context), std::string_view(r.query),
        std::string_view(r.value.model), std::string_view(r.value.data)}) {
    AppendRaw<uint32_t>(out, static_cast<uint32_t>(s.size()));
  }
  if (!r.vector.empty()) {
    out.append(reinterpret_cast<const char*>(r.vector.data()), r.vector.size() * sizeof(float));
  }
  out.append(r.ns);
  out.append(r.context);
  out.append(r.query);
  out.append(r.value.model);
  out.append(r.value.data);
  AppendRaw<uint64_t>(out, XXH3_64bits(out.data(), out.size()));
  return out;
}

absl::StatusOr<SemanticRecord> RedisSemanticSync::DecodeRecord(std::string_view data) {
  if (data.size() < kHeaderBytes + 8) {
    return absl::DataLossError("semantic stream record shorter than its header");
  }
  const char* p = data.data();
  const size_t body = data.size() - 8;
  if (XXH3_64bits(p, body) != ReadRaw<uint64_t>(p + body)) {
    return absl::DataLossError("semantic stream record fails its checksum");
  }
  if (ReadRaw<uint8_t>(p) != kRecordVersion) {
    return absl::DataLossError(StrCat("semantic stream record version ", ReadRaw<uint8_t>(p)));
  }
  SemanticRecord r;
  r.value.is_text = ReadRaw<uint8_t>(p + 1) != 0;
  r.value.cost_usd = ReadRaw<double>(p + 2);
  r.created_at = absl::FromUnixMicros(ReadRaw<int64_t>(p + 10));
  if (const auto expires = ReadRaw<int64_t>(p + 18); expires != 0) {
    r.expires_at = absl::FromUnixMicros(expires);
  }
  const auto dim = ReadRaw<uint32_t>(p + 26);
  uint64_t sizes[5];
  uint64_t total = uint64_t{dim} * sizeof(float);
  for (int i = 0; i < 5; ++i) {
    sizes[i] = ReadRaw<uint32_t>(p + 30 + 4 * i);
    total += sizes[i];
  }
  if (kHeaderBytes + total != body) {
    return absl::DataLossError("semantic stream record sizes do not add up");
  }
  size_t at = kHeaderBytes;
  r.vector.resize(dim);
  if (dim > 0) std::memcpy(r.vector.data(), p + at, dim * sizeof(float));  // deletes have none
  at += dim * sizeof(float);
  std::string* fields[5] = {&r.ns, &r.context, &r.query, &r.value.model, &r.value.data};
  for (int i = 0; i < 5; ++i) {
    fields[i]->assign(p + at, sizes[i]);
    at += sizes[i];
  }
  return r;
}

std::optional<std::pair<uint64_t, uint64_t>> RedisSemanticSync::ParseStreamId(std::string_view id) {
  const size_t dash = id.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  uint64_t ms = 0;
  uint64_t seq = 0;
  auto a = std::from_chars(id.data(), id.data() + dash, ms);
  auto b = std::from_chars(id.data() + dash + 1, id.data() + id.size(), seq);
  if (a.ec != std::errc() || a.ptr != id.data() + dash || b.ec != std::errc() ||
      b.ptr != id.data() + id.size()) {
    return std::nullopt;
  }
  return std::make_pair(ms, seq);
}

RedisSemanticSync::RedisSemanticSync(std::shared_ptr<RedisClient> client, SemanticCache* cache,
                                     std::string stream_key)
    : client_(std::move(client)),
      cache_(cache),
      stream_key_(std::move(stream_key)),
      origin_(RandomOrigin()),
      maxlen_(std::to_string(client_->url().stream_maxlen)) {}

absl::StatusOr<std::unique_ptr<RedisSemanticSync>> RedisSemanticSync::Start(
    std::shared_ptr<RedisClient> client, SemanticCache* cache, std::string_view space) {
  if (client == nullptr || cache == nullptr) {
    return absl::InvalidArgumentError("RedisSemanticSync: client and cache must not be null");
  }
  const std::string key = StreamKey(client->url().prefix, space);
  std::unique_ptr<RedisSemanticSync> sync(new RedisSemanticSync(std::move(client), cache, key));
  sync->reader_ = std::thread([raw = sync.get()] { raw->Run(); });
  return sync;
}

RedisSemanticSync::~RedisSemanticSync() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (reader_.joinable()) reader_.join();
}

void RedisSemanticSync::Publish(std::span<const std::pair<std::string_view, std::string>> entries) {
  std::vector<RedisArgs> commands;
  commands.reserve(entries.size());
  for (const auto& [op, record] : entries) {
    RedisArgs args = {"XADD", stream_key_, "MAXLEN", "~", maxlen_, "*", "op", op, "o", origin_};
    if (!record.empty()) {
      args.push_back("r");
      args.push_back(record);
    }
    commands.push_back(std::move(args));
  }
  absl::StatusOr<std::vector<RedisReply>> replies = client_->Pipeline(commands);
  if (!replies.ok()) {
    publish_dropped_.fetch_add(entries.size(), std::memory_order_relaxed);
    return;
  }
  for (const RedisReply& reply : *replies) {
    if (reply.is_error()) {
      publish_dropped_.fetch_add(1, std::memory_order_relaxed);
    } else {
      published_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void RedisSemanticSync::OnPut(std::span<const SemanticRecord> records) {
  std::vector<std::pair<std::string_view, std::string>> entries;
  entries.reserve(records.size());
  for (const SemanticRecord& record : records) entries.emplace_back("p", EncodeRecord(record));
  Publish(entries);
}

void RedisSemanticSync::OnDelete(std::string_view query, std::string_view context,
                                 std::string_view ns) {
  SemanticRecord record;
  record.query = std::string(query);
  record.context = std::string(context);
  record.ns = std::string(ns);
  const std::pair<std::string_view, std::string> entry("d", EncodeRecord(record));
  Publish(std::span(&entry, 1));
}

void RedisSemanticSync::OnClear() {
  const std::pair<std::string_view, std::string> entry("c", "");
  Publish(std::span(&entry, 1));
}

void RedisSemanticSync::ApplyEntry(const RedisReply& entry) {
  if (entry.type != RedisReply::Type::kArray || entry.elements.size() != 2) {
    decode_errors_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::vector<RedisReply>& fields = entry.elements[1].elements;
  std::string_view op;
  std::string_view origin;
  const std::string* record = nullptr;
  for (size_t i = 0; i + 1 < fields.size(); i += 2) {
    const std::string& name = fields[i].str;
    if (name == "op") {
      op = fields[i + 1].str;
    } else if (name == "o") {
      origin = fields[i + 1].str;
    } else if (name == "r") {
      record = &fields[i + 1].str;
    }
  }
  if (origin == origin_) return;  // applied locally when it was put
  if (op == "c") {
    cache_->ApplyReplicatedClear();
    applied_clears_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if ((op != "p" && op != "d") || record == nullptr) {
    decode_errors_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  absl::StatusOr<SemanticRecord> decoded = DecodeRecord(*record);
  if (!decoded.ok()) {
    decode_errors_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (op == "d") {
    cache_->ApplyReplicatedDelete(decoded->query, decoded->context, decoded->ns);
    applied_deletes_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (decoded->vector.size() != cache_->dim()) {
    decode_errors_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (cache_->ApplyReplicated(*std::move(decoded))) {
    applied_.fetch_add(1, std::memory_order_relaxed);
  } else {
    skipped_expired_.fetch_add(1, std::memory_order_relaxed);
  }
}

void RedisSemanticSync::Run() {
  std::string last;
  {
    std::lock_guard<std::mutex> lock(mu_);
    last = last_id_;
  }
  const absl::Duration timeout = client_->url().command_timeout + absl::Milliseconds(kBlockMs);
  const std::string block = std::to_string(kBlockMs);
  auto backoff = std::chrono::milliseconds(20);
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    absl::StatusOr<RedisReply> reply = client_->Command(
        {"XREAD", "COUNT", kReadCount, "BLOCK", block, "STREAMS", stream_key_, last}, timeout);
    if (!reply.ok() || reply->is_error()) {
      read_failures_.fetch_add(1, std::memory_order_relaxed);
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, backoff, [this] { return stop_; });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
      continue;
    }
    backoff = std::chrono::milliseconds(20);
    if (reply->type != RedisReply::Type::kArray || reply->elements.empty()) continue;
    // [[stream_key, [[id, [field, value, ...]], ...]]]
    const RedisReply& stream = reply->elements[0];
    if (stream.elements.size() != 2) continue;
    for (const RedisReply& entry : stream.elements[1].elements) {
      ApplyEntry(entry);
      if (!entry.elements.empty()) last = entry.elements[0].str;
    }
    const auto position = ParseStreamId(last);
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_id_ = last;
      if (position) last_pos_ = *position;
    }
    cv_.notify_all();
  }
}

bool RedisSemanticSync::WaitForSync(absl::Duration timeout) {
  absl::StatusOr<RedisReply> reply =
      client_->Command({"XREVRANGE", stream_key_, "+", "-", "COUNT", "1"});
  if (!reply.ok() || reply->type != RedisReply::Type::kArray) return false;
  if (reply->elements.empty()) return true;
  const RedisReply& newest = reply->elements[0];
  if (newest.elements.empty()) return false;
  const auto tail = ParseStreamId(newest.elements[0].str);
  if (!tail) return false;
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                      [&] { return last_pos_ >= *tail || stop_; });
}

RedisSemanticSyncStats RedisSemanticSync::stats() const {
  RedisSemanticSyncStats s;
  s.published = published_.load(std::memory_order_relaxed);
  s.publish_dropped = publish_dropped_.load(std::memory_order_relaxed);
  s.applied = applied_.load(std::memory_order_relaxed);
  s.applied_deletes = applied_deletes_.load(std::memory_order_relaxed);
  s.applied_clears = applied_clears_.load(std::memory_order_relaxed);
  s.skipped_expired = skipped_expired_.load(std::memory_order_relaxed);
  s.decode_errors = decode_errors_.load(std::memory_order_relaxed);
  s.read_failures = read_failures_.load(std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.last_id = last_id_;
  }
  return s;
}

}  // namespace thrifty::cache
