// Catalog: the set of models a router may choose from, looked up by name or alias.
//
// Invariants: every name and alias is unique (case-insensitively) across the catalog; every
// spec passed ValidateModelSpec. Lookup accepts a name, an alias, or either prefixed with a
// provider ("openai/gpt-4o"), case-insensitively.
//
// Thread-safety: immutable after Create(); safe to share across threads.
#ifndef THRIFTY_CATALOG_CATALOG_H_
#define THRIFTY_CATALOG_CATALOG_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "thrifty/catalog/model_spec.h"
#include "thrifty/catalog/provider_rules.h"

namespace thrifty::catalog {

class Catalog {
 public:
  // Validates every spec and the uniqueness of names and aliases.
  static absl::StatusOr<Catalog> Create(std::vector<ModelSpec> models);
  // Also holds each provider's prompt-cache rules (a provider or alias may appear once).
  static absl::StatusOr<Catalog> Create(std::vector<ModelSpec> models,
                                        std::vector<ProviderCacheRules> providers);

  // The spec for `name_or_alias`, or NotFound listing the closest names.
  absl::StatusOr<const ModelSpec*> Get(std::string_view name_or_alias) const;
  // The spec for `name_or_alias`, or nullptr.
  const ModelSpec* Find(std::string_view name_or_alias) const;

  const std::vector<ModelSpec>& models() const { return models_; }
  size_t size() const { return models_.size(); }

  // The prompt-cache rules of `provider` (a name or alias, case-insensitive), or nullptr.
  const ProviderCacheRules* FindProviderRules(std::string_view provider) const;
  // The rules, or NotFound listing the providers that have rules.
  absl::StatusOr<const ProviderCacheRules*> GetProviderRules(std::string_view provider) const;
  const std::vector<ProviderCacheRules>& providers() const { return providers_; }

 private:
  Catalog() = default;

  std::vector<ModelSpec> models_;
  absl::flat_hash_map<std::string, size_t> index_;  // lower-cased name or alias -> models_ index
  std::vector<ProviderCacheRules> providers_;
  absl::flat_hash_map<std::string, size_t> provider_index_;  // lower-cased name or alias
};

// Up to `limit` of `candidates` closest to `query` (case-insensitive edit distance, with a bonus
// for a shared prefix or substring), best first. Used for "did you mean" messages.
std::vector<std::string> ClosestNames(std::string_view query,
                                      const std::vector<std::string>& candidates, size_t limit);

}  // namespace thrifty::catalog

#endif  // THRIFTY_CATALOG_CATALOG_H_
