// What both exact stores (ExactCache in memory, RedisExactStore) check and build for a put.
// Internal to the cache area.
#ifndef THRIFTY_CACHE_CACHED_VALUE_H_
#define THRIFTY_CACHE_CACHED_VALUE_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "thrifty/cache/exact_cache.h"

namespace thrifty::cache::internal {

// InvalidArgument unless `ttl` is positive; `what` names it in the message.
absl::Status CheckTtl(std::string_view what, absl::Duration ttl);

// The entry a put stores: `ttl` (and the store's `default_ttl`) checked, cost_usd finite and
// >= 0, created `now`, expiring after `ttl`, else `default_ttl`, else never.
absl::StatusOr<std::shared_ptr<CachedValue>> NewCachedValue(
    std::string value, ValueKind kind, EntryMetadata metadata, std::optional<absl::Duration> ttl,
    std::optional<absl::Duration> default_ttl, absl::Time now);

}  // namespace thrifty::cache::internal

#endif  // THRIFTY_CACHE_CACHED_VALUE_H_
