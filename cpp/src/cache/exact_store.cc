#include "thrifty/cache/exact_store.h"

#include <cmath>
#include <utility>

#include "cached_value.h"
#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"
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

namespace internal {

absl::Status CheckTtl(std::string_view what, absl::Duration ttl) {
  if (ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(StrCat(what, " must be positive, got ",
                                             absl::FormatDuration(ttl),
                                             " (leave it unset for the default)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<CachedValue>> NewCachedValue(
    std::string value, ValueKind kind, EntryMetadata metadata, std::optional<absl::Duration> ttl,
    std::optional<absl::Duration> default_ttl, absl::Time now) {
  if (ttl) THRIFTY_RETURN_IF_ERROR(CheckTtl("ttl", *ttl));
  if (!std::isfinite(metadata.cost_usd) || metadata.cost_usd < 0) {
    return absl::InvalidArgumentError(
        StrCat("cost_usd must be a finite number >= 0, got ", metadata.cost_usd));
  }
  auto stored = std::make_shared<CachedValue>();
  stored->value = std::move(value);
  stored->kind = kind;
  stored->metadata = std::move(metadata);
  stored->created_at = now;
  const std::optional<absl::Duration> effective = ttl ? ttl : default_ttl;
  stored->expires_at = effective ? now + *effective : absl::InfiniteFuture();
  return stored;
}

}  // namespace internal
}  // namespace thrifty::cache
