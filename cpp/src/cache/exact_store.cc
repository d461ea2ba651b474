#include "thrifty/cache/exact_store.h"

#include <utility>

#include "thrifty/cache/exact_cache.h"

namespace thrifty::cache {

std::vector<std::shared_ptr<const CachedValue>> ExactStore::GetMany(
    std::string_view ns, std::span<const std::string_view> keys) {
  std::vector<std::shared_ptr<const CachedValue>> out;
  out.reserve(keys.size());
  for (std::string_view key : keys) out.push_back(Get(ns, key));
  return out;
}

absl::Status ExactStore::PutMany(std::string_view ns, std::span<ExactPutItem> items,
                                 std::optional<absl::Duration> ttl) {
  for (ExactPutItem& item : items) {
    EntryMetadata metadata{std::move(item.model), std::move(item.usage_json), item.cost_usd};
    absl::Status status =
        Put(ns, item.key, std::move(item.value), item.kind, std::move(metadata), ttl);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace thrifty::cache
