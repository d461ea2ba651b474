// ModelSpec: one model's prices, limits and quality priors, as read from a policy.
//
// Prices are USD per million tokens, exactly as the provider publishes them. Optional prices
// fall back as the providers bill: a missing cached-input price means "no caching discount"
// (the input price), a missing cache-write price means "no write premium" (the input price),
// and a missing 1-hour write price falls back to the 5-minute one.
//
// Thread-safety: a plain value type (thread-compatible); share it const.
#ifndef THRIFTY_CATALOG_MODEL_SPEC_H_
#define THRIFTY_CATALOG_MODEL_SPEC_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace thrifty::catalog {

// Request categories that quality priors are usually keyed by. Policies may add their own.
inline constexpr std::array<std::string_view, 6> kQualityCategories = {
    "chat", "code", "math", "reasoning", "extraction", "long_context"};

struct ModelSpec {
  std::string name;
  std::string provider;
  double input_per_mtok = 0.0;   // uncached input
  double output_per_mtok = 0.0;  // output, reasoning tokens included
  std::optional<double> cached_input_per_mtok;
  std::optional<double> cache_write_5m_per_mtok;
  std::optional<double> cache_write_1h_per_mtok;
  std::optional<int64_t> context_window;
  std::optional<int64_t> max_output_tokens;
  std::map<std::string, double, std::less<>> quality;  // category -> prior in [0, 1]
  std::vector<std::string> aliases;
  bool deprecated = false;
  std::string source;  // where the prices were read (URL), informational

  double CachedInputPrice() const { return cached_input_per_mtok.value_or(input_per_mtok); }
  double CacheWrite5mPrice() const { return cache_write_5m_per_mtok.value_or(input_per_mtok); }
  double CacheWrite1hPrice() const { return cache_write_1h_per_mtok.value_or(CacheWrite5mPrice()); }

  friend bool operator==(const ModelSpec&, const ModelSpec&) = default;
};

// Checks one spec. Errors are InvalidArgument and name the model and the field, e.g.
// "model 'gpt-4o': input_per_mtok must be a finite number >= 0, got -1".
absl::Status ValidateModelSpec(const ModelSpec& spec);

}  // namespace thrifty::catalog

#endif  // THRIFTY_CATALOG_MODEL_SPEC_H_
