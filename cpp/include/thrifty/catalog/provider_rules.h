// ProviderCacheRules: how one provider's prompt cache behaves, as read from a policy's
// `providers:` section (router_policies/default.yaml documents every field and its source).
//
// Prompt planning (area `prompt`) and the prefix tracker read these rules; nothing
// provider-specific is hard-coded in C++. Prices stay on ModelSpec: the multipliers here are
// only the fallback when a model entry gives no cache price.
//
// Thread-safety: a plain value type (thread-compatible); share it const.
#ifndef THRIFTY_CATALOG_PROVIDER_RULES_H_
#define THRIFTY_CATALOG_PROVIDER_RULES_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace thrifty::catalog {

enum class CacheMode {
  kNone,       // no prompt-cache discount
  kExplicit,   // cached only up to cache_control breakpoints (Anthropic)
  kAutomatic,  // every prompt cached, matched by prefix, routed by a cache key (OpenAI)
  kImplicit,   // automatic and best effort, no cache key (Gemini, DeepSeek)
};

std::string_view CacheModeName(CacheMode mode);

struct CacheTtl {
  std::string name;             // as the request spells it ("5m", "1h", "24h", ...)
  int64_t seconds = 0;          // lifetime since the last write or read
  double write_multiplier = 1;  // write price / input price, when the model gives none

  friend bool operator==(const CacheTtl&, const CacheTtl&) = default;
};

// The minimum cacheable prefix for the models whose name matches one of `models` (globs with
// '*' and '?', matched case-insensitively against the catalog name).
struct MinTokensRule {
  std::vector<std::string> models;
  int64_t tokens = 0;

  friend bool operator==(const MinTokensRule&, const MinTokensRule&) = default;
};

struct ProviderCacheRules {
  std::string provider;
  std::vector<std::string> aliases;
  CacheMode mode = CacheMode::kNone;
  std::vector<MinTokensRule> min_tokens;  // first match wins
  int64_t block_tokens = 1;               // hit granularity past the minimum
  int max_breakpoints = 0;
  int lookback_blocks = 0;
  std::vector<CacheTtl> ttls;  // the first is the default
  double read_multiplier = 1;
  std::string cache_key_field;
  int64_t cache_key_rpm = 0;
  std::map<std::string, std::string, std::less<>> usage_fields;
  std::string source;
  std::string read_on;

  bool caches() const { return mode != CacheMode::kNone; }
  // The minimum cacheable prefix for `model` (0 when no rule matches and mode is none).
  int64_t MinTokensFor(std::string_view model) const;
  // The TTL named `name` ("" = the default), or nullptr.
  const CacheTtl* FindTtl(std::string_view name) const;
  // Tokens a provider would serve from a matched prefix of `matched` tokens: 0 under the
  // minimum, else rounded down to the minimum plus a multiple of block_tokens.
  int64_t CachedFromMatched(std::string_view model, int64_t matched) const;

  friend bool operator==(const ProviderCacheRules&, const ProviderCacheRules&) = default;
};

// Glob match with '*' and '?', ASCII case-insensitive.
bool GlobMatch(std::string_view pattern, std::string_view text);

// Checks one rule set; errors are InvalidArgument naming the provider and the field.
absl::Status ValidateProviderCacheRules(const ProviderCacheRules& rules);

// Reads one `providers.<name>` entry (a JSON object with the policy's field names) and
// validates it. Unknown fields are errors that list the accepted ones.
absl::StatusOr<ProviderCacheRules> ProviderCacheRulesFromJson(std::string_view provider,
                                                              const nlohmann::json& entry);

}  // namespace thrifty::catalog

#endif  // THRIFTY_CATALOG_PROVIDER_RULES_H_
