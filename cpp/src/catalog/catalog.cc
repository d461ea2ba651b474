#include "thrifty/catalog/catalog.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"

namespace thrifty::catalog {
namespace {

// Levenshtein distance over ASCII-lower-cased bytes; names are short, so O(n*m) is fine.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      const bool same = absl::ascii_tolower(a[i - 1]) == absl::ascii_tolower(b[j - 1]);
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::vector<std::string> ClosestNames(std::string_view query,
                                      const std::vector<std::string>& candidates, size_t limit) {
  const std::string lower_query = AsciiLower(query);
  std::vector<std::pair<double, const std::string*>> scored;
  scored.reserve(candidates.size());
  for (const auto& candidate : candidates) {
    const std::string lower = AsciiLower(candidate);
    double score = static_cast<double>(EditDistance(lower_query, lower));
    // A shared stem ("claude-sonnet" in "claude-sonnet-4-5") is a stronger hint than distance.
    if (!lower_query.empty() &&
        (absl::StrContains(lower, lower_query) || absl::StrContains(lower_query, lower))) {
      score *= 0.25;
    }
    scored.emplace_back(score, &candidate);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && out.size() < limit; ++i) {
    if (std::find(out.begin(), out.end(), *scored[i].second) == out.end()) {
      out.push_back(*scored[i].second);
    }
  }
  return out;
}

absl::StatusOr<Catalog> Catalog::Create(std::vector<ModelSpec> models) {
  Catalog catalog;
  catalog.models_ = std::move(models);
  for (size_t i = 0; i < catalog.models_.size(); ++i) {
    const ModelSpec& spec = catalog.models_[i];
    THRIFTY_RETURN_IF_ERROR(ValidateModelSpec(spec));
    auto add = [&](const std::string& key, std::string_view what) -> absl::Status {
      auto [it, inserted] = catalog.index_.emplace(AsciiLower(key), i);
      if (!inserted) {
        return absl::InvalidArgumentError(
            StrCat("models[", i, "] '", spec.name, "': ", what, " '", key,
                   "' is already used by model '", catalog.models_[it->second].name,
                   "'; names and aliases must be unique (case-insensitive)"));
      }
      return absl::OkStatus();
    };
    THRIFTY_RETURN_IF_ERROR(add(spec.name, "name"));
    for (const auto& alias : spec.aliases) {
      THRIFTY_RETURN_IF_ERROR(add(alias, "alias"));
    }
  }
  return catalog;
}

absl::StatusOr<Catalog> Catalog::Create(std::vector<ModelSpec> models,
                                        std::vector<ProviderCacheRules> providers) {
  THRIFTY_ASSIGN_OR_RETURN(Catalog catalog, Create(std::move(models)));
  catalog.providers_ = std::move(providers);
  for (size_t i = 0; i < catalog.providers_.size(); ++i) {
    ProviderCacheRules& rules = catalog.providers_[i];
    rules.provider = AsciiLower(rules.provider);
    THRIFTY_RETURN_IF_ERROR(ValidateProviderCacheRules(rules));
    std::vector<std::string> names = rules.aliases;
    names.insert(names.begin(), rules.provider);
    for (const auto& name : names) {
      auto [it, inserted] = catalog.provider_index_.emplace(AsciiLower(name), i);
      if (!inserted) {
        return absl::InvalidArgumentError(StrCat("providers.", rules.provider, ": provider name '",
                                                 name, "' is already used by providers.",
                                                 catalog.providers_[it->second].provider,
                                                 "; provider names and aliases must be unique"));
      }
    }
  }
  return catalog;
}

const ProviderCacheRules* Catalog::FindProviderRules(std::string_view provider) const {
  auto it = provider_index_.find(AsciiLower(provider));
  return it == provider_index_.end() ? nullptr : &providers_[it->second];
}

absl::StatusOr<const ProviderCacheRules*> Catalog::GetProviderRules(
    std::string_view provider) const {
  if (const ProviderCacheRules* rules = FindProviderRules(provider)) return rules;
  std::vector<std::string> names;
  for (const auto& r : providers_) names.push_back(r.provider);
  if (names.empty()) {
    return absl::NotFoundError(StrCat(
        "unknown provider '", provider,
        "': this catalog holds no prompt-cache rules (a policy file's 'providers:' section)"));
  }
  return absl::NotFoundError(
      StrCat("unknown provider '", provider,
             "'; providers with prompt-cache rules: ", absl::StrJoin(names, ", ")));
}

const ModelSpec* Catalog::Find(std::string_view name_or_alias) const {
  const std::string key = AsciiLower(name_or_alias);
  if (auto it = index_.find(key); it != index_.end()) return &models_[it->second];
  // "provider/model": accept the provider prefix when it names the model's own provider.
  if (const size_t slash = key.find('/'); slash != std::string::npos) {
    if (auto it = index_.find(ToAbsl(std::string_view(key).substr(slash + 1)));
        it != index_.end()) {
      const ModelSpec& spec = models_[it->second];
      if (AsciiLower(spec.provider) == std::string_view(key).substr(0, slash)) {
        return &spec;
      }
    }
  }
  return nullptr;
}

absl::StatusOr<const ModelSpec*> Catalog::Get(std::string_view name_or_alias) const {
  if (const ModelSpec* spec = Find(name_or_alias)) return spec;
  std::vector<std::string> names;
  names.reserve(models_.size());
  for (const auto& spec : models_) names.push_back(spec.name);
  if (names.empty()) {
    return absl::NotFoundError(StrCat("unknown model '", name_or_alias,
                                      "': the catalog is empty; add models with ModelSpec or a "
                                      "policy file"));
  }
  return absl::NotFoundError(StrCat(
      "unknown model '", name_or_alias,
      "'; closest in the catalog: ", absl::StrJoin(ClosestNames(name_or_alias, names, 3), ", "),
      " (", models_.size(), " models; add one with a ModelSpec or a policy file)"));
}

}  // namespace thrifty::catalog
